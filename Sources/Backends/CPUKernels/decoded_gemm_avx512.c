// AVX-512F kernels of the float GEMM on decoded weight panels (decoded_gemm.c), for CPUs whose FMA
// units take 16 floats (the AVX-512 paths). The micro-kernel (session 7): 24 rows (four packed 6-row
// input tiles) x 16 columns (one sub-panel) per call, 24 zmm accumulators. Each K step loads the
// sub-panel's 16 values as two vectors (even values duplicated, odd values duplicated) and broadcasts
// the input values in pairs (rows 2j, 2j + 1: 8 bytes), so one broadcast feeds two FMAs and the weight
// stream from L2 is one cache line per 24 FMAs (the 12 x 32 kernel it replaces read two; OpenBLAS's
// SkylakeX sgemm kernel uses the same pairing). Accumulator lane 2i of pair j holds (row 2j, column
// 2i) for the even vector, (row 2j, column 2i + 1) for the odd one; odd lanes hold row 2j + 1; they are
// unpacked into rows when the call ends. Same operands and the same per-element FMA chain (t increasing
// from a zero accumulator, then added to the float tile) as the AVX2 6 x 16 kernel: the two give
// bit-identical results. The INT8 decode runs 16 columns x 16 K values through a 16 x 16 transpose
// (the same values as the AVX2 8 x 8 one).
#include "decoded_gemm.h"

#pragma STDC FP_CONTRACT OFF

#if CK_X86
CK_AVX512 int64_t ck_decoded_decode_avx512(const ck_decoded_weight *w, int64_t k, int64_t col0, int64_t n1,
                                            int64_t k0, int64_t depth, float *panel) {
    const int64_t vdepth = depth / NR * NR;
    if (w->kind != CK_WEIGHT_INT8 || col0 + NR > n1 || vdepth == 0 || w->bk % NR != 0 || k0 % NR != 0) return 0;
    const int64_t kb = ck_ceil_div(k, w->bk);
    const float *scale_rows[NR];
    for (int c = 0; c < NR; c++) scale_rows[c] = w->scales + ((col0 + c) / w->bn) * kb;
    int64_t block = k0 / w->bk, block_end = (block + 1) * w->bk;
    for (int64_t t = 0; t < vdepth; t += NR) {
        const int64_t p = k0 + t;
        if (p >= block_end) {
            block++;
            block_end += w->bk;
        }
        __m512i r[NR];
        for (int c = 0; c < NR; c++) {
            const int8_t *src = (const int8_t *)w->codes + (col0 + c) * k + p;
            const __m512 q = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)src)));
            r[c] = _mm512_castps_si512(_mm512_mul_ps(q, _mm512_set1_ps(scale_rows[c][block])));
        }
        ck_transpose16x16_epi32(r);
        for (int i = 0; i < NR; i++) _mm512_store_ps(panel + (t + i) * NR, _mm512_castsi512_ps(r[i]));
    }
    return vdepth;
}

/// rows x 16 of c += the `tiles` consecutive input tiles at x (tile i at x + i * KC * MR, rows 6i ..
/// 6i + 5) times the sub-panel p over `depth` K values (`first`: c = 0 + the sums, c is not read);
/// only the first `rows` rows are stored.
CK_AVX512 static inline __attribute__((always_inline)) void tile(const float *x, const float *p, int64_t depth,
                                                                   float *c, int64_t ldc, int64_t rows,
                                                                   const int tiles, int prefetch_c, int first) {
    enum { PAIRS = MR / 2 };
    __m512 even[4 * PAIRS], odd[4 * PAIRS];
#pragma clang loop unroll(full)
    for (int j = 0; j < PAIRS * tiles; j++) {
        even[j] = odd[j] = _mm512_setzero_ps();
        if (prefetch_c) {
            _mm_prefetch((const char *)(c + 2 * j * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + (2 * j + 1) * ldc), _MM_HINT_T0);
        }
    }
    // Unrolled 4 times: the pointer increments and the loop branch, which may take an FMA port,
    // once per 96 FMAs instead of 24 (+1-3% in the harness, inside its noise each time).
#pragma clang loop unroll_count(4)
    for (int64_t t = 0; t < depth; t++) {
        // The memory forms: a load-port operation each, where the compiler's single load and two
        // register shuffles would take two slots of the FMA ports.
        __m512 w_even, w_odd;
        _mm_prefetch((const char *)(p + (t + 8) * NR), _MM_HINT_T0);
        __asm__("vmovsldup %1, %0" : "=v"(w_even) : "m"(*(const __m512 *)(p + t * NR)));
        __asm__("vmovshdup %1, %0" : "=v"(w_odd) : "m"(*(const __m512 *)(p + t * NR)));
#pragma clang loop unroll(full)
        for (int j = 0; j < PAIRS * tiles; j++) {
            const double *pair = (const double *)(x + (j / PAIRS) * KC * MR + t * MR + 2 * (j % PAIRS));
            const __m512 xv = _mm512_castpd_ps(_mm512_set1_pd(*pair));
            even[j] = _mm512_fmadd_ps(w_even, xv, even[j]);
            odd[j] = _mm512_fmadd_ps(w_odd, xv, odd[j]);
        }
    }
#pragma clang loop unroll(full)
    for (int j = 0; j < PAIRS * tiles; j++) {
        const __m512 lo = _mm512_unpacklo_ps(even[j], odd[j]), hi = _mm512_unpackhi_ps(even[j], odd[j]);
        const __m512 row0 = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(lo), _mm512_castps_pd(hi)));
        const __m512 row1 = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(lo), _mm512_castps_pd(hi)));
        float *c0 = c + 2 * j * ldc, *c1 = c0 + ldc;
        const __m512 zero = _mm512_setzero_ps();
        if (2 * j < rows) _mm512_storeu_ps(c0, _mm512_add_ps(first ? zero : _mm512_loadu_ps(c0), row0));
        if (2 * j + 1 < rows) _mm512_storeu_ps(c1, _mm512_add_ps(first ? zero : _mm512_loadu_ps(c1), row1));
    }
}

CK_AVX512 void ck_decoded_chunk_avx512(const float *x, int64_t rows, const float *panel, int64_t nsub,
                                        int64_t depth, float *c, int64_t ldc, int prefetch_c, int first) {
    for (int64_t mt = 0; mt < rows; mt += 4 * MR) {
        const int64_t live = rows - mt < 4 * MR ? rows - mt : 4 * MR;
        const float *xt = x + (mt / MR) * KC * MR;
        float *ct = c + mt * ldc;
        for (int64_t s = 0; s < nsub; s++) {
            const float *p = panel + s * KC * NR;
            if (live > 3 * MR) tile(xt, p, depth, ct + s * NR, ldc, live, 4, prefetch_c, first);
            else if (live > 2 * MR) tile(xt, p, depth, ct + s * NR, ldc, live, 3, prefetch_c, first);
            else if (live > MR) tile(xt, p, depth, ct + s * NR, ldc, live, 2, prefetch_c, first);
            else tile(xt, p, depth, ct + s * NR, ldc, live, 1, prefetch_c, first);
        }
    }
}
#endif
