// AVX2 micro-kernel of the W8A8 GEMM: 4 rows x 16 columns with the vpmaddubsw sign trick.
//
// vpmaddubsw multiplies unsigned by signed bytes and adds adjacent pairs into saturating int16.
// The weight panel holds |w| (0..127, the unsigned operand) beside w; vpsignb moves w's sign onto
// the broadcast activation code (x * sgn(w), still in -127..127), so each pair sum
// |w1| (x1 sgn w1) + |w2| (x2 sgn w2) = x1 w1 + x2 w2 has magnitude at most 2 * 127 * 127 = 32258
// < 32767: never saturated. vpmaddwd with ones widens the pairs to exact int32 quads, vpaddd
// accumulates: 4 vector operations per 32 multiply-adds, operands at one byte per element.
#include "int8_gemm.h"

#if CK_X86
enum { MR = 4, NR = 16 };

CK_AVX2 void ck_gemm_ukernel_avx2(const uint8_t *a, int64_t lda, int64_t block_bytes_a, const int8_t *w,
                                  int64_t block_bytes_w, int64_t nblocks, int64_t quads, int64_t quads_last,
                                  const int32_t *wsum, const float *sx, int64_t ldsx, const float *sw, float *c,
                                  int64_t ldc) {
    (void)wsum;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nblocks; b++) {
        const uint8_t *ab = a + b * block_bytes_a;
        const int8_t *wb = w + b * block_bytes_w;
        const int64_t nq = b == nblocks - 1 ? quads_last : quads;
        __m256i acc[MR][2];
#pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
        for (int64_t q = 0; q < nq; q++) {
            const int8_t *wq = wb + q * 4 * NR * 2;
            const __m256i w0 = _mm256_load_si256((const __m256i *)wq);
            const __m256i w1 = _mm256_load_si256((const __m256i *)(wq + 32));
            const __m256i u0 = _mm256_load_si256((const __m256i *)(wq + 64));
            const __m256i u1 = _mm256_load_si256((const __m256i *)(wq + 96));
#pragma clang loop unroll(full)
            for (int i = 0; i < MR; i++) {
                int32_t quad;
                memcpy(&quad, ab + i * lda + 4 * q, 4);
                const __m256i x = _mm256_set1_epi32(quad);
                const __m256i p0 = _mm256_maddubs_epi16(u0, _mm256_sign_epi8(x, w0));
                const __m256i p1 = _mm256_maddubs_epi16(u1, _mm256_sign_epi8(x, w1));
                acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(p0, ones));
                acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(p1, ones));
            }
        }
        const __m256 s0 = _mm256_loadu_ps(sw + b * NR), s1 = _mm256_loadu_ps(sw + b * NR + 8);
#pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) {
            const __m256 si = _mm256_set1_ps(sx[i * ldsx + b]);
            float *ci = c + i * ldc;
            // acc += float(S) * (sx * sw): the scale product first, then the term, then the sum.
            const __m256 t0 = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[i][0]), _mm256_mul_ps(si, s0));
            const __m256 t1 = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[i][1]), _mm256_mul_ps(si, s1));
            _mm256_storeu_ps(ci, _mm256_add_ps(_mm256_loadu_ps(ci), t0));
            _mm256_storeu_ps(ci + 8, _mm256_add_ps(_mm256_loadu_ps(ci + 8), t1));
        }
    }
}
#endif
