// Float32 GEMM on a weight that exists only as INT8 (block-wise) or e4m3 (per-tensor) codes: the
// decode is fused into the packing of each weight panel, so there is no float copy of the weight.
// The input is packed once per product (ck_decoded_gemm_pack_input, shared by the threads) into
// 6-row tiles, chunk-major: for each 256-deep K chunk, every tile's [t][6] values in row order.
// Per thread, GotoBLAS's orientation: for each panel of 256 columns and each K chunk, the codes are
// decoded (INT8: q * s of the block; e4m3: float(q) * scale, both exactly what dequantize gives) and
// transposed into sixteen 16-column sub-panels ([k][16] floats, 256 KB: the L2-resident block); then
// each 6-row input tile (6 KB, L1) passes over all sub-panels, a 6 x 16 FMA micro-kernel (12
// accumulators, each input value broadcast once for 16 columns, the sub-panel streamed from L2)
// adding into a float tile of rows x 256. On the AVX-512 paths the micro-kernel is 24 x 16
// (decoded_gemm_avx512.c: four tiles, input values broadcast in pairs), the decode 16 x 16, the
// first chunk's sums are stored (no zeroing of the float tile), bit-identical to the AVX2 path.
// NOTES.md ("CPU kernels") has the measurements.
#include "decoded_gemm.h"
#include <float.h>

#pragma STDC FP_CONTRACT OFF

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

/// The float values / 256 of 8 e4m3 codes, exact (see fp8_pertensor.c: the code with its sign at bit
/// 15 and its other bits at 13..7 is the float16 of value / 256; 0x7F and 0xFF become a NaN).
CK_AVX2 static inline __m256 e4m3_decode8_div256(const uint8_t *q) {
    const __m128i shifted = _mm_slli_epi16(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)q)), 8);
    __m128i h = _mm_and_si128(_mm_srai_epi16(shifted, 1), _mm_set1_epi16((short)0xBFFF));
    const __m128i nan = _mm_set1_epi16(0x7F00);
    h = _mm_or_si128(h, _mm_cmpeq_epi16(_mm_and_si128(shifted, nan), nan));
    return _mm256_cvtph_ps(h);
}

/// Decodes and transposes a panel, 8 columns x 8 K values at a time, when all NR columns exist, the
/// INT8 blocks start at multiples of 8 and the e4m3 scale times 256 is finite; else element by
/// element. INT8: each column's scale row is found once and the block index advances with K (no
/// division per value). e4m3: (value / 256) * (256 * scale) is the one rounding of value * scale that
/// dequantize makes, since the factor 256 is exact.
CK_AVX2 static void decode_panel_avx2(const ck_decoded_weight *w, int64_t k, int64_t col0, int64_t n1, int64_t k0,
                                      int64_t depth, float *panel) {
    const int int8 = w->kind == CK_WEIGHT_INT8;
    const int64_t vdepth = depth / 8 * 8;
    const int vector_ok = col0 + NR <= n1 && (int8 ? w->bk % 8 == 0 && k0 % 8 == 0 : fabsf(w->scale) <= FLT_MAX / 256);
    if (!vector_ok || vdepth == 0) {
        decode_panel_portable(w, k, col0, n1, k0, depth, panel);
        return;
    }
    const int64_t kb = int8 ? ck_ceil_div(k, w->bk) : 1;
    const __m256 scale256 = _mm256_set1_ps(w->scale * 256.0f);
    for (int64_t c0 = 0; c0 < NR; c0 += 8) {
        const float *scale_rows[8];
        for (int c = 0; c < 8; c++) scale_rows[c] = int8 ? w->scales + ((col0 + c0 + c) / w->bn) * kb : NULL;
        int64_t block = int8 ? k0 / w->bk : 0, block_end = int8 ? (block + 1) * w->bk : k;
        for (int64_t t = 0; t < vdepth; t += 8) {
            const int64_t p = k0 + t;
            if (p >= block_end) {
                block++;
                block_end += w->bk;
            }
            __m256 r[8];
            for (int c = 0; c < 8; c++) {
                const int64_t col = col0 + c0 + c;
                if (int8) {
                    const int8_t *src = (const int8_t *)w->codes + col * k + p;
                    const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)src)));
                    r[c] = _mm256_mul_ps(q, _mm256_broadcast_ss(scale_rows[c] + block));
                } else {
                    r[c] = _mm256_mul_ps(e4m3_decode8_div256((const uint8_t *)w->codes + col * k + p), scale256);
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
                panel[t * NR + c] = int8
                    ? (float)((const int8_t *)w->codes)[col * k + q] * w->scales[(col / w->bn) * kb + q / w->bk]
                    : ck_e4m3_value(((const uint8_t *)w->codes)[col * k + q]) * w->scale;
            }
    }
}

/// One packed 6-row tile x 16 columns over `depth` K values (row r of K value t at x[t * MR + r]):
/// c[r][0..16) += sum_t x[t][r] panel[t][..] for the first `rows` rows (the others are padding).
/// `prefetch_c` fetches the c rows before the loop, for float tiles too large for L2, whose rows would
/// otherwise arrive from L3 after it (measured +3% on average at M = 1024, one thread; none at 256).
CK_AVX2 static void tile_rows(const float *x, const float *panel, int64_t depth, float *c, int64_t ldc,
                              int64_t rows, int prefetch_c) {
    __m256 acc[MR][2];
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        if (prefetch_c) {
            _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + r * ldc + 8), _MM_HINT_T0);
        }
    }
    for (int64_t t = 0; t < depth; t++) {
        const __m256 w0 = _mm256_load_ps(panel + t * NR), w1 = _mm256_load_ps(panel + t * NR + 8);
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
            const __m256 xv = _mm256_broadcast_ss(x + t * MR + r);
            acc[r][0] = _mm256_fmadd_ps(xv, w0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(xv, w1, acc[r][1]);
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        if (r < rows) {
            _mm256_storeu_ps(c + r * ldc, _mm256_add_ps(_mm256_loadu_ps(c + r * ldc), acc[r][0]));
            _mm256_storeu_ps(c + r * ldc + 8, _mm256_add_ps(_mm256_loadu_ps(c + r * ldc + 8), acc[r][1]));
        }
    }
}

/// Element `index` of the input: x[index], or the exact value of the e4m3 code q[index] when `q` is set.
static inline float input_value(const float *x, const uint8_t *q, int64_t index) {
    return q ? ck_e4m3_value(q[index]) : x[index];
}

/// Packs tile `tile` of the input (rows 6 tile .. 6 tile + 5, zeros past m), 8 K values at a time:
/// the 6 rows' 8 values are transposed (8 x 8 with two zero rows) and stored 6 lanes per K value. With
/// `q` (e4m3 codes) each 8 codes are decoded first: value / 256 through F16C, times 256 (exact).
CK_AVX2 static void pack_tile_avx2(const float *x, const uint8_t *q, int64_t m, int64_t k, int64_t tile,
                                   int64_t tiles, float *xp) {
    const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    const __m256 f256 = _mm256_set1_ps(256.0f);
    const int64_t row0 = tile * MR;
    for (int64_t k0 = 0; k0 < k; k0 += KC) {
        const int64_t depth = k - k0 < KC ? k - k0 : KC, vdepth = depth / 8 * 8;
        float *dst = xp + ((k0 / KC) * tiles + tile) * KC * MR;
        for (int64_t t = 0; t < vdepth; t += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) {
                const int64_t at = (row0 + i) * k + k0 + t;
                r[i] = i >= MR || row0 + i >= m ? _mm256_setzero_ps()
                       : q                      ? _mm256_mul_ps(e4m3_decode8_div256(q + at), f256)
                                                : _mm256_loadu_ps(x + at);
            }
            transpose8x8_ps(r);
            for (int i = 0; i < 8; i++) _mm256_maskstore_ps(dst + (t + i) * MR, six, r[i]);
        }
        for (int64_t t = vdepth; t < depth; t++)
            for (int64_t i = 0; i < MR; i++)
                dst[t * MR + i] = row0 + i < m ? input_value(x, q, (row0 + i) * k + k0 + t) : 0;
    }
}
#endif

/// Plain C tile of the packed input: c[r][0..16) += sum_t x[t][r] panel[t][..].
static void tile_rows_portable(const float *x, const float *panel, int64_t depth, float *c, int64_t ldc,
                               int64_t rows) {
    for (int64_t r = 0; r < rows; r++) {
        float acc[NR] = {0};
        for (int64_t t = 0; t < depth; t++) {
            const float xv = x[t * MR + r];
            for (int64_t j = 0; j < NR; j++) acc[j] += xv * panel[t * NR + j];
        }
        for (int64_t j = 0; j < NR; j++) c[r * ldc + j] += acc[j];
    }
}

int64_t ck_decoded_gemm_input_size(int64_t m, int64_t k) {
    return ck_ceil_div(k, KC) * ck_ceil_div(m, MR) * KC * MR;
}

/// Row tiles [tile0, tile1) of the float input x, or of the e4m3 codes q decoded, into xp.
static void pack_input(const float *x, const uint8_t *q, int64_t m, int64_t k, int64_t tile0, int64_t tile1,
                       float *xp, int path) {
    const int64_t tiles = ck_ceil_div(m, MR);
    for (int64_t tile = tile0; tile < tile1 && tile < tiles; tile++) {
#if CK_X86
        if (path != CK_PATH_PORTABLE) {
            pack_tile_avx2(x, q, m, k, tile, tiles, xp);
            continue;
        }
#endif
        for (int64_t p = 0; p < k; p++) {
            float *dst = xp + ((p / KC) * tiles + tile) * KC * MR + (p % KC) * MR;
            for (int64_t i = 0; i < MR; i++)
                dst[i] = tile * MR + i < m ? input_value(x, q, (tile * MR + i) * k + p) : 0;
        }
    }
}

void ck_decoded_gemm_pack_input(const float *x, int64_t m, int64_t k, int64_t tile0, int64_t tile1, float *xp,
                                int path) {
    pack_input(x, NULL, m, k, tile0, tile1, xp, path);
}

void ck_decoded_gemm_pack_input_e4m3(const uint8_t *q, int64_t m, int64_t k, int64_t tile0, int64_t tile1, float *xp,
                                     int path) {
    pack_input(NULL, q, m, k, tile0, tile1, xp, path);
}

int ck_decoded_gemm(const float *xp, int64_t m, int64_t n, int64_t k, const ck_decoded_weight *w, float alpha,
                    const float *bias, void *out, int out_dtype, int64_t n0, int64_t n1, int path) {
    if (n0 >= n1 || m <= 0) return 0;
    const int64_t tiles = ck_ceil_div(m, MR);
    // Row chunks of equal size (whole tiles), at most MC_MAX rows each.
    const int64_t chunks = ck_ceil_div(m, MC_MAX), chunk_rows = ck_ceil_div(ck_ceil_div(m, chunks), MR) * MR;
    const size_t panel_bytes = (size_t)KC * NC * 4, tile_bytes = (size_t)chunk_rows * NC * 4;
    char *scratch = ck_scratch_acquire(panel_bytes + tile_bytes + (size_t)NC * 4);
    if (!scratch) return -1;
    float *panel = (float *)scratch, *cbuf = (float *)(scratch + panel_bytes);
    float *tmp = (float *)(scratch + panel_bytes + tile_bytes);
    const size_t esize = ck_out_size(out_dtype);
#if CK_X86
    const int avx512 = path == CK_PATH_AVX512VNNI || path == CK_PATH_AMX;
#else
    const int avx512 = 0;
#endif
    for (int64_t nc0 = n0; nc0 < n1; nc0 += NC) {
        const int64_t cols = n1 - nc0 < NC ? n1 - nc0 : NC, nsub = ck_ceil_div(cols, NR);
        for (int64_t mc0 = 0; mc0 < m; mc0 += chunk_rows) {
            const int64_t mc1 = mc0 + chunk_rows < m ? mc0 + chunk_rows : m;
            // The AVX-512 kernel stores the first chunk's sums (+ 0) itself.
            if (!avx512) memset(cbuf, 0, (size_t)((mc1 - mc0) * NC) * 4);
            const int prefetch_c = mc1 - mc0 > PREFETCH_C_ROWS;
            for (int64_t k0 = 0; k0 < k; k0 += KC) {
                const int64_t depth = k - k0 < KC ? k - k0 : KC;
                for (int64_t s = 0; s < nsub; s++) {
                    float *sub = panel + s * KC * NR;
#if CK_X86
                    if (path != CK_PATH_PORTABLE) {
                        const int64_t done = avx512 ? ck_decoded_decode_avx512(w, k, nc0 + s * NR, n1, k0, depth, sub) : 0;
                        if (done < depth) decode_panel_avx2(w, k, nc0 + s * NR, n1, k0 + done, depth - done, sub + done * NR);
                    } else
#endif
                        decode_panel_portable(w, k, nc0 + s * NR, n1, k0, depth, sub);
                }
                // Each input tile (L1) passes over every sub-panel of the block (L2).
#if CK_X86
                if (avx512) {
                    ck_decoded_chunk_avx512(xp + ((k0 / KC) * tiles + mc0 / MR) * KC * MR, mc1 - mc0, panel, nsub,
                                            depth, cbuf, NC, prefetch_c, k0 == 0);
                    continue;
                }
#endif
                for (int64_t mt = mc0; mt < mc1; mt += MR) {
                    const int64_t rows = mc1 - mt < MR ? mc1 - mt : MR;
                    const float *xt = xp + ((k0 / KC) * tiles + mt / MR) * KC * MR;
                    float *ct = cbuf + (mt - mc0) * NC;
                    for (int64_t s = 0; s < nsub; s++) {
#if CK_X86
                        if (path != CK_PATH_PORTABLE)
                            tile_rows(xt, panel + s * KC * NR, depth, ct + s * NR, NC, rows, prefetch_c);
                        else
#endif
                            tile_rows_portable(xt, panel + s * KC * NR, depth, ct + s * NR, NC, rows);
                    }
                }
            }
            for (int64_t r = mc0; r < mc1; r++) {
                // float32 rows are written in place; the others go through tmp to the dtype.
                char *dst = (char *)out + ((size_t)r * (size_t)n + (size_t)nc0) * esize;
                float *row = out_dtype == CK_OUT_F32 ? (float *)dst : tmp;
                for (int64_t c = 0; c < cols; c++) {
                    const float v = cbuf[(r - mc0) * NC + c] * alpha;
                    row[c] = bias ? v + bias[nc0 + c] : v;
                }
                ck_store(row, dst, out_dtype, cols, path);
            }
        }
    }
    ck_scratch_release(scratch);
    return 0;
}
