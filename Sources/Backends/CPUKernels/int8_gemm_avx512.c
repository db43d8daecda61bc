// AVX-512 VNNI W8A8 GEMM with the weight read in place (session 6): no weight packing. The output is
// computed transposed: each zmm accumulator holds 16 output rows of one column, so vpdpbusd takes 16
// rows x 4 K codes of the activation as its u8 operand (packed once per call, u8 = q + 128) and 4 codes
// of one weight row broadcast as its s8 operand, read straight from the weight (k x 1 bytes per row,
// rows streamed sequentially). A micro-tile is up to 64 rows (RV = 1-4 row vectors) x 24 / RV columns,
// 24 accumulators; the sum of (q + 128) w is S + 128 sum w, so each column's 128 sum_k w per K block is
// subtracted at the flush: the first row tile finds it at its flush (vpdpbusd with ones over the block's
// piece of the weight row, just read and still in L1) and keeps it for the other tiles. After each K
// block: acc += float(S) * (sx * sw) into a column-major float tile of SPAN columns (the contract's
// arithmetic, bit-identical to the portable kernel), written out through 16 x 16 transposes. Needs bk
// and k multiples of 4 (a quad never straddles blocks or the row end); else the packed path
// (int8_gemm.c) runs. NOTES.md ("Issue 11, session 6" and "session 7") has the measurements.
#include "int8_gemm.h"

#if CK_X86

/// SPAN: columns of the float tile between output passes (a multiple of every micro-tile width and of 16).
enum { TILE_ROWS = 64, ACCS = 24, SPAN = 48 };
#ifndef A_AHEAD
#define A_AHEAD 1024
#endif

int ck_gemm_wt_applies(int64_t m, int64_t k, int64_t bk, int path) {
    (void)m;
    return path == CK_PATH_AVX512VNNI && k % 4 == 0 && bk % 4 == 0;
}

/// Packed activation: rows padded to 16; tiles of 64 rows (the last one 16-64), tile t at t * 64 * k
/// bytes; in a tile of rv row vectors, quad q at q * rv * 64, row vector v at + v * 64, lane l at + 4 l.
/// Scales transposed: sxT[j * rows + r]. A row vector wholly inside [row0, row1) is packed 16 quads at
/// a time (16 rows x 64 bytes loaded, transposed, 16 stores); other rows and the last k % 64 bytes one
/// quad at a time.
CK_VNNI void ck_gemm_wt_pack_activation(const int8_t *x, const float *sx, int64_t m, int64_t k, int64_t bk,
                                        int64_t row0, int64_t row1, uint8_t *apack, float *sxt) {
    const int64_t rows = ck_round_up(m, 16), kb = ck_ceil_div(k, bk), quads = k / 4;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    if (row1 > rows) row1 = rows;
    for (int64_t r = row0; r < row1;) {
        const int64_t t = r / TILE_ROWS, t_rows = rows - t * TILE_ROWS < TILE_ROWS ? rows - t * TILE_ROWS : TILE_ROWS;
        const int64_t rv = t_rows / 16, v = (r % TILE_ROWS) / 16, stride = rv * 64;
        uint8_t *dst = apack + t * TILE_ROWS * k + v * 64;
        const int whole = r % 16 == 0 && r + 16 <= row1;
        int64_t q = 0;
        if (whole) {
            for (; q + 16 <= quads; q += 16) {
                __m512i rq[16];
                for (int i = 0; i < 16; i++)
                    rq[i] = r + i < m ? _mm512_xor_si512(_mm512_loadu_si512((const void *)(x + (r + i) * k + 4 * q)), flip)
                                      : _mm512_setzero_si512();
                ck_transpose16x16_epi32(rq);
                for (int i = 0; i < 16; i++) _mm512_storeu_si512((void *)(dst + (q + i) * stride), rq[i]);
            }
        }
        const int64_t r_end = whole ? r + 16 : r + 1;
        for (int64_t rr = r; rr < r_end; rr++) {
            uint8_t *d = dst + 4 * (rr % 16);
            for (int64_t p = q; p < quads; p++) {
                uint32_t quad = 0;
                if (rr < m) {
                    memcpy(&quad, x + rr * k + 4 * p, 4);
                    quad ^= 0x80808080u;
                }
                memcpy(d + p * stride, &quad, 4);
            }
            for (int64_t j = 0; j < kb; j++) sxt[j * rows + rr] = rr < m ? sx[rr * kb + j] : 0;
        }
        r = r_end;
    }
}

/// Every lane = the sum of v's 16 lanes.
CK_VNNI static inline __m512i hsum_all(__m512i v) {
    v = _mm512_add_epi32(v, _mm512_shuffle_i32x4(v, v, 0x4E));
    v = _mm512_add_epi32(v, _mm512_shuffle_i32x4(v, v, 0xB1));
    v = _mm512_add_epi32(v, _mm512_shuffle_epi32(v, (_MM_PERM_ENUM)0x4E));
    return _mm512_add_epi32(v, _mm512_shuffle_epi32(v, (_MM_PERM_ENUM)0xB1));
}

/// One micro-tile: RV row vectors (16 rows each) of the packed tile `a` x NB weight rows `wr`, over
/// all K blocks; c[col * 64 + row] gets the float sums. sums: find corr[n][j] (128 x the block's sum of
/// weight row n) at each flush, store it and subtract it; else start the accumulators at -corr[n][j]
/// (the same wrapping int32 sum). Columns of one weight block row share one sx * sw product per row.
#define WT_TILE(RV, NB)                                                                                             \
    CK_VNNI static void wt_tile_##RV(const uint8_t *a, const int8_t *const *wr, int64_t k, int64_t bk,              \
                                     int32_t *const *corr, int sums, const float *sxt, int64_t rows,                \
                                     const float *const *swr, const int8_t *const *next, float *c) {                \
        const int64_t kb = ck_ceil_div(k, bk);                                                                      \
        const __m512i ones = _mm512_set1_epi8(1);                                                                   \
        const int one_sw = swr[0] == swr[NB - 1]; /* every column in one weight block row: one sx * sw */        \
        for (int64_t j = 0; j < kb; j++) {                                                                          \
            const int64_t p0 = j * bk, len = k - p0 < bk ? k - p0 : bk;                                             \
            __m512i acc[RV][NB];                                                                                    \
            _Pragma("clang loop unroll(full)") for (int n = 0; n < NB; n++) {                                       \
                const __m512i start = sums ? _mm512_setzero_si512() : _mm512_set1_epi32(-corr[n][j]);              \
                _Pragma("clang loop unroll(full)") for (int v = 0; v < RV; v++) acc[v][n] = start;                  \
            }                                                                                                       \
            if (next) {                                                                                             \
                _Pragma("clang loop unroll(full)") for (int n = 0; n < NB; n++) {                                   \
                    for (int64_t t = 0; t < len; t += 64) _mm_prefetch((const char *)(next[n] + p0 + t), _MM_HINT_T1); \
                }                                                                                                   \
            }                                                                                                       \
            const uint8_t *ab = a + (p0 / 4) * RV * 64;                                                             \
            for (int64_t q = 0; q < len / 4; q++) {                                                                 \
                __m512i av[RV];                                                                                     \
                _Pragma("clang loop unroll(full)") for (int v = 0; v < RV; v++)                                     \
                    av[v] = _mm512_loadu_si512((const void *)(ab + (q * RV + v) * 64));                              \
                _Pragma("clang loop unroll(full)") for (int v = 0; v < RV; v++)                                     \
                    _mm_prefetch((const char *)(ab + (q * RV + v) * 64 + A_AHEAD), _MM_HINT_T0);                    \
                _Pragma("clang loop unroll(full)") for (int n = 0; n < NB; n++) {                                   \
                    int32_t quad;                                                                                   \
                    memcpy(&quad, wr[n] + p0 + 4 * q, 4);                                                           \
                    const __m512i b = _mm512_set1_epi32(quad);                                                      \
                    _Pragma("clang loop unroll(full)") for (int v = 0; v < RV; v++)                                 \
                        acc[v][n] = _mm512_dpbusd_epi32(acc[v][n], av[v], b);                                       \
                }                                                                                                   \
            }                                                                                                       \
            __m512 sxv[RV];                                                                                         \
            _Pragma("clang loop unroll(full)") for (int v = 0; v < RV; v++) {                                       \
                sxv[v] = _mm512_loadu_ps(sxt + j * rows + 16 * v);                                                  \
                if (one_sw) sxv[v] = _mm512_mul_ps(sxv[v], _mm512_set1_ps(swr[0][j]));                              \
            }                                                                                                       \
            _Pragma("clang loop unroll(full)") for (int n = 0; n < NB; n++) {                                       \
                if (sums) {                                                                                         \
                    __m512i s = _mm512_setzero_si512();                                                             \
                    int64_t t = 0;                                                                                  \
                    for (; t + 64 <= len; t += 64)                                                                  \
                        s = _mm512_dpbusd_epi32(s, ones, _mm512_loadu_si512((const void *)(wr[n] + p0 + t)));       \
                    if (t < len)                                                                                    \
                        s = _mm512_dpbusd_epi32(                                                                    \
                            s, ones, _mm512_maskz_loadu_epi8(((__mmask64)1 << (len - t)) - 1, (const void *)(wr[n] + p0 + t))); \
                    const __m512i cr = _mm512_slli_epi32(hsum_all(s), 7);                                           \
                    corr[n][j] = _mm_cvtsi128_si32(_mm512_castsi512_si128(cr));                                     \
                    _Pragma("clang loop unroll(full)") for (int v = 0; v < RV; v++)                                 \
                        acc[v][n] = _mm512_sub_epi32(acc[v][n], cr);                                                \
                }                                                                                                   \
                const __m512 sw = _mm512_set1_ps(swr[n][j]);                                                        \
                _Pragma("clang loop unroll(full)") for (int v = 0; v < RV; v++) {                                   \
                    float *cv = c + n * TILE_ROWS + 16 * v;                                                         \
                    const __m512 scale = one_sw ? sxv[v] : _mm512_mul_ps(sxv[v], sw);                               \
                    const __m512 f = _mm512_cvtepi32_ps(acc[v][n]);                                                 \
                    const __m512 prev = j ? _mm512_loadu_ps(cv) : _mm512_setzero_ps();                               \
                    _mm512_storeu_ps(cv, _mm512_add_ps(prev, _mm512_mul_ps(f, scale)));                             \
                }                                                                                                   \
            }                                                                                                       \
        }                                                                                                           \
    }
WT_TILE(1, 24)
WT_TILE(2, 12)
WT_TILE(3, 8)
WT_TILE(4, 6)

typedef void (*wt_tile_fn)(const uint8_t *, const int8_t *const *, int64_t, int64_t, int32_t *const *, int,
                           const float *, int64_t, const float *const *, const int8_t *const *, float *);

/// Writes `live` rows (from r0) x `width` columns (from col0) of the float tile ct (ct[col * 64 + row],
/// col relative to col0) to the output, bias added: 16 x 16 blocks transposed in registers, one masked
/// row store each.
CK_VNNI static void wt_store_span(const ck_i8_gemm_args *a, const float *ct, int64_t r0, int64_t live, int64_t col0,
                                  int64_t width, float *tmp) {
    const size_t esize = ck_out_size(a->out_dtype);
    for (int64_t c0 = 0; c0 < width; c0 += 16) {
        const int64_t cw = width - c0 < 16 ? width - c0 : 16;
        const __mmask16 cmask = (__mmask16)((1u << cw) - 1);
        const __m512 bias = a->bias ? _mm512_maskz_loadu_ps(cmask, a->bias + col0 + c0) : _mm512_setzero_ps();
        for (int64_t v0 = 0; v0 < live; v0 += 16) {
            __m512i blk[16];
            for (int i = 0; i < 16; i++)
                blk[i] = i < cw ? _mm512_loadu_si512((const void *)(ct + (c0 + i) * TILE_ROWS + v0)) : _mm512_setzero_si512();
            ck_transpose16x16_epi32(blk);
            const int64_t nr = live - v0 < 16 ? live - v0 : 16;
            for (int64_t i = 0; i < nr; i++) {
                const __m512 v = _mm512_add_ps(_mm512_castsi512_ps(blk[i]), bias);
                char *dst = (char *)a->out + ((size_t)(r0 + v0 + i) * (size_t)a->n + (size_t)(col0 + c0)) * esize;
                if (a->out_dtype == CK_OUT_F32) {
                    _mm512_mask_storeu_ps(dst, cmask, v);
                } else {
                    _mm512_storeu_ps(tmp, v);
                    ck_store(tmp, dst, a->out_dtype, cw, CK_PATH_AVX512VNNI);
                }
            }
        }
    }
}

CK_VNNI int ck_gemm_wt_run(const ck_i8_gemm_args *a, int64_t n0, int64_t n1) {
    const int64_t m = a->m, k = a->k, bk = a->bk, kb = ck_ceil_div(k, bk), rows = ck_round_up(m, 16);
    const int64_t tiles = ck_ceil_div(rows, TILE_ROWS), cols = n1 - n0;
    const size_t corr_bytes = (size_t)ck_round_up(cols * kb * 4, 64);
    char *scratch = ck_scratch_acquire(corr_bytes + (size_t)SPAN * TILE_ROWS * 4 + 64);
    if (!scratch) return -1;
    int32_t *corr = (int32_t *)scratch;
    float *ct = (float *)(scratch + corr_bytes);
    float *tmp = ct + SPAN * TILE_ROWS;
    const uint8_t *apack = a->apack;
    for (int64_t t = 0; t < tiles; t++) {
        const int64_t r0 = t * TILE_ROWS, t_rows = rows - r0 < TILE_ROWS ? rows - r0 : TILE_ROWS;
        const int64_t live = m - r0 < t_rows ? m - r0 : t_rows;
        const int rv = (int)(t_rows / 16), nb = ACCS / rv;
        const wt_tile_fn fn = rv == 4 ? wt_tile_4 : rv == 3 ? wt_tile_3 : rv == 2 ? wt_tile_2 : wt_tile_1;
        for (int64_t s0 = n0; s0 < n1; s0 += SPAN) {
            const int64_t s1 = s0 + SPAN < n1 ? s0 + SPAN : n1;
            for (int64_t g0 = s0; g0 < s1; g0 += nb) {
                const int8_t *wr[ACCS], *next[ACCS];
                int32_t *cr[ACCS];
                const float *swr[ACCS];
                for (int n = 0; n < nb; n++) {
                    const int64_t col = g0 + n < n1 ? g0 + n : n1 - 1, ncol = g0 + nb + n < n1 ? g0 + nb + n : n1 - 1;
                    wr[n] = a->w + col * k;
                    next[n] = a->w + ncol * k;
                    cr[n] = corr + (col - n0) * kb;
                    swr[n] = a->sw + (col / a->bn) * kb;
                }
                fn(apack + r0 * k, wr, k, bk, cr, t == 0, a->sxpack + r0, rows, swr, g0 + nb < n1 ? next : NULL,
                   ct + (g0 - s0) * TILE_ROWS);
            }
            wt_store_span(a, ct, r0, live, s0, s1 - s0, tmp);
        }
    }
    ck_scratch_release(scratch);
    return 0;
}
#endif
