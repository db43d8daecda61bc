// Weight-only INT8 for few rows (M <= 16): the GEMV that decodes weight rows on the fly (shared
// with FP8 through ck_gemv_decoded_portable). The W8A8 GEMV is in int8_gemv.c.
#include "ck_internal.h"
#include <float.h>

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
        ck_i8_dequant_segment(row + c, end - c, scales[j], out + (c - c0), path);
        c = end;
    }
}

#if CK_X86
/// R input rows (1 to 4) of the weight-only GEMV for one weight row: the codes are dequantized in
/// registers (w = q * s, exactly dequantize's value) and used for every row (y = sum_k x w), never
/// stored. Not `s * sum(x q)`: that overflows for large x where the true result is finite. Software
/// prefetch 1 KB ahead in the weight row: measured +7-15% of streamed bandwidth at M = 1 (5120 x 5120,
/// 2 threads; the multiply by s made the loop slower than the stream without it).
CK_AVX2 static inline __attribute__((always_inline)) void i8_wo_rows(const float *x, int64_t k, const int8_t *wr,
                                                                     const float *swr, int64_t bk, float *y,
                                                                     const int R) {
    enum { U = 4, PREFETCH = 1024 };  // U: independent accumulators per row (for R = 1), hiding FMA latency
    const int64_t kb = ck_ceil_div(k, bk);
    __m256 total[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    float tail[4] = {0, 0, 0, 0};
    for (int64_t j = 0; j < kb; j++) {
        const int64_t p0 = j * bk, len = k - p0 < bk ? k - p0 : bk;
        const int8_t *wb = wr + p0;
        const __m256 s = _mm256_set1_ps(swr[j]);
        __m256 acc[4][U];
        for (int r = 0; r < R; r++)
            for (int u = 0; u < U; u++) acc[r][u] = _mm256_setzero_ps();
        const int64_t step = R == 1 ? 32 : 16, vlen = len / step * step;
        for (int64_t t = 0; t < vlen; t += step) {
            _mm_prefetch((const char *)(wb + t + PREFETCH), _MM_HINT_T0);
#pragma clang loop unroll(full)
            for (int u = 0; u < (R == 1 ? 4 : 2); u++) {
                const __m128i codes = _mm_loadl_epi64((const __m128i *)(wb + t + 8 * u));
                const __m256 wv = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(codes)), s);
#pragma clang loop unroll(full)
                for (int r = 0; r < R; r++)
                    acc[r][u] = _mm256_fmadd_ps(_mm256_loadu_ps(x + r * k + p0 + t + 8 * u), wv, acc[r][u]);
            }
        }
        for (int r = 0; r < R; r++) {
            for (int64_t t = vlen; t < len; t++) tail[r] += x[r * k + p0 + t] * ((float)wb[t] * swr[j]);
            const __m256 block =
                _mm256_add_ps(_mm256_add_ps(acc[r][0], acc[r][1]), _mm256_add_ps(acc[r][2], acc[r][3]));
            total[r] = _mm256_add_ps(total[r], block);
        }
    }
    for (int r = 0; r < R; r++) {
        y[r] = ck_hsum8(total[r]) + tail[r];
    }
}

/// i8_wo_rows for one input row on zmm (the AVX-512 paths): two 16-lane accumulators whose halves are
/// exactly the AVX2 loop's four 8-lane ones (lanes 0-7 of the first = u0, 8-15 = u1; of the second u2,
/// u3), the same products, FMA chains, block sums, tail and final reduction, so the same bits. Half the
/// instructions per code: one core in L2 ran 16-19 GB/s of weight against 13-15 for the ymm loop, and
/// both cores streaming from memory 11-15 GB/s each against 10-12 (Zen 4, session 9; the loop is
/// compute-bound there, below the ~25 GB/s one core reads).
CK_AVX512 static void i8_wo_row_avx512(const float *x, int64_t k, const int8_t *wr, const float *swr, int64_t bk,
                                       float *y) {
    enum { PREFETCH = 1024 };
    const int64_t kb = ck_ceil_div(k, bk);
    __m256 total = _mm256_setzero_ps();
    float tail = 0;
    for (int64_t j = 0; j < kb; j++) {
        const int64_t p0 = j * bk, len = k - p0 < bk ? k - p0 : bk, vlen = len / 32 * 32;
        const int8_t *wb = wr + p0;
        const float *xb = x + p0;
        const __m512 s = _mm512_set1_ps(swr[j]);
        __m512 a01 = _mm512_setzero_ps(), a23 = _mm512_setzero_ps();
        for (int64_t t = 0; t < vlen; t += 32) {
            _mm_prefetch((const char *)(wb + t + PREFETCH), _MM_HINT_T0);
            const __m512 w01 = _mm512_mul_ps(
                _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(wb + t)))), s);
            const __m512 w23 = _mm512_mul_ps(
                _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(wb + t + 16)))), s);
            a01 = _mm512_fmadd_ps(_mm512_loadu_ps(xb + t), w01, a01);
            a23 = _mm512_fmadd_ps(_mm512_loadu_ps(xb + t + 16), w23, a23);
        }
        for (int64_t t = vlen; t < len; t++) tail += xb[t] * ((float)wb[t] * swr[j]);
        total = _mm256_add_ps(total, ck_fold_chains(a01, a23));
    }
    y[0] = ck_hsum8(total) + tail;
}

CK_AVX2 static void i8_gemv_weight_only_avx2(const float *x, int64_t m, int64_t k, const int8_t *w, const float *sw,
                                             int64_t n, int64_t bn, int64_t bk, const float *bias, void *out,
                                             int out_dtype, int64_t n0, int64_t n1, int avx512) {
    const int64_t kb = ck_ceil_div(k, bk);
    for (int64_t col = n0; col < n1; col++) {
        const int8_t *wr = w + col * k;
        const float *swr = sw + (col / bn) * kb;
        for (int64_t r0 = 0; r0 < m; r0 += 4) {
            float y[4];
            const float *xr = x + r0 * k;
            switch (m - r0 < 4 ? m - r0 : 4) {
            case 1:
                if (avx512) i8_wo_row_avx512(xr, k, wr, swr, bk, y);
                else i8_wo_rows(xr, k, wr, swr, bk, y, 1);
                break;
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
        // One input row runs on zmm where the CPU has AVX-512 (same bits as the AVX2 loop).
        i8_gemv_weight_only_avx2(x, m, k, w, sw, n, bn, bk, bias, out, out_dtype, n0, n1,
                                 path == CK_PATH_AVX512VNNI || path == CK_PATH_AMX);
        return;
    }
#endif
    const i8_row_source source = {w, sw, k, bk, bn};
    ck_gemv_decoded_portable(x, m, k, i8_decode_row, &source, 1.0f, n, bias, out, out_dtype, n0, n1);
}
