// Block-wise INT8 W8A8 for few rows (decode). Each output column's weight row is one sequential
// stream, read from memory once: for the first chunk of up to four input rows, from cache for the
// others. (Four weight rows at a time, the session-3 layout, streamed at 40-50 % of the read bandwidth
// on Zen 4 against 80-90 % for one row: its four interleaved streams, 3 KB apart, defeat the
// prefetcher; NOTES.md "Issue 11, session 9".) Exact int32 block sums: AVX2 with the sign trick of the
// GEMM (vpsignb moves w's sign onto x, vpmaddubsw takes |w|, vpmaddwd widens: pair sums within int16),
// AVX-512 VNNI with vpdpbusd on u8 = x + 128 and the block's 128 sum w subtracted (wrapping int32, exact
// as in the GEMM). Four sums are reduced together: four blocks of one input row, or one block of four
// rows. The float arithmetic is the contract's, acc += float(S) * (sx * sw) in increasing j, bias last.
#include "int8_gemm.h"

enum { ROWS = 4 };

/// Exact int32 block sum of one row pair, plain C.
static int32_t dot_portable(const int8_t *x, const int8_t *w, int64_t n) {
    int32_t s = 0;
    for (int64_t i = 0; i < n; i++) s += (int32_t)x[i] * (int32_t)w[i];
    return s;
}

static void gemv_portable(const ck_i8_gemm_args *a, int64_t n0, int64_t n1) {
    const int64_t k = a->k, bk = a->bk, kb = ck_ceil_div(k, bk);
    for (int64_t col = n0; col < n1; col++) {
        const int8_t *wr = a->w + col * k;
        const float *swr = a->sw + (col / a->bn) * kb;
        for (int64_t r = 0; r < a->m; r++) {
            float total = 0;
            for (int64_t j = 0; j < kb; j++) {
                const int64_t p0 = j * bk, len = k - p0 < bk ? k - p0 : bk;
                const float scale = a->sx[r * kb + j] * swr[j];
                const float term = (float)dot_portable(a->x + r * k + p0, wr + p0, len) * scale;
                total = total + term;
            }
            store_one(a->out, a->out_dtype, r * a->n + col, a->bias ? total + a->bias[col] : total);
        }
    }
}

/// Length of block j.
static inline int64_t block_len(int64_t k, int64_t bk, int64_t j) { return k - j * bk < bk ? k - j * bk : bk; }

/// Writes total (+ bias) for input row r, column col.
static inline void store_total(const ck_i8_gemm_args *a, int64_t r, int64_t col, float total) {
    store_one(a->out, a->out_dtype, r * a->n + col, a->bias ? total + a->bias[col] : total);
}

#if CK_X86
/// total + float(S_i) * scale_i for the four lanes in order (i = 0...3): four steps of the contract's sum.
static inline float add_terms_in_order(float total, __m128i sums, __m128 scale) {
    float t[4];
    _mm_storeu_ps(t, _mm_mul_ps(_mm_cvtepi32_ps(sums), scale));
    total = total + t[0];
    total = total + t[1];
    total = total + t[2];
    return total + t[3];
}

/// The four lane sums of a, b, c, d, in that order.
CK_AVX2 static inline __m128i hsum4_avx2(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/// Partial int32 sums (8 lanes) of x . w over the first vlen (a multiple of 32) codes: the sign trick.
CK_AVX2 static inline __m256i dot_lanes_avx2(const int8_t *x, const int8_t *w, int64_t vlen) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc = _mm256_setzero_si256();
    for (int64_t t = 0; t < vlen; t += 32) {
        const __m256i wv = _mm256_loadu_si256((const __m256i *)(w + t));
        const __m256i xv = _mm256_loadu_si256((const __m256i *)(x + t));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(xv, wv)), ones));
    }
    return acc;
}

/// One input row against one weight row: four blocks' sums reduced together, the rest one by one.
CK_AVX2 static float row_avx2(const int8_t *x, const float *sx, const int8_t *w, const float *sw, int64_t k, int64_t bk) {
    const int64_t kb = ck_ceil_div(k, bk);
    float total = 0;
    int64_t j = 0;
    for (; j + 4 <= kb; j += 4) {
        __m256i acc[4];
        int32_t rest[4] = {0, 0, 0, 0};
        for (int b = 0; b < 4; b++) {
            const int64_t p0 = (j + b) * bk, len = block_len(k, bk, j + b), vlen = len / 32 * 32;
            acc[b] = dot_lanes_avx2(x + p0, w + p0, vlen);
            if (vlen < len) rest[b] = dot_portable(x + p0 + vlen, w + p0 + vlen, len - vlen);
        }
        const __m128i sums = _mm_add_epi32(hsum4_avx2(acc[0], acc[1], acc[2], acc[3]), _mm_loadu_si128((const __m128i *)rest));
        total = add_terms_in_order(total, sums, _mm_mul_ps(_mm_loadu_ps(sx + j), _mm_loadu_ps(sw + j)));
    }
    for (; j < kb; j++) {
        const int64_t p0 = j * bk, len = block_len(k, bk, j), vlen = len / 32 * 32;
        const __m256i acc = dot_lanes_avx2(x + p0, w + p0, vlen);
        const __m128i s4 = hsum4_avx2(acc, acc, acc, acc);
        const int32_t s = _mm_cvtsi128_si32(s4) + (vlen < len ? dot_portable(x + p0 + vlen, w + p0 + vlen, len - vlen) : 0);
        total = total + (float)s * (sx[j] * sw[j]);
    }
    return total;
}

/// Four input rows (x[0..3], their scale rows sx[0..3]) against one weight row: per block, |w| once,
/// the four rows' sums reduced together; totals[i] gets row i's sum.
CK_AVX2 static void rows4_avx2(const int8_t *const *x, const float *const *sx, const int8_t *w, const float *sw,
                               int64_t k, int64_t bk, float *totals) {
    const int64_t kb = ck_ceil_div(k, bk);
    const __m256i ones = _mm256_set1_epi16(1);
    __m128 total = _mm_setzero_ps();
    for (int64_t j = 0; j < kb; j++) {
        const int64_t p0 = j * bk, len = block_len(k, bk, j), vlen = len / 32 * 32;
        __m256i acc[ROWS];
        for (int i = 0; i < ROWS; i++) acc[i] = _mm256_setzero_si256();
        for (int64_t t = 0; t < vlen; t += 32) {
            const __m256i wv = _mm256_loadu_si256((const __m256i *)(w + p0 + t)), aw = _mm256_abs_epi8(wv);
#pragma clang loop unroll(full)
            for (int i = 0; i < ROWS; i++) {
                const __m256i xv = _mm256_loadu_si256((const __m256i *)(x[i] + p0 + t));
                acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv, wv)), ones));
            }
        }
        __m128i sums = hsum4_avx2(acc[0], acc[1], acc[2], acc[3]);
        if (vlen < len) {
            int32_t rest[ROWS];
            for (int i = 0; i < ROWS; i++) rest[i] = dot_portable(x[i] + p0 + vlen, w + p0 + vlen, len - vlen);
            sums = _mm_add_epi32(sums, _mm_loadu_si128((const __m128i *)rest));
        }
        const __m128 scale = _mm_mul_ps(_mm_setr_ps(sx[0][j], sx[1][j], sx[2][j], sx[3][j]), _mm_set1_ps(sw[j]));
        total = _mm_add_ps(total, _mm_mul_ps(_mm_cvtepi32_ps(sums), scale));
    }
    _mm_storeu_ps(totals, total);
}

/// Every input row of a against weight rows (columns) [n0, n1), one weight row at a time: rows in chunks
/// of four (a short last chunk repeats its first row in the spare lanes), a single row alone.
#define GEMV_DRIVER(NAME, ROW, ROWS4)                                                                    \
    static void NAME(const ck_i8_gemm_args *a, int64_t n0, int64_t n1) {                                \
        const int64_t m = a->m, k = a->k, bk = a->bk, kb = ck_ceil_div(k, bk);                        \
        for (int64_t col = n0; col < n1; col++) {                                                      \
            const int8_t *wr = a->w + col * k;                                                         \
            const float *swr = a->sw + (col / a->bn) * kb;                                             \
            int64_t r = 0;                                                                              \
            for (; m - r >= 2; r += ROWS) {                                                            \
                const int64_t live = m - r < ROWS ? m - r : ROWS;                                       \
                const int8_t *xs[ROWS];                                                                 \
                const float *sxs[ROWS];                                                                 \
                for (int i = 0; i < ROWS; i++) {                                                        \
                    const int64_t row = r + (i < live ? i : 0);                                         \
                    xs[i] = a->x + row * k;                                                             \
                    sxs[i] = a->sx + row * kb;                                                          \
                }                                                                                       \
                float totals[ROWS];                                                                     \
                ROWS4(xs, sxs, wr, swr, k, bk, totals);                                                 \
                for (int64_t i = 0; i < live; i++) store_total(a, r + i, col, totals[i]);              \
            }                                                                                           \
            if (r < m) store_total(a, r, col, ROW(a->x + r * k, a->sx + r * kb, wr, swr, k, bk));      \
        }                                                                                               \
    }
CK_AVX2 GEMV_DRIVER(gemv_avx2, row_avx2, rows4_avx2)

/// The four 16-lane sums of a, b, c, d, in that order.
CK_VNNI static inline __m128i hsum4_avx512(__m512i a, __m512i b, __m512i c, __m512i d) {
    const __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    const __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
    const __m512i q = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
    const __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(q), _mm512_extracti64x4_epi64(q, 1));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/// Codes [t, t + 64) of a block of len codes, zeros past len (no read past it).
CK_VNNI static inline __m512i load_codes(const int8_t *p, int64_t t, int64_t len) {
    return len - t >= 64 ? _mm512_loadu_si512((const void *)(p + t))
                         : _mm512_maskz_loadu_epi8(((__mmask64)1 << (len - t)) - 1, (const void *)(p + t));
}

/// Exact block sum S of x . w over len codes in 16 lanes: sum (x + 128) w - 128 sum w (wrapping int32).
CK_VNNI static inline __m512i block_lanes_avx512(const int8_t *x, const int8_t *w, int64_t len) {
    const __m512i flip = _mm512_set1_epi8((char)0x80), ones = _mm512_set1_epi8(1);
    __m512i acc = _mm512_setzero_si512(), ws = _mm512_setzero_si512();
    for (int64_t t = 0; t < len; t += 64) {
        const __m512i wv = load_codes(w, t, len);
        acc = _mm512_dpbusd_epi32(acc, _mm512_xor_si512(load_codes(x, t, len), flip), wv);
        ws = _mm512_dpbusd_epi32(ws, ones, wv);
    }
    return _mm512_sub_epi32(acc, _mm512_slli_epi32(ws, 7));
}

/// row_avx2 with vpdpbusd.
CK_VNNI static float row_avx512(const int8_t *x, const float *sx, const int8_t *w, const float *sw, int64_t k, int64_t bk) {
    const int64_t kb = ck_ceil_div(k, bk);
    float total = 0;
    int64_t j = 0;
    for (; j + 4 <= kb; j += 4) {
        __m512i s[4];
        for (int b = 0; b < 4; b++) s[b] = block_lanes_avx512(x + (j + b) * bk, w + (j + b) * bk, block_len(k, bk, j + b));
        total = add_terms_in_order(total, hsum4_avx512(s[0], s[1], s[2], s[3]), _mm_mul_ps(_mm_loadu_ps(sx + j), _mm_loadu_ps(sw + j)));
    }
    for (; j < kb; j++) {
        const int32_t s = _mm512_reduce_add_epi32(block_lanes_avx512(x + j * bk, w + j * bk, block_len(k, bk, j)));
        total = total + (float)s * (sx[j] * sw[j]);
    }
    return total;
}

/// rows4_avx2 with vpdpbusd: per block, sum w once for the four rows.
CK_VNNI static void rows4_avx512(const int8_t *const *x, const float *const *sx, const int8_t *w, const float *sw,
                                 int64_t k, int64_t bk, float *totals) {
    const int64_t kb = ck_ceil_div(k, bk);
    const __m512i flip = _mm512_set1_epi8((char)0x80), ones = _mm512_set1_epi8(1);
    __m128 total = _mm_setzero_ps();
    for (int64_t j = 0; j < kb; j++) {
        const int64_t p0 = j * bk, len = block_len(k, bk, j);
        __m512i acc[ROWS], ws = _mm512_setzero_si512();
        for (int i = 0; i < ROWS; i++) acc[i] = _mm512_setzero_si512();
        for (int64_t t = 0; t < len; t += 64) {
            const __m512i wv = load_codes(w + p0, t, len);
            ws = _mm512_dpbusd_epi32(ws, ones, wv);
#pragma clang loop unroll(full)
            for (int i = 0; i < ROWS; i++)
                acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_xor_si512(load_codes(x[i] + p0, t, len), flip), wv);
        }
        const __m512i corr = _mm512_slli_epi32(ws, 7);
        const __m128i sums = hsum4_avx512(_mm512_sub_epi32(acc[0], corr), _mm512_sub_epi32(acc[1], corr),
                                          _mm512_sub_epi32(acc[2], corr), _mm512_sub_epi32(acc[3], corr));
        const __m128 scale = _mm_mul_ps(_mm_setr_ps(sx[0][j], sx[1][j], sx[2][j], sx[3][j]), _mm_set1_ps(sw[j]));
        total = _mm_add_ps(total, _mm_mul_ps(_mm_cvtepi32_ps(sums), scale));
    }
    _mm_storeu_ps(totals, total);
}
CK_VNNI GEMV_DRIVER(gemv_avx512, row_avx512, rows4_avx512)
#endif

void ck_i8_gemv_run(const ck_i8_gemm_args *args, int64_t n0, int64_t n1, int path) {
    if (n0 >= n1) return;
#if CK_X86
    if (path == CK_PATH_AVX512VNNI || path == CK_PATH_AMX) {
        gemv_avx512(args, n0, n1);
        return;
    }
    if (path != CK_PATH_PORTABLE) {
        gemv_avx2(args, n0, n1);
        return;
    }
#endif
    (void)path;
    gemv_portable(args, n0, n1);
}
