// VNNI micro-kernels of the W8A8 GEMM: vpdpbusd adds four u8 x s8 products into each int32 lane
// (no int16 step, no saturation). The activation is stored as u8 = q + 128, so a block sum is
// sum (q + 128) w = S + 128 sum w; the packer records sum w per column and block and the flush
// subtracts 128 of it (exact in wrapping int32, since S itself fits).
// AVX-VNNI (ymm): 6 rows x 16 columns, 12 accumulators. AVX-512 VNNI (zmm): 8 rows x 32 columns.
#include "int8_gemm.h"

#if CK_X86
CK_AVXVNNI void ck_gemm_ukernel_avxvnni(const uint8_t *a, int64_t lda, int64_t block_bytes_a, const int8_t *w,
                                        int64_t block_bytes_w, int64_t nblocks, int64_t quads, int64_t quads_last,
                                        const int32_t *wsum, const float *sx, int64_t ldsx, const float *sw, float *c,
                                        int64_t ldc) {
    enum { MR = 6, NR = 16 };
    for (int64_t b = 0; b < nblocks; b++) {
        const uint8_t *ab = a + b * block_bytes_a;
        const int8_t *wb = w + b * block_bytes_w;
        const int64_t nq = b == nblocks - 1 ? quads_last : quads;
        __m256i acc[MR][2];
#pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
        for (int64_t q = 0; q < nq; q++) {
            const __m256i w0 = _mm256_load_si256((const __m256i *)(wb + q * 4 * NR));
            const __m256i w1 = _mm256_load_si256((const __m256i *)(wb + q * 4 * NR + 32));
#pragma clang loop unroll(full)
            for (int i = 0; i < MR; i++) {
                int32_t quad;
                memcpy(&quad, ab + i * lda + 4 * q, 4);
                const __m256i x = _mm256_set1_epi32(quad);
                acc[i][0] = _mm256_dpbusd_avx_epi32(acc[i][0], x, w0);
                acc[i][1] = _mm256_dpbusd_avx_epi32(acc[i][1], x, w1);
            }
        }
        const __m256i corr0 = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(wsum + b * NR)), 7);
        const __m256i corr1 = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(wsum + b * NR + 8)), 7);
        const __m256 s0 = _mm256_loadu_ps(sw + b * NR), s1 = _mm256_loadu_ps(sw + b * NR + 8);
#pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) {
            const __m256 si = _mm256_set1_ps(sx[i * ldsx + b]);
            float *ci = c + i * ldc;
            const __m256 f0 = _mm256_cvtepi32_ps(_mm256_sub_epi32(acc[i][0], corr0));
            const __m256 f1 = _mm256_cvtepi32_ps(_mm256_sub_epi32(acc[i][1], corr1));
            _mm256_storeu_ps(ci, _mm256_add_ps(_mm256_loadu_ps(ci), _mm256_mul_ps(f0, _mm256_mul_ps(si, s0))));
            _mm256_storeu_ps(ci + 8,
                             _mm256_add_ps(_mm256_loadu_ps(ci + 8), _mm256_mul_ps(f1, _mm256_mul_ps(si, s1))));
        }
    }
}

CK_VNNI void ck_gemm_ukernel_avx512vnni(const uint8_t *a, int64_t lda, int64_t block_bytes_a, const int8_t *w,
                                        int64_t block_bytes_w, int64_t nblocks, int64_t quads, int64_t quads_last,
                                        const int32_t *wsum, const float *sx, int64_t ldsx, const float *sw, float *c,
                                        int64_t ldc) {
    enum { MR = 8, NR = 32 };
    for (int64_t b = 0; b < nblocks; b++) {
        const uint8_t *ab = a + b * block_bytes_a;
        const int8_t *wb = w + b * block_bytes_w;
        const int64_t nq = b == nblocks - 1 ? quads_last : quads;
        __m512i acc[MR][2];
#pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
        for (int64_t q = 0; q < nq; q++) {
            const __m512i w0 = _mm512_load_si512((const void *)(wb + q * 4 * NR));
            const __m512i w1 = _mm512_load_si512((const void *)(wb + q * 4 * NR + 64));
#pragma clang loop unroll(full)
            for (int i = 0; i < MR; i++) {
                int32_t quad;
                memcpy(&quad, ab + i * lda + 4 * q, 4);
                const __m512i x = _mm512_set1_epi32(quad);
                acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], x, w0);
                acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], x, w1);
            }
        }
        const __m512i corr0 = _mm512_slli_epi32(_mm512_loadu_si512((const void *)(wsum + b * NR)), 7);
        const __m512i corr1 = _mm512_slli_epi32(_mm512_loadu_si512((const void *)(wsum + b * NR + 16)), 7);
        const __m512 s0 = _mm512_loadu_ps(sw + b * NR), s1 = _mm512_loadu_ps(sw + b * NR + 16);
#pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) {
            const __m512 si = _mm512_set1_ps(sx[i * ldsx + b]);
            float *ci = c + i * ldc;
            const __m512 f0 = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][0], corr0));
            const __m512 f1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][1], corr1));
            _mm512_storeu_ps(ci, _mm512_add_ps(_mm512_loadu_ps(ci), _mm512_mul_ps(f0, _mm512_mul_ps(si, s0))));
            _mm512_storeu_ps(ci + 16,
                             _mm512_add_ps(_mm512_loadu_ps(ci + 16), _mm512_mul_ps(f1, _mm512_mul_ps(si, s1))));
        }
    }
}
#endif
