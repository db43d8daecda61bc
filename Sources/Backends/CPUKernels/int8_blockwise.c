// Block-wise INT8 kernels: quantize, dequantize and the weight-only decode-shape GEMV (the W8A8
// GEMM and GEMV live in int8_gemm*.c and int8_gemv.c). See CKernels.h for the contracts; ../../NOTES.md ("CPU kernels")
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

// MARK: - Weight-only decode shapes (the W8A8 GEMM and GEMV: int8_gemm*.c, int8_gemv.c)

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
