// Float32 GEMM on a weight that exists only as INT8 (block-wise) or e4m3 (per-tensor) codes: the
// decode is fused into the packing of each weight panel, so there is no float copy of the weight
// and the input is never re-packed (it is read in place, row-major). Per thread: for each panel of
// 64 columns and each 256-deep K chunk, the codes are decoded (INT8: q * s of the block; e4m3:
// float(q) * scale, both exactly what dequantize gives) and transposed into four 16-column
// sub-panels ([k][16] floats, 64 KB: L2); a 6 x 16 FMA micro-kernel (12 accumulators, each input
// value broadcast once for 16 columns) adds each row tile into a float tile of m x 64.
#include "ck_internal.h"

#pragma STDC FP_CONTRACT OFF

enum { MR = 6, NR = 16, NC = 64, KC = 256, MC = 96 };

/// Decodes weight rows [col0, col0 + NR) (rows >= n1 as zeros), K [k0, k0 + depth), into a
/// [depth][NR] panel; portable.
static void decode_panel_portable(const ck_decoded_weight *w, int64_t k, int64_t col0, int64_t n1, int64_t k0,
                                  int64_t depth, float *panel) {
    const int64_t kb = w->kind == CK_WEIGHT_INT8 ? ck_ceil_div(k, w->bk) : 1;
    for (int64_t c = 0; c < NR; c++) {
        const int64_t col = col0 + c;
        for (int64_t t = 0; t < depth; t++) {
            float v = 0;
            if (col < n1) {
                const int64_t p = k0 + t;
                if (w->kind == CK_WEIGHT_INT8) {
                    v = (float)((const int8_t *)w->codes)[col * k + p] * w->scales[(col / w->bn) * kb + p / w->bk];
                } else {
                    v = ck_e4m3_value(((const uint8_t *)w->codes)[col * k + p]) * w->scale;
                }
            }
            panel[t * NR + c] = v;
        }
    }
}

#if CK_X86
/// 8 rows of 8 floats transposed in place.
CK_AVX2 static inline void transpose8x8_ps(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int h = 0; h < 2; h++) {
        u[4 * h + 0] = _mm256_shuffle_ps(t[4 * h + 0], t[4 * h + 2], 0x44);
        u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h + 0], t[4 * h + 2], 0xEE);
        u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
        u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x20);
        r[4 + i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x31);
    }
}

/// The exact float values of 8 e4m3 codes (see fp8_pertensor.c: the code with its sign at bit 15
/// and its other bits at 13..7 is the float16 of value / 256; 0x7F and 0xFF become a NaN).
CK_AVX2 static inline __m256 e4m3_decode8(const uint8_t *q) {
    const __m128i shifted = _mm_slli_epi16(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)q)), 8);
    __m128i h = _mm_and_si128(_mm_srai_epi16(shifted, 1), _mm_set1_epi16((short)0xBFFF));
    const __m128i nan = _mm_set1_epi16(0x7F00);
    h = _mm_or_si128(h, _mm_cmpeq_epi16(_mm_and_si128(shifted, nan), nan));
    return _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_set1_ps(256.0f));
}

/// Decodes and transposes a panel, 8 columns x 8 K values at a time where the 8 values share a
/// block (INT8) and all 8 columns exist; the rest element by element.
CK_AVX2 static void decode_panel_avx2(const ck_decoded_weight *w, int64_t k, int64_t col0, int64_t n1, int64_t k0,
                                      int64_t depth, float *panel) {
    const int64_t kb = w->kind == CK_WEIGHT_INT8 ? ck_ceil_div(k, w->bk) : 1;
    const int64_t vdepth = depth / 8 * 8;
    const int vector_ok = col0 + NR <= n1 && (w->kind != CK_WEIGHT_INT8 || (w->bk % 8 == 0 && k0 % 8 == 0));
    if (!vector_ok || vdepth == 0) {
        decode_panel_portable(w, k, col0, n1, k0, depth, panel);
        return;
    }
    for (int64_t c0 = 0; c0 < NR; c0 += 8) {
        for (int64_t t = 0; t < vdepth; t += 8) {
            const int64_t p = k0 + t;
            __m256 r[8];
            for (int c = 0; c < 8; c++) {
                const int64_t col = col0 + c0 + c;
                if (w->kind == CK_WEIGHT_INT8) {
                    const int8_t *src = (const int8_t *)w->codes + col * k + p;
                    const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)src)));
                    r[c] = _mm256_mul_ps(q, _mm256_set1_ps(w->scales[(col / w->bn) * kb + p / w->bk]));
                } else {
                    r[c] = _mm256_mul_ps(e4m3_decode8((const uint8_t *)w->codes + col * k + p),
                                         _mm256_set1_ps(w->scale));
                }
            }
            transpose8x8_ps(r);
            for (int i = 0; i < 8; i++) _mm256_store_ps(panel + (t + i) * NR + c0, r[i]);
        }
    }
    if (vdepth < depth) {
        for (int64_t t = vdepth; t < depth; t++)
            for (int64_t c = 0; c < NR; c++) {
                const int64_t col = col0 + c, q = k0 + t;
                panel[t * NR + c] = w->kind == CK_WEIGHT_INT8
                    ? (float)((const int8_t *)w->codes)[col * k + q] * w->scales[(col / w->bn) * kb + q / w->bk]
                    : ck_e4m3_value(((const uint8_t *)w->codes)[col * k + q]) * w->scale;
            }
    }
}

/// R (1..6) rows x 16 columns over `depth` K values: c[r][0..16) += sum_t x[r][t] panel[t][..].
CK_AVX2 static inline __attribute__((always_inline)) void fma_tile(const float *x, int64_t ldx, const float *panel,
                                                                   int64_t depth, float *c, int64_t ldc, const int R) {
    __m256 acc[MR][2];
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t t = 0; t < depth; t++) {
        const __m256 w0 = _mm256_load_ps(panel + t * NR), w1 = _mm256_load_ps(panel + t * NR + 8);
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            const __m256 xv = _mm256_broadcast_ss(x + r * ldx + t);
            acc[r][0] = _mm256_fmadd_ps(xv, w0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(xv, w1, acc[r][1]);
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        _mm256_storeu_ps(c + r * ldc, _mm256_add_ps(_mm256_loadu_ps(c + r * ldc), acc[r][0]));
        _mm256_storeu_ps(c + r * ldc + 8, _mm256_add_ps(_mm256_loadu_ps(c + r * ldc + 8), acc[r][1]));
    }
}

CK_AVX2 static void tile_rows(const float *x, int64_t ldx, const float *panel, int64_t depth, float *c, int64_t ldc,
                              int64_t rows) {
    switch (rows) {
    case 1: fma_tile(x, ldx, panel, depth, c, ldc, 1); break;
    case 2: fma_tile(x, ldx, panel, depth, c, ldc, 2); break;
    case 3: fma_tile(x, ldx, panel, depth, c, ldc, 3); break;
    case 4: fma_tile(x, ldx, panel, depth, c, ldc, 4); break;
    case 5: fma_tile(x, ldx, panel, depth, c, ldc, 5); break;
    default: fma_tile(x, ldx, panel, depth, c, ldc, 6); break;
    }
}
#endif

/// Plain C tile: c[r][0..16) += sum_t x[r][t] panel[t][..].
static void tile_rows_portable(const float *x, int64_t ldx, const float *panel, int64_t depth, float *c,
                               int64_t ldc, int64_t rows) {
    for (int64_t r = 0; r < rows; r++) {
        float acc[NR] = {0};
        for (int64_t t = 0; t < depth; t++) {
            const float xv = x[r * ldx + t];
            for (int64_t j = 0; j < NR; j++) acc[j] += xv * panel[t * NR + j];
        }
        for (int64_t j = 0; j < NR; j++) c[r * ldc + j] += acc[j];
    }
}

int ck_decoded_gemm(const float *x, int64_t m, int64_t n, int64_t k, const ck_decoded_weight *w, float alpha,
                    const float *bias, void *out, int out_dtype, int64_t n0, int64_t n1, int path) {
    if (n0 >= n1 || m <= 0) return 0;
    float *panel = ck_alloc((size_t)(NC / NR) * KC * NR * 4);
    float *cbuf = ck_alloc((size_t)(m * NC) * 4);
    float *tmp = ck_alloc((size_t)NC * 4);
    if (!panel || !cbuf || !tmp) {
        free(panel); free(cbuf); free(tmp);
        return -1;
    }
    const size_t esize = ck_out_size(out_dtype);
    for (int64_t nc0 = n0; nc0 < n1; nc0 += NC) {
        const int64_t cols = n1 - nc0 < NC ? n1 - nc0 : NC, nsub = ck_ceil_div(cols, NR);
        memset(cbuf, 0, (size_t)(m * NC) * 4);
        for (int64_t k0 = 0; k0 < k; k0 += KC) {
            const int64_t depth = k - k0 < KC ? k - k0 : KC;
            for (int64_t s = 0; s < nsub; s++) {
                float *sub = panel + s * KC * NR;
#if CK_X86
                if (path != CK_PATH_PORTABLE) decode_panel_avx2(w, k, nc0 + s * NR, n1, k0, depth, sub);
                else
#endif
                    decode_panel_portable(w, k, nc0 + s * NR, n1, k0, depth, sub);
            }
            // Row chunks of MC rows (their input chunk, 96 KB, stays in L2); each sub-panel (16 KB)
            // stays in L1 while the chunk's row tiles pass over it.
            for (int64_t mc0 = 0; mc0 < m; mc0 += MC) {
                const int64_t mc1 = mc0 + MC < m ? mc0 + MC : m;
                for (int64_t s = 0; s < nsub; s++) {
                    for (int64_t mt = mc0; mt < mc1; mt += MR) {
                        const int64_t rows = mc1 - mt < MR ? mc1 - mt : MR;
                        const float *xt = x + mt * k + k0, *sub = panel + s * KC * NR;
                        float *ct = cbuf + mt * NC + s * NR;
#if CK_X86
                        if (path != CK_PATH_PORTABLE) tile_rows(xt, k, sub, depth, ct, NC, rows);
                        else
#endif
                            tile_rows_portable(xt, k, sub, depth, ct, NC, rows);
                    }
                }
            }
        }
        for (int64_t r = 0; r < m; r++) {
            for (int64_t c = 0; c < cols; c++) {
                const float v = cbuf[r * NC + c] * alpha;
                tmp[c] = bias ? v + bias[nc0 + c] : v;
            }
            ck_store(tmp, (char *)out + ((size_t)r * (size_t)n + (size_t)nc0) * esize, out_dtype, cols, path);
        }
    }
    free(panel); free(cbuf); free(tmp);
    return 0;
}
