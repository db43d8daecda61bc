// Block-wise INT8 quantize: amax per block, scale = amax / 127, codes. See CKernels.h for the
// contract; ../../../NOTES.md ("CPU kernels") for the design and measurements.
#include "ck_internal.h"
#include <float.h>

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
            const float scale = ck_i8_scale(amax);
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
