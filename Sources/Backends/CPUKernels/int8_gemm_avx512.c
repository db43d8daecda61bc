// AVX-512 VNNI W8A8 GEMM with the weight read in place (session 6): no weight packing. The output is
// computed transposed: each zmm accumulator holds 16 output rows of one column, so vpdpbusd takes 16
// rows x 4 K codes of the activation as its u8 operand (packed once per call, u8 = q + 128) and 4 codes
// of one weight row broadcast as its s8 operand, read straight from the weight (k x 1 bytes per row,
// rows streamed sequentially). A micro-tile is up to 64 rows (RV = 1-4 row vectors) x 24 / RV columns,
// 24 accumulators; the sum of (q + 128) w is S + 128 sum w, so each column's 128 sum_k w per K block is
// found first (vpdpbusd with ones over the weight row, which also brings the row into cache) and
// subtracted at the flush. After each K block: acc += float(S) * (sx * sw) into a column-major float
// tile (the contract's arithmetic, bit-identical to the portable kernel). Needs bk and k multiples of 4
// (a quad never straddles blocks or the row end); else the packed path (int8_gemm.c) runs.
// NOTES.md ("Issue 11, session 6") has the measurements.
#include "int8_gemm.h"

#if CK_X86

enum { TILE_ROWS = 64, ACCS = 24 };
#ifndef WT_NO_SUMS
#define WT_NO_SUMS 0
#endif
#ifndef A_AHEAD
#define A_AHEAD 1024
#endif

int ck_gemm_wt_applies(int64_t m, int64_t k, int64_t bk, int path) {
    (void)m;
    return path == CK_PATH_AVX512VNNI && k % 4 == 0 && bk % 4 == 0;
}

/// Packed activation: rows padded to 16; tiles of 64 rows (the last one 16-64), tile t at t * 64 * k
/// bytes; in a tile of rv row vectors, quad q at q * rv * 64, row vector v at + v * 64, lane l at + 4 l.
/// Scales transposed: sxT[j * rows + r].
CK_VNNI void ck_gemm_wt_pack_activation(const int8_t *x, const float *sx, int64_t m, int64_t k, int64_t bk,
                                        int64_t row0, int64_t row1, uint8_t *apack, float *sxt) {
    const int64_t rows = ck_round_up(m, 16), kb = ck_ceil_div(k, bk), quads = k / 4;
    for (int64_t r = row0; r < row1 && r < rows; r++) {
        const int64_t t = r / TILE_ROWS, t_rows = rows - t * TILE_ROWS < TILE_ROWS ? rows - t * TILE_ROWS : TILE_ROWS;
        const int64_t rv = t_rows / 16, v = (r % TILE_ROWS) / 16, l = r % 16;
        uint8_t *dst = apack + t * TILE_ROWS * k + v * 64 + 4 * l;
        const int64_t stride = rv * 64;
        if (r < m) {
            const uint8_t *src = (const uint8_t *)(x + r * k);
            int64_t q = 0;
            const __m512i flip = _mm512_set1_epi8((char)0x80);
            const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                   _mm512_set1_epi32((int)stride));
            for (; q + 16 <= quads; q += 16) {
                const __m512i v16 = _mm512_xor_si512(_mm512_loadu_si512((const void *)(src + 4 * q)), flip);
                _mm512_i32scatter_epi32((void *)(dst + q * stride), idx, v16, 1);
            }
            for (; q < quads; q++) {
                uint32_t quad;
                memcpy(&quad, src + 4 * q, 4);
                quad ^= 0x80808080u;
                memcpy(dst + q * stride, &quad, 4);
            }
        } else {
            for (int64_t q = 0; q < quads; q++) memset(dst + q * stride, 0, 4);
        }
        for (int64_t j = 0; j < kb; j++) sxt[j * rows + r] = r < m ? sx[r * kb + j] : 0;
    }
}

/// Lane i of the result = the sum of v[i]'s 16 lanes (a transpose-and-add tree, 45 ops for 16 sums).
CK_VNNI static inline __m512i reduce16(const __m512i v[16]) {
    __m512i u[8], w[4];
    for (int i = 0; i < 8; i++)
        u[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]),
                                _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; i++)
        w[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(u[2 * i], u[2 * i + 1]),
                                _mm512_unpackhi_epi64(u[2 * i], u[2 * i + 1]));
    const __m512i p = _mm512_add_epi32(_mm512_shuffle_i32x4(w[0], w[1], 0x88), _mm512_shuffle_i32x4(w[0], w[1], 0xDD));
    const __m512i q = _mm512_add_epi32(_mm512_shuffle_i32x4(w[2], w[3], 0x88), _mm512_shuffle_i32x4(w[2], w[3], 0xDD));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(p, q, 0x88), _mm512_shuffle_i32x4(p, q, 0xDD));
}

/// corr[j] = 128 * sum of weight row `w`'s codes in K block j, for every block: per block one vector of
/// 16 partial sums (vpdpbusd with ones, a masked load for a block tail), 16 blocks reduced together.
CK_VNNI static void block_sums(const int8_t *w, int64_t k, int64_t bk, int32_t *corr) {
    const __m512i ones = _mm512_set1_epi8(1);
    const int64_t kb = ck_ceil_div(k, bk);
    __m512i part[16];
    for (int64_t j0 = 0; j0 < kb; j0 += 16) {
        const int64_t nj = kb - j0 < 16 ? kb - j0 : 16;
        for (int64_t i = 0; i < 16; i++) {
            __m512i s = _mm512_setzero_si512();
            if (i < nj) {
                const int64_t p0 = (j0 + i) * bk, len = k - p0 < bk ? k - p0 : bk;
                int64_t t = 0;
                for (; t + 64 <= len; t += 64)
                    s = _mm512_dpbusd_epi32(s, ones, _mm512_loadu_si512((const void *)(w + p0 + t)));
                if (t < len)
                    s = _mm512_dpbusd_epi32(s, ones,
                                            _mm512_maskz_loadu_epi8(((__mmask64)1 << (len - t)) - 1, (const void *)(w + p0 + t)));
            }
            part[i] = s;
        }
        const __m512i sums = _mm512_slli_epi32(reduce16(part), 7);
        _mm512_mask_storeu_epi32(corr + j0, (__mmask16)((1u << nj) - 1), sums);
    }
}

/// One micro-tile: RV row vectors (16 rows each) of the packed tile `a` x NB weight rows `wr`, over
/// all K blocks; c[col * 64 + row] gets the float sums.
#define WT_TILE(RV, NB)                                                                                             \
    CK_VNNI static void wt_tile_##RV(const uint8_t *a, const int8_t *const *wr, int64_t k, int64_t bk,              \
                                     const int32_t *const *corr, const float *sxt, int64_t rows,                    \
                                     const float *const *swr, const int8_t *const *next, float *c) {                \
        const int64_t kb = ck_ceil_div(k, bk);                                                                      \
        for (int64_t j = 0; j < kb; j++) {                                                                          \
            const int64_t p0 = j * bk, len = k - p0 < bk ? k - p0 : bk;                                             \
            __m512i acc[RV][NB];                                                                                    \
            _Pragma("clang loop unroll(full)") for (int v = 0; v < RV; v++)                                         \
                _Pragma("clang loop unroll(full)") for (int n = 0; n < NB; n++) acc[v][n] = _mm512_setzero_si512(); \
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
            _Pragma("clang loop unroll(full)") for (int n = 0; n < NB; n++) {                                       \
                const __m512i cr = _mm512_set1_epi32(corr[n][j]);                                                   \
                const __m512 sw = _mm512_set1_ps(swr[n][j]);                                                        \
                _Pragma("clang loop unroll(full)") for (int v = 0; v < RV; v++) {                                   \
                    float *cv = c + n * TILE_ROWS + 16 * v;                                                         \
                    const __m512 sx = _mm512_loadu_ps(sxt + j * rows + 16 * v);                                     \
                    const __m512 f = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[v][n], cr));                           \
                    const __m512 prev = j ? _mm512_loadu_ps(cv) : _mm512_setzero_ps();                               \
                    _mm512_storeu_ps(cv, _mm512_add_ps(prev, _mm512_mul_ps(f, _mm512_mul_ps(sx, sw))));             \
                }                                                                                                   \
            }                                                                                                       \
        }                                                                                                           \
    }
WT_TILE(1, 24)
WT_TILE(2, 12)
WT_TILE(3, 8)
WT_TILE(4, 6)

typedef void (*wt_tile_fn)(const uint8_t *, const int8_t *const *, int64_t, int64_t, const int32_t *const *,
                           const float *, int64_t, const float *const *, const int8_t *const *, float *);

CK_VNNI int ck_gemm_wt_run(const ck_i8_gemm_args *a, int64_t n0, int64_t n1) {
    const int64_t m = a->m, k = a->k, bk = a->bk, kb = ck_ceil_div(k, bk), rows = ck_round_up(m, 16);
    const int64_t tiles = ck_ceil_div(rows, TILE_ROWS), cols = n1 - n0;
    const size_t corr_bytes = (size_t)ck_round_up(cols * kb * 4, 64);
    char *scratch = ck_scratch_acquire(corr_bytes + (size_t)ACCS * TILE_ROWS * 4 + (size_t)cols * 4);
    if (!scratch) return -1;
    int32_t *corr = (int32_t *)scratch;
    float *ct = (float *)(scratch + corr_bytes);
    float *tmp = ct + ACCS * TILE_ROWS;
    const size_t esize = ck_out_size(a->out_dtype);
    const uint8_t *apack = a->apack;
    for (int64_t t = 0; t < tiles; t++) {
        const int64_t r0 = t * TILE_ROWS, t_rows = rows - r0 < TILE_ROWS ? rows - r0 : TILE_ROWS;
        const int rv = (int)(t_rows / 16), nb = ACCS / rv;
        const wt_tile_fn fn = rv == 4 ? wt_tile_4 : rv == 3 ? wt_tile_3 : rv == 2 ? wt_tile_2 : wt_tile_1;
        for (int64_t g0 = n0; g0 < n1; g0 += nb) {
            const int8_t *wr[ACCS], *next[ACCS];
            const int32_t *cr[ACCS];
            const float *swr[ACCS];
            for (int n = 0; n < nb; n++) {
                const int64_t col = g0 + n < n1 ? g0 + n : n1 - 1, ncol = g0 + nb + n < n1 ? g0 + nb + n : n1 - 1;
                wr[n] = a->w + col * k;
                next[n] = a->w + ncol * k;
                cr[n] = corr + (col - n0) * kb;
                swr[n] = a->sw + (col / a->bn) * kb;
                if (!WT_NO_SUMS && t == 0 && g0 + n < n1) block_sums(wr[n], k, bk, corr + (col - n0) * kb);
            }
            fn(apack + r0 * k, wr, k, bk, cr, a->sxpack + r0, rows, swr, g0 + nb < n1 ? next : NULL, ct);
            const int64_t live = m - r0 < t_rows ? m - r0 : t_rows, width = n1 - g0 < nb ? n1 - g0 : nb;
            const __mmask16 cmask = (__mmask16)((1u << width) - 1);
            const __m512i gidx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                    _mm512_set1_epi32(TILE_ROWS));
            const __m512 bias = a->bias ? _mm512_maskz_loadu_ps(cmask, a->bias + g0) : _mm512_setzero_ps();
            for (int64_t r = 0; r < live; r++) {
                char *dst = (char *)a->out + ((size_t)(r0 + r) * (size_t)a->n + (size_t)g0) * esize;
                if (nb > 16) {
                    float *row = a->out_dtype == CK_OUT_F32 ? (float *)dst : tmp;
                    for (int64_t n = 0; n < width; n++) {
                        const float v = ct[n * TILE_ROWS + r];
                        row[n] = a->bias ? v + a->bias[g0 + n] : v;
                    }
                    if (row == tmp) ck_store(tmp, dst, a->out_dtype, width, CK_PATH_AVX512VNNI);
                    continue;
                }
                __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), cmask, gidx, ct + r, 4);
                if (a->bias) v = _mm512_add_ps(v, bias);
                if (a->out_dtype == CK_OUT_F32) {
                    _mm512_mask_storeu_ps(dst, cmask, v);
                } else {
                    _mm512_storeu_ps(tmp, v);
                    ck_store(tmp, dst, a->out_dtype, width, CK_PATH_AVX512VNNI);
                }
            }
        }
    }
    ck_scratch_release(scratch);
    return 0;
}
#endif
