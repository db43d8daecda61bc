// Block-wise INT8 kernels: quantize, dequantize, the W8A8 GEMM (AVX2, AVX-512 VNNI, portable),
// and the decode-shape GEMVs. See CKernels.h for the contracts; ../../NOTES.md ("CPU kernels")
// for the design and the measurements behind it.
#include "ck_internal.h"
#include <float.h>

// MARK: - Quantize and dequantize

static float seg_amax_portable(const float *x, int64_t n, int *bad) {
    float a = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = fabsf(x[i]);
        if (!(v <= FLT_MAX)) *bad = 1;
        a = v > a ? v : a;
    }
    return a;
}

// Same operations as BlockWiseINT8Reference.code: a true division (not a reciprocal multiply),
// then the rounding, then the clamp, so the codes are bit-identical.
static void seg_quant_portable(const float *x, int64_t n, float scale, int rounding, int8_t *q) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] / scale;
        v = rounding ? truncf(v) : rintf(v);
        v = fminf(fmaxf(v, -127.0f), 127.0f);
        q[i] = (int8_t)v;
    }
}

#if CK_X86
CK_AVX2 static float seg_amax_avx2(const float *x, int64_t n, int *bad) {
    const __m256 sign = _mm256_set1_ps(-0.0f), inf = _mm256_set1_ps(INFINITY);
    __m256 m = _mm256_setzero_ps(), nonfinite = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i));
        m = _mm256_max_ps(m, v);
        nonfinite = _mm256_or_ps(nonfinite, _mm256_cmp_ps(v, inf, _CMP_NLT_UQ));
    }
    if (_mm256_movemask_ps(nonfinite)) *bad = 1;
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    float a = _mm_cvtss_f32(h);
    float t = seg_amax_portable(x + i, n - i, bad);
    return t > a ? t : a;
}

CK_AVX2 static inline __attribute__((always_inline)) void seg_quant_avx2_mode(const float *x, int64_t n,
                                                                               float scale, int rounding,
                                                                               int8_t *q) {
    const __m256 s = _mm256_set1_ps(scale), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i c[4];
        for (int u = 0; u < 4; u++) {
            __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i + 8 * u), s);
            v = rounding ? _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC)
                         : _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            c[u] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi));
        }
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3]));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + i), p);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i), s);
        v = rounding ? _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC)
                     : _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
        __m256i c = _mm256_cvtps_epi32(v);
        __m256i p = _mm256_packs_epi32(c, c);
        p = _mm256_packs_epi16(p, p);
        int32_t a = _mm_cvtsi128_si32(_mm256_castsi256_si128(p));
        int32_t b = _mm_cvtsi128_si32(_mm256_extracti128_si256(p, 1));
        memcpy(q + i, &a, 4);
        memcpy(q + i + 4, &b, 4);
    }
    seg_quant_portable(x + i, n - i, scale, rounding, q + i);
}

CK_AVX2 static void seg_quant_avx2(const float *x, int64_t n, float scale, int rounding, int8_t *q) {
    if (rounding) seg_quant_avx2_mode(x, n, scale, 1, q);
    else seg_quant_avx2_mode(x, n, scale, 0, q);
}
#endif

static float seg_amax(const float *x, int64_t n, int *bad, int path) {
#if CK_X86
    if (path != CK_PATH_PORTABLE) return seg_amax_avx2(x, n, bad);
#endif
    (void)path;
    return seg_amax_portable(x, n, bad);
}

static void seg_quant(const float *x, int64_t n, float scale, int rounding, int8_t *q, int path) {
#if CK_X86
    if (path != CK_PATH_PORTABLE) { seg_quant_avx2(x, n, scale, rounding, q); return; }
#endif
    (void)path;
    seg_quant_portable(x, n, scale, rounding, q);
}

int ck_i8_quantize(const float *x, int64_t rows, int64_t cols, int64_t br, int64_t bc, int rounding,
                   int64_t band0, int64_t band1, int8_t *q, float *scales, int path) {
    const int64_t row_blocks = ck_ceil_div(rows, br), col_blocks = ck_ceil_div(cols, bc);
    int bad = 0;
    for (int64_t b = band0; b < band1; b++) {
        const int64_t batch = b / row_blocks, r0 = (b % row_blocks) * br;
        const int64_t r1 = r0 + br < rows ? r0 + br : rows;
        const int64_t base = batch * rows * cols;
        for (int64_t cb = 0; cb < col_blocks; cb++) {
            const int64_t c0 = cb * bc, len = cols - c0 < bc ? cols - c0 : bc;
            // Both passes over a block run back to back, so the second reads it from cache.
            float amax = 0;
            for (int64_t r = r0; r < r1; r++) {
                float a = seg_amax(x + base + r * cols + c0, len, &bad, path);
                amax = a > amax ? a : amax;
            }
            const float scale = amax / 127.0f;
            scales[b * col_blocks + cb] = scale;
            for (int64_t r = r0; r < r1; r++) {
                int8_t *dst = q + base + r * cols + c0;
                if (scale > 0) seg_quant(x + base + r * cols + c0, len, scale, rounding, dst, path);
                else memset(dst, 0, (size_t)len);
            }
        }
    }
    return bad;
}

static void seg_dequant_portable(const int8_t *q, int64_t n, float scale, float *out) {
    for (int64_t i = 0; i < n; i++) out[i] = (float)q[i] * scale;
}

#if CK_X86
CK_AVX2 static void seg_dequant_avx2(const int8_t *q, int64_t n, float scale, float *out) {
    const __m256 s = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + i)));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtepi32_ps(v), s));
    }
    seg_dequant_portable(q + i, n - i, scale, out + i);
}
#endif

static void seg_dequant(const int8_t *q, int64_t n, float scale, float *out, int path) {
#if CK_X86
    if (path != CK_PATH_PORTABLE) { seg_dequant_avx2(q, n, scale, out); return; }
#endif
    (void)path;
    seg_dequant_portable(q, n, scale, out);
}

int ck_i8_dequantize(const int8_t *q, const float *scales, int64_t rows, int64_t cols, int64_t br, int64_t bc,
                     int64_t row0, int64_t row1, void *out, int out_dtype, int path) {
    if (out_dtype != CK_OUT_F32 && out_dtype != CK_OUT_F16 && out_dtype != CK_OUT_BF16) return -1;
    enum { CHUNK = 1024 };
    _Alignas(64) float tmp[CHUNK];
    const int64_t row_blocks = ck_ceil_div(rows, br), col_blocks = ck_ceil_div(cols, bc);
    const size_t esize = ck_out_size(out_dtype);
    for (int64_t g = row0; g < row1; g++) {
        const int64_t batch = g / rows, r = g % rows;
        const float *srow = scales + (batch * row_blocks + r / br) * col_blocks;
        const int8_t *qrow = q + g * cols;
        char *orow = (char *)out + (size_t)(g - row0) * (size_t)cols * esize;
        for (int64_t c0 = 0; c0 < cols; c0 += CHUNK) {
            const int64_t c1 = c0 + CHUNK < cols ? c0 + CHUNK : cols;
            float *dst = out_dtype == CK_OUT_F32 ? (float *)orow + c0 : tmp;
            for (int64_t c = c0; c < c1;) {
                const int64_t cb = c / bc, end = (cb + 1) * bc < c1 ? (cb + 1) * bc : c1;
                seg_dequant(qrow + c, end - c, srow[cb], dst + (c - c0), path);
                c = end;
            }
            if (out_dtype != CK_OUT_F32) ck_store(tmp, orow + (size_t)c0 * esize, out_dtype, c1 - c0, path);
        }
    }
    return 0;
}

// MARK: - W8A8 GEMM
//
// AVX2 has no signed x signed byte dot product: vpmaddubsw is unsigned x signed with saturating
// 16-bit pair sums. Both operands are widened to int16 instead (in the packing, once per call),
// and vpmaddwd multiplies 16 int16 pairs into 8 exact int32 pair sums: 2 instructions (madd,
// add) per 16 multiply-adds, the same issue cost as the vpsignb/vpmaddubsw/vpmaddwd/vpaddd route
// for 32, with simpler packing. K blocks are padded to whole pairs with zeros.
//
// AVX-512 VNNI: vpdpbusd adds 4 u8 x s8 products into each int32 lane. The activation is stored
// as u8 = q + 128, so each block sum is sum (q + 128) w = sum q w + 128 sum w; the packing
// computes sum w per (column, block) and the flush subtracts 128 of it (exact in wrapping int32).

static int64_t packed_k(int64_t k, int64_t bk, int64_t group) {
    const int64_t kb = ck_ceil_div(k, bk);
    return (kb - 1) * ck_round_up(bk, group) + ck_round_up(k - (kb - 1) * bk, group);
}

enum { AVX2_MR = 4, AVX2_NR = 16, AVX2_NC = 32, VNNI_MR = 8, VNNI_NR = 32, VNNI_NC = 64 };

/// K depth of one packed chunk: whole K blocks, about 256 deep, so a weight sub-panel stays in L1.
static int64_t chunk_blocks(int64_t bk) { return bk >= 256 ? 1 : 256 / bk; }

void ck_i8_packed_activation_size(int64_t m, int64_t k, int64_t bk, int path, int64_t *rows,
                                  int64_t *row_bytes) {
    if (path == CK_PATH_AVX512VNNI) {
        *rows = ck_round_up(m, VNNI_MR);
        *row_bytes = packed_k(k, bk, 4);
    } else if (path == CK_PATH_AVX2) {
        *rows = ck_round_up(m, AVX2_MR);
        *row_bytes = packed_k(k, bk, 2) * 2;
    } else {
        *rows = m;
        *row_bytes = 0;
    }
}

void ck_i8_pack_activation(const int8_t *x, const float *sx, int64_t m, int64_t k, int64_t bk, int path,
                           int64_t row0, int64_t row1, void *apack, float *sxpack) {
    int64_t rows, row_bytes;
    ck_i8_packed_activation_size(m, k, bk, path, &rows, &row_bytes);
    const int64_t kb = ck_ceil_div(k, bk);
    const int64_t group = path == CK_PATH_AVX512VNNI ? 4 : 2, bp = ck_round_up(bk, group);
    for (int64_t r = row0; r < row1 && r < rows; r++) {
        for (int64_t j = 0; j < kb; j++) {
            const int64_t len = k - j * bk < bk ? k - j * bk : bk, padded = ck_round_up(len, group);
            const int8_t *src = x + r * k + j * bk;
            if (path == CK_PATH_AVX512VNNI) {
                uint8_t *dst = (uint8_t *)apack + r * row_bytes + j * bp;
                for (int64_t t = 0; t < padded; t++) dst[t] = (r < m && t < len) ? (uint8_t)(src[t] ^ 0x80) : 128;
            } else {
                int16_t *dst = (int16_t *)((char *)apack + r * row_bytes) + j * bp;
                for (int64_t t = 0; t < padded; t++) dst[t] = (r < m && t < len) ? src[t] : 0;
            }
            sxpack[r * kb + j] = r < m ? sx[r * kb + j] : 0;
        }
    }
}

int64_t ck_i8_gemm_column_granule(int path) {
    return path == CK_PATH_AVX512VNNI ? VNNI_NR : path == CK_PATH_AVX2 ? AVX2_NR : 1;
}

/// Adds bias and writes rows [0, m) of a float tile (ld columns, `cols` used) to the output.
static void store_tile(const ck_i8_gemm_args *a, const float *tile, int64_t ld, int64_t n0, int64_t cols,
                       float *tmp, int path) {
    const size_t esize = ck_out_size(a->out_dtype);
    for (int64_t r = 0; r < a->m; r++) {
        for (int64_t c = 0; c < cols; c++) tmp[c] = tile[r * ld + c] + (a->bias ? a->bias[n0 + c] : 0.0f);
        ck_store(tmp, (char *)a->out + ((size_t)r * (size_t)a->n + (size_t)n0) * esize, a->out_dtype, cols, path);
    }
}

static int gemm_portable(const ck_i8_gemm_args *a, int64_t n0, int64_t n1) {
    enum { TILE = 64 };
    const int64_t k = a->k, bk = a->bk, kb = ck_ceil_div(k, bk);
    float *tile = ck_alloc((size_t)a->m * TILE * 4), tmp[TILE];
    if (!tile) return -1;
    for (int64_t t0 = n0; t0 < n1; t0 += TILE) {
        const int64_t cols = n1 - t0 < TILE ? n1 - t0 : TILE;
        for (int64_t r = 0; r < a->m; r++) {
            for (int64_t c = 0; c < cols; c++) {
                const int64_t col = t0 + c;
                const int8_t *xr = a->x + r * k, *wr = a->w + col * k;
                float total = 0;
                for (int64_t j = 0; j < kb; j++) {
                    const int64_t p1 = (j + 1) * bk < k ? (j + 1) * bk : k;
                    int32_t sum = 0;
                    for (int64_t p = j * bk; p < p1; p++) sum += (int32_t)xr[p] * (int32_t)wr[p];
                    total += (float)sum * a->sx[r * kb + j] * a->sw[(col / a->bn) * kb + j];
                }
                tile[r * TILE + c] = total;
            }
        }
        store_tile(a, tile, TILE, t0, cols, tmp, CK_PATH_PORTABLE);
    }
    free(tile);
    return 0;
}

#if CK_X86
/// AVX2_MR x AVX2_NR block of one K block: int32 sums of `pairs` int16 pairs (row pairs
/// broadcast, AVX2_NR / 8 weight vectors), then c[i][n] += float(sum) * sx[i] * sw[n].
CK_AVX2 static void ukernel_avx2(const int16_t *a, int64_t lda, const int16_t *w, int64_t pairs, const float *sx,
                                 int64_t ldsx, const float *sw, float *c, int64_t ldc) {
    enum { V = AVX2_NR / 8 };
    __m256i acc[AVX2_MR][V];
    for (int i = 0; i < AVX2_MR; i++)
        for (int v = 0; v < V; v++) acc[i][v] = _mm256_setzero_si256();
    for (int64_t p = 0; p < pairs; p++) {
        __m256i wv[V];
#pragma clang loop unroll(full)
        for (int v = 0; v < V; v++) wv[v] = _mm256_load_si256((const __m256i *)(w + 2 * AVX2_NR * p + 16 * v));
#pragma clang loop unroll(full)
        for (int i = 0; i < AVX2_MR; i++) {
            int32_t pair;
            memcpy(&pair, a + i * lda + 2 * p, 4);
            const __m256i x = _mm256_set1_epi32(pair);
#pragma clang loop unroll(full)
            for (int v = 0; v < V; v++) acc[i][v] = _mm256_add_epi32(acc[i][v], _mm256_madd_epi16(x, wv[v]));
        }
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < AVX2_MR; i++) {
        const __m256 si = _mm256_set1_ps(sx[i * ldsx]);
        float *ci = c + i * ldc;
#pragma clang loop unroll(full)
        for (int v = 0; v < V; v++) {
            __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[i][v]), si);
            _mm256_storeu_ps(ci + 8 * v, _mm256_fmadd_ps(f, _mm256_loadu_ps(sw + 8 * v), _mm256_loadu_ps(ci + 8 * v)));
        }
    }
}

CK_AVX2 static int gemm_avx2(const ck_i8_gemm_args *a, int64_t n0, int64_t n1) {
    const int64_t k = a->k, bk = a->bk, kb = ck_ceil_div(k, bk), bp = ck_round_up(bk, 2);
    const int64_t kp = packed_k(k, bk, 2), cb = chunk_blocks(bk), depth = cb * bp;
    const int64_t rows = ck_round_up(a->m, AVX2_MR), nsub_max = AVX2_NC / AVX2_NR;
    int16_t *wbuf = ck_alloc((size_t)(nsub_max * depth * AVX2_NR) * 2);
    float *swbuf = ck_alloc((size_t)(nsub_max * cb * AVX2_NR) * 4);
    float *cbuf = ck_alloc((size_t)(rows * AVX2_NC) * 4);
    float tmp[AVX2_NC];
    if (!wbuf || !swbuf || !cbuf) {
        free(wbuf); free(swbuf); free(cbuf);
        return -1;
    }
    const int16_t *apack = a->apack;
    for (int64_t nc0 = n0; nc0 < n1; nc0 += AVX2_NC) {
        const int64_t cols = n1 - nc0 < AVX2_NC ? n1 - nc0 : AVX2_NC, nsub = ck_ceil_div(cols, AVX2_NR);
        memset(cbuf, 0, (size_t)(rows * AVX2_NC) * 4);
        for (int64_t j0 = 0; j0 < kb; j0 += cb) {
            const int64_t j1 = j0 + cb < kb ? j0 + cb : kb;
            // Pack: sub-panel s, block j, pair p -> 16 columns x (int16 lo, int16 hi).
            for (int64_t s = 0; s < nsub; s++) {
                int32_t *sub = (int32_t *)(wbuf + s * depth * AVX2_NR);
                for (int64_t nn = 0; nn < AVX2_NR; nn++) {
                    const int64_t col = nc0 + s * AVX2_NR + nn;
                    for (int64_t j = j0; j < j1; j++) {
                        const int64_t len = k - j * bk < bk ? k - j * bk : bk, pairs = ck_ceil_div(len, 2);
                        int32_t *dst = sub + ((j - j0) * bp / 2) * AVX2_NR + nn;
                        swbuf[(s * cb + (j - j0)) * AVX2_NR + nn] = col < n1 ? a->sw[(col / a->bn) * kb + j] : 0;
                        if (col >= n1) {
                            for (int64_t p = 0; p < pairs; p++) dst[p * AVX2_NR] = 0;
                            continue;
                        }
                        const int8_t *src = a->w + col * k + j * bk;
                        for (int64_t p = 0; p < len / 2; p++)
                            dst[p * AVX2_NR] = (int32_t)(uint16_t)(int16_t)src[2 * p]
                                | (int32_t)((uint32_t)(uint16_t)(int16_t)src[2 * p + 1] << 16);
                        if (len & 1) dst[(len / 2) * AVX2_NR] = (int32_t)(uint16_t)(int16_t)src[len - 1];
                    }
                }
            }
            for (int64_t mt = 0; mt < rows; mt += AVX2_MR) {
                for (int64_t s = 0; s < nsub; s++) {
                    for (int64_t j = j0; j < j1; j++) {
                        const int64_t len = k - j * bk < bk ? k - j * bk : bk;
                        ukernel_avx2(apack + mt * kp + j * bp, kp, wbuf + s * depth * AVX2_NR + (j - j0) * bp * AVX2_NR,
                                     ck_ceil_div(len, 2), a->sxpack + mt * kb + j, kb,
                                     swbuf + (s * cb + (j - j0)) * AVX2_NR, cbuf + mt * AVX2_NC + s * AVX2_NR, AVX2_NC);
                    }
                }
            }
        }
        store_tile(a, cbuf, AVX2_NC, nc0, cols, tmp, CK_PATH_AVX2);
    }
    free(wbuf); free(swbuf); free(cbuf);
    return 0;
}

/// 8 x 32 block of one K block with vpdpbusd on u8 = q + 128; `wsum` (32 columns) removes the shift.
CK_VNNI static void ukernel_vnni(const uint8_t *a, int64_t lda, const int8_t *w, int64_t quads,
                                 const int32_t *wsum, const float *sx, int64_t ldsx, const float *sw, float *c,
                                 int64_t ldc) {
    __m512i acc[VNNI_MR][2];
    for (int i = 0; i < VNNI_MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
    for (int64_t q = 0; q < quads; q++) {
        const __m512i w0 = _mm512_load_si512((const void *)(w + 128 * q));
        const __m512i w1 = _mm512_load_si512((const void *)(w + 128 * q + 64));
#pragma clang loop unroll(full)
        for (int i = 0; i < VNNI_MR; i++) {
            int32_t quad;
            memcpy(&quad, a + i * lda + 4 * q, 4);
            const __m512i x = _mm512_set1_epi32(quad);
            acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], x, w0);
            acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], x, w1);
        }
    }
    const __m512i corr0 = _mm512_slli_epi32(_mm512_loadu_si512((const void *)wsum), 7);
    const __m512i corr1 = _mm512_slli_epi32(_mm512_loadu_si512((const void *)(wsum + 16)), 7);
    const __m512 s0 = _mm512_loadu_ps(sw), s1 = _mm512_loadu_ps(sw + 16);
#pragma clang loop unroll(full)
    for (int i = 0; i < VNNI_MR; i++) {
        const __m512 si = _mm512_set1_ps(sx[i * ldsx]);
        float *ci = c + i * ldc;
        __m512 f0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][0], corr0)), si);
        __m512 f1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][1], corr1)), si);
        _mm512_storeu_ps(ci, _mm512_fmadd_ps(f0, s0, _mm512_loadu_ps(ci)));
        _mm512_storeu_ps(ci + 16, _mm512_fmadd_ps(f1, s1, _mm512_loadu_ps(ci + 16)));
    }
}

CK_VNNI static int gemm_vnni(const ck_i8_gemm_args *a, int64_t n0, int64_t n1) {
    const int64_t k = a->k, bk = a->bk, kb = ck_ceil_div(k, bk), bp = ck_round_up(bk, 4);
    const int64_t kp = packed_k(k, bk, 4), cb = chunk_blocks(bk), depth = cb * bp;
    const int64_t rows = ck_round_up(a->m, VNNI_MR), nsub_max = VNNI_NC / VNNI_NR;
    int8_t *wbuf = ck_alloc((size_t)(nsub_max * depth * VNNI_NR));
    float *swbuf = ck_alloc((size_t)(nsub_max * cb * VNNI_NR) * 4);
    int32_t *wsum = ck_alloc((size_t)(nsub_max * cb * VNNI_NR) * 4);
    float *cbuf = ck_alloc((size_t)(rows * VNNI_NC) * 4);
    float tmp[VNNI_NC];
    if (!wbuf || !swbuf || !wsum || !cbuf) {
        free(wbuf); free(swbuf); free(wsum); free(cbuf);
        return -1;
    }
    const uint8_t *apack = a->apack;
    for (int64_t nc0 = n0; nc0 < n1; nc0 += VNNI_NC) {
        const int64_t cols = n1 - nc0 < VNNI_NC ? n1 - nc0 : VNNI_NC, nsub = ck_ceil_div(cols, VNNI_NR);
        memset(cbuf, 0, (size_t)(rows * VNNI_NC) * 4);
        for (int64_t j0 = 0; j0 < kb; j0 += cb) {
            const int64_t j1 = j0 + cb < kb ? j0 + cb : kb;
            // Pack: sub-panel s, block j, quad q -> 32 columns x 4 bytes; plus sum w per column.
            for (int64_t s = 0; s < nsub; s++) {
                int8_t *sub = wbuf + s * depth * VNNI_NR;
                for (int64_t nn = 0; nn < VNNI_NR; nn++) {
                    const int64_t col = nc0 + s * VNNI_NR + nn;
                    for (int64_t j = j0; j < j1; j++) {
                        const int64_t len = k - j * bk < bk ? k - j * bk : bk, quads = ck_ceil_div(len, 4);
                        int8_t *dst = sub + (j - j0) * bp * VNNI_NR + nn * 4;
                        const int64_t meta = (s * cb + (j - j0)) * VNNI_NR + nn;
                        swbuf[meta] = col < n1 ? a->sw[(col / a->bn) * kb + j] : 0;
                        int32_t sum = 0;
                        const int8_t *src = a->w + col * k + j * bk;
                        for (int64_t q = 0; q < quads; q++) {
                            for (int64_t e = 0; e < 4; e++) {
                                const int64_t t = 4 * q + e;
                                const int8_t v = (col < n1 && t < len) ? src[t] : 0;
                                dst[q * 4 * VNNI_NR + e] = v;
                                sum += v;
                            }
                        }
                        wsum[meta] = sum;
                    }
                }
            }
            for (int64_t mt = 0; mt < rows; mt += VNNI_MR) {
                for (int64_t s = 0; s < nsub; s++) {
                    for (int64_t j = j0; j < j1; j++) {
                        const int64_t len = k - j * bk < bk ? k - j * bk : bk;
                        const int64_t meta = (s * cb + (j - j0)) * VNNI_NR;
                        ukernel_vnni(apack + mt * kp + j * bp, kp, wbuf + s * depth * VNNI_NR + (j - j0) * bp * VNNI_NR,
                                     ck_ceil_div(len, 4), wsum + meta, a->sxpack + mt * kb + j, kb, swbuf + meta,
                                     cbuf + mt * VNNI_NC + s * VNNI_NR, VNNI_NC);
                    }
                }
            }
        }
        store_tile(a, cbuf, VNNI_NC, nc0, cols, tmp, CK_PATH_AVX2);
    }
    free(wbuf); free(swbuf); free(wsum); free(cbuf);
    return 0;
}
#endif

int ck_i8_gemm(const ck_i8_gemm_args *args, int64_t n0, int64_t n1, int path) {
#if CK_X86
    if (path == CK_PATH_AVX512VNNI) return gemm_vnni(args, n0, n1);
    if (path == CK_PATH_AVX2) return gemm_avx2(args, n0, n1);
#endif
    (void)path;
    return gemm_portable(args, n0, n1);
}

// MARK: - Decode shapes

static int32_t dot_i8_portable(const int8_t *x, const int8_t *w, int64_t n) {
    int32_t s = 0;
    for (int64_t i = 0; i < n; i++) s += (int32_t)x[i] * (int32_t)w[i];
    return s;
}

#if CK_X86
CK_AVX2 static int32_t dot_i8_avx2(const int8_t *x, const int8_t *w, int64_t n) {
    __m256i acc = _mm256_setzero_si256();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i xv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x + i)));
        __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + i)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(xv, wv));
    }
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
    return _mm_cvtsi128_si32(h) + dot_i8_portable(x + i, w + i, n - i);
}
#endif

void ck_i8_gemv(const ck_i8_gemm_args *a, int64_t n0, int64_t n1, int path) {
    const int64_t k = a->k, bk = a->bk, kb = ck_ceil_div(k, bk);
    for (int64_t col = n0; col < n1; col++) {
        const int8_t *wr = a->w + col * k;
        const float *swr = a->sw + (col / a->bn) * kb;
        // The weight row is read from memory for the first input row and from L1 after that.
        for (int64_t r = 0; r < a->m; r++) {
            const int8_t *xr = a->x + r * k;
            float total = 0;
            for (int64_t j = 0; j < kb; j++) {
                const int64_t p0 = j * bk, len = k - p0 < bk ? k - p0 : bk;
#if CK_X86
                const int32_t sum = path != CK_PATH_PORTABLE ? dot_i8_avx2(xr + p0, wr + p0, len)
                                                             : dot_i8_portable(xr + p0, wr + p0, len);
#else
                const int32_t sum = dot_i8_portable(xr + p0, wr + p0, len);
#endif
                total += (float)sum * a->sx[r * kb + j] * swr[j];
            }
            store_one(a->out, a->out_dtype, r * a->n + col, total + (a->bias ? a->bias[col] : 0.0f));
        }
    }
    (void)path;
}

enum { GEMV_CHUNK = 512, GEMV_ROWS = 16 };

static float dot_f32_portable(const float *x, const float *w, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i] * w[i];
    return s;
}

void ck_gemv_decoded_portable(const float *x, int64_t m, int64_t k, ck_row_decoder decode, const void *context,
                              float post, int64_t n, const float *bias, void *out, int out_dtype, int64_t n0,
                              int64_t n1) {
    float w[GEMV_CHUNK];
    for (int64_t col = n0; col < n1; col++) {
        for (int64_t r0 = 0; r0 < m; r0 += GEMV_ROWS) {
            const int64_t rn = m - r0 < GEMV_ROWS ? m - r0 : GEMV_ROWS;
            float acc[GEMV_ROWS] = {0};
            for (int64_t c0 = 0; c0 < k; c0 += GEMV_CHUNK) {
                const int64_t len = k - c0 < GEMV_CHUNK ? k - c0 : GEMV_CHUNK;
                decode(context, col, c0, len, w, CK_PATH_PORTABLE);
                for (int64_t r = 0; r < rn; r++) acc[r] += dot_f32_portable(x + (r0 + r) * k + c0, w, len);
            }
            for (int64_t r = 0; r < rn; r++)
                store_one(out, out_dtype, (r0 + r) * n + col, acc[r] * post + (bias ? bias[col] : 0.0f));
        }
    }
}

typedef struct {
    const int8_t *w;
    const float *sw;
    int64_t k, bk, bn;
} i8_row_source;

/// The weight as dequantized: float(q) * scale of its block (what dequantize() produces).
static void i8_decode_row(const void *context, int64_t col, int64_t c0, int64_t len, float *out, int path) {
    const i8_row_source *s = context;
    const int64_t kb = ck_ceil_div(s->k, s->bk);
    const int8_t *row = s->w + col * s->k;
    const float *scales = s->sw + (col / s->bn) * kb;
    for (int64_t c = c0; c < c0 + len;) {
        const int64_t j = c / s->bk, end = (j + 1) * s->bk < c0 + len ? (j + 1) * s->bk : c0 + len;
        seg_dequant(row + c, end - c, scales[j], out + (c - c0), path);
        c = end;
    }
}

#if CK_X86
/// R input rows (1 to 4) of the weight-only GEMV for one weight row: the codes are converted to
/// float in registers and used for every row (y = sum_j s_j sum_{k in j} x q), never stored.
CK_AVX2 static inline __attribute__((always_inline)) void i8_wo_rows(const float *x, int64_t k, const int8_t *wr,
                                                                     const float *swr, int64_t bk, float *y,
                                                                     const int R) {
    enum { U = 4 };  // independent accumulators per row (for R = 1), hiding FMA latency
    const int64_t kb = ck_ceil_div(k, bk);
    __m256 total[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    float tail[4] = {0, 0, 0, 0};
    for (int64_t j = 0; j < kb; j++) {
        const int64_t p0 = j * bk, len = k - p0 < bk ? k - p0 : bk;
        const int8_t *wb = wr + p0;
        __m256 acc[4][U];
        for (int r = 0; r < R; r++)
            for (int u = 0; u < U; u++) acc[r][u] = _mm256_setzero_ps();
        const int64_t step = R == 1 ? 32 : 16, vlen = len / step * step;
        for (int64_t t = 0; t < vlen; t += step) {
#pragma clang loop unroll(full)
            for (int u = 0; u < (R == 1 ? 4 : 2); u++) {
                const __m128i codes = _mm_loadl_epi64((const __m128i *)(wb + t + 8 * u));
                const __m256 wv = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(codes));
#pragma clang loop unroll(full)
                for (int r = 0; r < R; r++)
                    acc[r][u] = _mm256_fmadd_ps(_mm256_loadu_ps(x + r * k + p0 + t + 8 * u), wv, acc[r][u]);
            }
        }
        const __m256 s = _mm256_set1_ps(swr[j]);
        for (int r = 0; r < R; r++) {
            float rest = 0;
            for (int64_t t = vlen; t < len; t++) rest += x[r * k + p0 + t] * (float)wb[t];
            tail[r] += rest * swr[j];
            const __m256 block =
                _mm256_add_ps(_mm256_add_ps(acc[r][0], acc[r][1]), _mm256_add_ps(acc[r][2], acc[r][3]));
            total[r] = _mm256_fmadd_ps(block, s, total[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(total[r]), _mm256_extractf128_ps(total[r], 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        y[r] = _mm_cvtss_f32(h) + tail[r];
    }
}

CK_AVX2 static void i8_gemv_weight_only_avx2(const float *x, int64_t m, int64_t k, const int8_t *w, const float *sw,
                                             int64_t n, int64_t bn, int64_t bk, const float *bias, void *out,
                                             int out_dtype, int64_t n0, int64_t n1) {
    const int64_t kb = ck_ceil_div(k, bk);
    for (int64_t col = n0; col < n1; col++) {
        const int8_t *wr = w + col * k;
        const float *swr = sw + (col / bn) * kb;
        for (int64_t r0 = 0; r0 < m; r0 += 4) {
            float y[4];
            const float *xr = x + r0 * k;
            switch (m - r0 < 4 ? m - r0 : 4) {
            case 1: i8_wo_rows(xr, k, wr, swr, bk, y, 1); break;
            case 2: i8_wo_rows(xr, k, wr, swr, bk, y, 2); break;
            case 3: i8_wo_rows(xr, k, wr, swr, bk, y, 3); break;
            default: i8_wo_rows(xr, k, wr, swr, bk, y, 4); break;
            }
            for (int64_t r = r0; r < r0 + 4 && r < m; r++)
                store_one(out, out_dtype, r * n + col, y[r - r0] + (bias ? bias[col] : 0.0f));
        }
    }
}
#endif

void ck_i8_gemv_weight_only(const float *x, int64_t m, int64_t k, const int8_t *w, const float *sw, int64_t n,
                            int64_t bn, int64_t bk, const float *bias, void *out, int out_dtype, int64_t n0,
                            int64_t n1, int path) {
#if CK_X86
    if (path != CK_PATH_PORTABLE) {
        i8_gemv_weight_only_avx2(x, m, k, w, sw, n, bn, bk, bias, out, out_dtype, n0, n1);
        return;
    }
#endif
    const i8_row_source source = {w, sw, k, bk, bn};
    ck_gemv_decoded_portable(x, m, k, i8_decode_row, &source, 1.0f, n, bias, out, out_dtype, n0, n1);
}
