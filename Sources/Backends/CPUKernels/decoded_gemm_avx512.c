// AVX-512F micro-kernel of the float GEMM on decoded weight panels (decoded_gemm.c), for CPUs whose
// FMA units take 16 floats (the AVX-512 paths): 12 rows (two packed 6-row input tiles) x 32 columns
// (two 16-column sub-panels) per call, 24 zmm accumulators, each input value broadcast once for 32
// columns. Same operands and the same per-element FMA chain (t increasing from a zero accumulator,
// then added to the float tile) as the AVX2 6 x 16 kernel: the two give bit-identical results.
#include "decoded_gemm.h"

#pragma STDC FP_CONTRACT OFF

#if CK_X86
/// rows x (16 * subs) of c (+)= x tiles (x0 rows 0-5, x1 rows 6-11 when tiles == 2) times sub-panels
/// p0 (and p1 when subs == 2) over `depth` K values; only the first `rows` rows are stored.
CK_AVX512F static inline __attribute__((always_inline)) void tile(const float *x0, const float *x1,
                                                                   const float *p0, const float *p1, int64_t depth,
                                                                   float *c, int64_t ldc, int64_t rows,
                                                                   const int tiles, const int subs,
                                                                   int prefetch_c) {
    __m512 acc[2 * MR][2];
    for (int r = 0; r < MR * tiles; r++) {
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        if (prefetch_c) {
            _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
            if (subs == 2) _mm_prefetch((const char *)(c + r * ldc + NR), _MM_HINT_T0);
        }
    }
    for (int64_t t = 0; t < depth; t++) {
        const __m512 w0 = _mm512_load_ps(p0 + t * NR);
        const __m512 w1 = subs == 2 ? _mm512_load_ps(p1 + t * NR) : w0;
        for (int r = 0; r < MR * tiles; r++) {
            const __m512 xv = _mm512_set1_ps(r < MR ? x0[t * MR + r] : x1[t * MR + r - MR]);
            acc[r][0] = _mm512_fmadd_ps(xv, w0, acc[r][0]);
            if (subs == 2) acc[r][1] = _mm512_fmadd_ps(xv, w1, acc[r][1]);
        }
    }
    for (int r = 0; r < MR * tiles; r++) {
        if (r < rows) {
            float *cr = c + r * ldc;
            _mm512_storeu_ps(cr, _mm512_add_ps(_mm512_loadu_ps(cr), acc[r][0]));
            if (subs == 2) _mm512_storeu_ps(cr + NR, _mm512_add_ps(_mm512_loadu_ps(cr + NR), acc[r][1]));
        }
    }
}

CK_AVX512F void ck_decoded_chunk_avx512(const float *x, int64_t rows, const float *panel, int64_t nsub,
                                        int64_t depth, float *c, int64_t ldc, int prefetch_c) {
    for (int64_t mt = 0; mt < rows; mt += 2 * MR) {
        const int64_t live = rows - mt < 2 * MR ? rows - mt : 2 * MR;
        const float *x0 = x + (mt / MR) * KC * MR, *x1 = x0 + KC * MR;
        float *ct = c + mt * ldc;
        int64_t s = 0;
        if (live > MR) {
            for (; s + 2 <= nsub; s += 2)
                tile(x0, x1, panel + s * KC * NR, panel + (s + 1) * KC * NR, depth, ct + s * NR, ldc, live, 2, 2,
                     prefetch_c);
            if (s < nsub) tile(x0, x1, panel + s * KC * NR, NULL, depth, ct + s * NR, ldc, live, 2, 1, prefetch_c);
        } else {
            for (; s + 2 <= nsub; s += 2)
                tile(x0, NULL, panel + s * KC * NR, panel + (s + 1) * KC * NR, depth, ct + s * NR, ldc, live, 1, 2,
                     prefetch_c);
            if (s < nsub) tile(x0, NULL, panel + s * KC * NR, NULL, depth, ct + s * NR, ldc, live, 1, 1, prefetch_c);
        }
    }
}
#endif
