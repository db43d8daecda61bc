// zmm version of i8_wo_rows R = 1 (same per-lane FMA chains: lanes 0-7 = u0/u2, 8-15 = u1/u3).
#include "CKernels.h"
#include <immintrin.h>
#include <stdint.h>
__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma"))) void z_wo(const float *x, int64_t k, const int8_t *w,
    const float *sw, int64_t n, int64_t bk, float *y) {
    const int64_t kb = (k + bk - 1) / bk;
    for (int64_t col = 0; col < n; col++) {
        const int8_t *wr = w + col * k; const float *swr = sw + (col / 128) * kb;
        __m256 total = _mm256_setzero_ps();
        for (int64_t j = 0; j < kb; j++) {
            const int8_t *wb = wr + j * bk; const float *xb = x + j * bk;
            const __m512 s = _mm512_set1_ps(swr[j]);
            __m512 a0 = _mm512_setzero_ps(), a1 = a0;
            for (int64_t t = 0; t < bk; t += 32) {
                _mm_prefetch((const char *)(wb + t + 1024), _MM_HINT_T0);
                const __m512 w0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(wb + t)))), s);
                const __m512 w1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(wb + t + 16)))), s);
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(xb + t), w0, a0);
                a1 = _mm512_fmadd_ps(_mm512_loadu_ps(xb + t + 16), w1, a1);
            }
            const __m256 u0 = _mm512_castps512_ps256(a0), u1 = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a0), 1));
            const __m256 u2 = _mm512_castps512_ps256(a1), u3 = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a1), 1));
            total = _mm256_add_ps(total, _mm256_add_ps(_mm256_add_ps(u0, u1), _mm256_add_ps(u2, u3)));
        }
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(total), _mm256_extractf128_ps(total, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h)); h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        y[col] = _mm_cvtss_f32(h);
    }
}
