// Block-wise INT8 W8A8 GEMM (AVX2, AVX-512 VNNI, portable) on packed activations.
#include "int8_gemm.h"
#include <float.h>

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
                    // The INT8 output rule (NOTES.md, numerics): float(sum) * (sx * sw), scales first.
                    total += (float)sum * (a->sx[r * kb + j] * a->sw[(col / a->bn) * kb + j]);
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
            // c += float(sum) * (sx * sw): scales multiplied first, then one product, then one add.
            const __m256 s = _mm256_mul_ps(si, _mm256_loadu_ps(sw + 8 * v));
            const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[i][v]), s);
            _mm256_storeu_ps(ci + 8 * v, _mm256_add_ps(_mm256_loadu_ps(ci + 8 * v), f));
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
        // c += float(sum) * (sx * sw): scales multiplied first, then one product, then one add.
        __m512 f0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][0], corr0)), _mm512_mul_ps(si, s0));
        __m512 f1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][1], corr1)), _mm512_mul_ps(si, s1));
        _mm512_storeu_ps(ci, _mm512_add_ps(_mm512_loadu_ps(ci), f0));
        _mm512_storeu_ps(ci + 16, _mm512_add_ps(_mm512_loadu_ps(ci + 16), f1));
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
