// Dense transformer kernels: layer norm, softmax with an additive mask, elementwise ops and GELU,
// masked mean pooling, L2 normalisation. Contracts in include/CKernelsDense.h.
//
// Each kernel has an AVX2 + FMA version and a portable one. exp and erf are polynomials evaluated
// with the same float operations in both (fmaf in the scalar code, _mm256_fmadd_ps in the vector
// code; contraction is off so the compiler adds no fusing of its own), so the two paths and the
// scalar definition (ck_gelu_scalar) give bit-identical results.
#include "ck_internal.h"
#include "CKernelsDense.h"
#include <float.h>

#pragma STDC FP_CONTRACT OFF

enum { CHUNK = 1024 };

// MARK: - exp, erf, tanh (scalar definitions)

// Cephes' expf: n = round(x log2 e), r = x - n ln2 (in two parts), exp(r) by a degree-6
// polynomial, times 2^n. Inputs are clamped to [-87.3, 88.37]; below -87.3 the result is 0
// (exp underflows to denormals there, which no caller needs); NaN stays NaN.
static const float EXP_HI = 88.3762626647949f, EXP_LO = -87.3f;
static const float LOG2E = 1.44269504088896341f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
static const float EP0 = 1.9875691500e-4f, EP1 = 1.3981999507e-3f, EP2 = 8.3334519073e-3f,
                   EP3 = 4.1665795894e-2f, EP4 = 1.6666665459e-1f, EP5 = 5.0000001201e-1f;

static inline float exp_scalar(float x) {
    if (x != x) return x;
    if (x < EXP_LO) return 0.0f;
    float v = x > EXP_HI ? EXP_HI : x;
    float n = rintf(v * LOG2E);
    float r = fmaf(n, -LN2_HI, v);
    r = fmaf(n, -LN2_LO, r);
    float p = fmaf(EP0, r, EP1);
    p = fmaf(p, r, EP2);
    p = fmaf(p, r, EP3);
    p = fmaf(p, r, EP4);
    p = fmaf(p, r, EP5);
    float r2 = r * r;
    float y = fmaf(p, r2, r) + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return y * scale;
}

// erf by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7), the form PyTorch's vectorised CPU erf uses:
// erf(x) = sign(x) (1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-x^2)), t = 1 / (1 + p |x|).
static const float ERF_P = 0.3275911f, ERF_A1 = 0.254829592f, ERF_A2 = -0.284496736f, ERF_A3 = 1.421413741f,
                   ERF_A4 = -1.453152027f, ERF_A5 = 1.061405429f;

static inline float erf_scalar(float x) {
    float a = fabsf(x);
    float t = 1.0f / fmaf(ERF_P, a, 1.0f);
    float r = fmaf(ERF_A5, t, ERF_A4);
    r = fmaf(r, t, ERF_A3);
    r = fmaf(r, t, ERF_A2);
    r = fmaf(r, t, ERF_A1);
    float e = exp_scalar(-(x * x));
    float y = fmaf(-(e * t), r, 1.0f);
    return copysignf(y, x);
}

static const float GELU_RSQRT2 = 0.70710678118654752f, GELU_TANH_C = 0.7978845608028654f,
                   GELU_TANH_K = 0.044715f;

// tanh(z) = 1 - 2 / (exp(2z) + 1).
static inline float tanh_scalar(float z) { return 1.0f - 2.0f / (exp_scalar(z + z) + 1.0f); }

float ck_gelu_scalar(float x, int tanh_form) {
    if (tanh_form) {
        float inner = GELU_TANH_C * fmaf(GELU_TANH_K * x * x, x, x);
        return 0.5f * x * (1.0f + tanh_scalar(inner));
    }
    return 0.5f * x * (1.0f + erf_scalar(x * GELU_RSQRT2));
}

// MARK: - Loading rows as float32

static void to_f32_portable(const void *src, int dtype, float *dst, int64_t n) {
    switch (dtype) {
    case CK_OUT_F32: memcpy(dst, src, (size_t)n * 4); break;
    case CK_OUT_F16: {
        const _Float16 *s = (const _Float16 *)src;
        for (int64_t i = 0; i < n; i++) dst[i] = (float)s[i];
        break;
    }
    default: {
        const uint16_t *s = (const uint16_t *)src;
        for (int64_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)s[i] << 16;
            memcpy(dst + i, &bits, 4);
        }
        break;
    }
    }
}

#if CK_X86
CK_AVX2 static void to_f32_avx2(const void *src, int dtype, float *dst, int64_t n) {
    int64_t i = 0;
    if (dtype == CK_OUT_F16) {
        const uint16_t *s = (const uint16_t *)src;
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const void *)(s + i))));
        to_f32_portable(s + i, dtype, dst + i, n - i);
    } else if (dtype == CK_OUT_BF16) {
        const uint16_t *s = (const uint16_t *)src;
        for (; i + 8 <= n; i += 8) {
            __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const void *)(s + i)));
            _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
        }
        to_f32_portable(s + i, dtype, dst + i, n - i);
    } else {
        memcpy(dst, src, (size_t)n * 4);
    }
}
#endif

static inline void load_f32(const void *src, int dtype, int64_t index, float *dst, int64_t n, int path) {
    const char *base = (const char *)src + (size_t)index * ck_out_size(dtype);
#if CK_X86
    if (path != CK_PATH_PORTABLE) { to_f32_avx2(base, dtype, dst, n); return; }
#endif
    (void)path;
    to_f32_portable(base, dtype, dst, n);
}

/// A row of the input as float32: the input itself when it is float32, else converted into buf.
static inline const float *row_f32(const void *x, int dtype, int64_t index, float *buf, int64_t n, int path) {
    if (dtype == CK_OUT_F32) return (const float *)x + index;
    load_f32(x, dtype, index, buf, n, path);
    return buf;
}

static inline void *element_at(void *out, int dtype, int64_t index) {
    return (char *)out + (size_t)index * ck_out_size(dtype);
}

void ck_dense_to_f32(const void *src, int dtype, float *dst, int64_t n, int path) {
    load_f32(src, dtype, 0, dst, n, path);
}

void ck_dense_from_f32(const float *src, void *dst, int dtype, int64_t n, int path) {
    ck_store(src, dst, dtype, n, path);
}

// MARK: - Portable kernels

static void layer_norm_row_portable(const float *x, int64_t n, const float *w, const float *b, float eps,
                                    float *y) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += x[i];
    const float mean = sum / (float)n;
    float squares = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float d = x[i] - mean;
        squares = fmaf(d, d, squares);
    }
    const float rstd = 1.0f / sqrtf(squares / (float)n + eps);
    for (int64_t i = 0; i < n; i++) {
        float v = (x[i] - mean) * rstd;
        y[i] = fmaf(v, w ? w[i] : 1.0f, b ? b[i] : 0.0f);
    }
}

static void softmax_row_portable(const float *x, const float *mask, int64_t n, float *y) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        float v = mask ? x[i] + mask[i] : x[i];
        y[i] = v;
        m = v > m ? v : m;
    }
    if (m == -INFINITY) {
        memset(y, 0, (size_t)n * 4);
        return;
    }
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        y[i] = exp_scalar(y[i] - m);
        sum += y[i];
    }
    const float inverse = 1.0f / sum;
    for (int64_t i = 0; i < n; i++) y[i] *= inverse;
}

static void elementwise_portable(int op, const float *a, const float *b, float factor, int64_t n, float *y) {
    switch (op) {
    case CK_ELEMENTWISE_MULTIPLY: for (int64_t i = 0; i < n; i++) y[i] = a[i] * b[i]; break;
    case CK_ELEMENTWISE_ADD: for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i]; break;
    case CK_ELEMENTWISE_SCALE: for (int64_t i = 0; i < n; i++) y[i] = a[i] * factor; break;
    case CK_ELEMENTWISE_GELU_ERF: for (int64_t i = 0; i < n; i++) y[i] = ck_gelu_scalar(a[i], 0); break;
    default: for (int64_t i = 0; i < n; i++) y[i] = ck_gelu_scalar(a[i], 1); break;
    }
}

static float sum_squares_portable(const float *x, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s = fmaf(x[i], x[i], s);
    return s;
}

static void axpy_portable(float alpha, const float *x, float *acc, int64_t n) {
    for (int64_t i = 0; i < n; i++) acc[i] = fmaf(alpha, x[i], acc[i]);
}

static void scale_portable(const float *x, float factor, int64_t n, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * factor;
}

static void divide_portable(const float *x, float d, int64_t n, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] / d;
}

// MARK: - AVX2 kernels

#if CK_X86
CK_AVX2 static inline float hsum_avx2(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}

CK_AVX2 static inline float hmax_avx2(__m256 v) {
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}

// The vector twins of exp_scalar / erf_scalar / tanh_scalar: the same operations lane by lane.
CK_AVX2 static inline __m256 exp_avx2(__m256 x) {
    const __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(EXP_LO), _CMP_LT_OQ);
    __m256 v = _mm256_min_ps(_mm256_set1_ps(EXP_HI), x); // NaN in x stays NaN (second operand)
    __m256 n = _mm256_round_ps(_mm256_mul_ps(v, _mm256_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_HI), v);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_LO), r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(EP0), r, _mm256_set1_ps(EP1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EP2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EP3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EP4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EP5));
    __m256 r2 = _mm256_mul_ps(r, r);
    __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
    return _mm256_andnot_ps(underflow, y);
}

CK_AVX2 static inline __m256 erf_avx2(__m256 x) {
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    __m256 a = _mm256_andnot_ps(sign, x);
    __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(ERF_P), a, one));
    __m256 r = _mm256_fmadd_ps(_mm256_set1_ps(ERF_A5), t, _mm256_set1_ps(ERF_A4));
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(ERF_A3));
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(ERF_A2));
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(ERF_A1));
    __m256 e = exp_avx2(_mm256_xor_ps(sign, _mm256_mul_ps(x, x)));
    __m256 y = _mm256_fmadd_ps(_mm256_xor_ps(sign, _mm256_mul_ps(e, t)), r, one);
    return _mm256_or_ps(_mm256_andnot_ps(sign, y), _mm256_and_ps(sign, x));
}

CK_AVX2 static inline __m256 gelu_avx2(__m256 x, int tanh_form) {
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    __m256 g;
    if (tanh_form) {
        __m256 k = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(GELU_TANH_K), x), x);
        __m256 inner = _mm256_mul_ps(_mm256_set1_ps(GELU_TANH_C), _mm256_fmadd_ps(k, x, x));
        __m256 e = exp_avx2(_mm256_add_ps(inner, inner));
        g = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
    } else {
        g = erf_avx2(_mm256_mul_ps(x, _mm256_set1_ps(GELU_RSQRT2)));
    }
    return _mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one, g));
}

CK_AVX2 static void layer_norm_row_avx2(const float *x, int64_t n, const float *w, const float *b, float eps,
                                        float *y) {
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + i));
    float sum = hsum_avx2(acc);
    for (; i < n; i++) sum += x[i];
    const float mean = sum / (float)n;
    const __m256 vmean = _mm256_set1_ps(mean);
    acc = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vmean);
        acc = _mm256_fmadd_ps(d, d, acc);
    }
    float squares = hsum_avx2(acc);
    for (; i < n; i++) {
        float d = x[i] - mean;
        squares = fmaf(d, d, squares);
    }
    const float rstd = 1.0f / sqrtf(squares / (float)n + eps);
    const __m256 vrstd = _mm256_set1_ps(rstd), ones = _mm256_set1_ps(1.0f), zeros = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmean), vrstd);
        __m256 vw = w ? _mm256_loadu_ps(w + i) : ones;
        __m256 vb = b ? _mm256_loadu_ps(b + i) : zeros;
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(v, vw, vb));
    }
    for (; i < n; i++) {
        float v = (x[i] - mean) * rstd;
        y[i] = fmaf(v, w ? w[i] : 1.0f, b ? b[i] : 0.0f);
    }
}

CK_AVX2 static void softmax_row_avx2(const float *x, const float *mask, int64_t n, float *y) {
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        if (mask) v = _mm256_add_ps(v, _mm256_loadu_ps(mask + i));
        _mm256_storeu_ps(y + i, v);
        vmax = _mm256_max_ps(vmax, v);
    }
    float m = hmax_avx2(vmax);
    for (; i < n; i++) {
        float v = mask ? x[i] + mask[i] : x[i];
        y[i] = v;
        m = v > m ? v : m;
    }
    if (m == -INFINITY) {
        memset(y, 0, (size_t)n * 4);
        return;
    }
    const __m256 vm = _mm256_set1_ps(m);
    __m256 acc = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(y + i), vm));
        _mm256_storeu_ps(y + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float sum = hsum_avx2(acc);
    for (; i < n; i++) {
        y[i] = exp_scalar(y[i] - m);
        sum += y[i];
    }
    const float inverse = 1.0f / sum;
    const __m256 vinv = _mm256_set1_ps(inverse);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), vinv));
    for (; i < n; i++) y[i] *= inverse;
}

CK_AVX2 static void elementwise_avx2(int op, const float *a, const float *b, float factor, int64_t n, float *y) {
    int64_t i = 0;
    const __m256 f = _mm256_set1_ps(factor);
    for (; i + 8 <= n; i += 8) {
        __m256 va = _mm256_loadu_ps(a + i), r;
        switch (op) {
        case CK_ELEMENTWISE_MULTIPLY: r = _mm256_mul_ps(va, _mm256_loadu_ps(b + i)); break;
        case CK_ELEMENTWISE_ADD: r = _mm256_add_ps(va, _mm256_loadu_ps(b + i)); break;
        case CK_ELEMENTWISE_SCALE: r = _mm256_mul_ps(va, f); break;
        case CK_ELEMENTWISE_GELU_ERF: r = gelu_avx2(va, 0); break;
        default: r = gelu_avx2(va, 1); break;
        }
        _mm256_storeu_ps(y + i, r);
    }
    elementwise_portable(op, a + i, b ? b + i : NULL, factor, n - i, y + i);
}

CK_AVX2 static float sum_squares_avx2(const float *x, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        acc = _mm256_fmadd_ps(v, v, acc);
    }
    float s = hsum_avx2(acc);
    for (; i < n; i++) s = fmaf(x[i], x[i], s);
    return s;
}

CK_AVX2 static void axpy_avx2(float alpha, const float *x, float *acc, int64_t n) {
    const __m256 va = _mm256_set1_ps(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(acc + i)));
    }
    axpy_portable(alpha, x + i, acc + i, n - i);
}

CK_AVX2 static void divide_avx2(const float *x, float d, int64_t n, float *y) {
    const __m256 vd = _mm256_set1_ps(d);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_div_ps(_mm256_loadu_ps(x + i), vd));
    divide_portable(x + i, d, n - i, y + i);
}
#endif

// MARK: - Dispatch by path

static inline void layer_norm_row(const float *x, int64_t n, const float *w, const float *b, float eps, float *y,
                                  int path) {
#if CK_X86
    if (path != CK_PATH_PORTABLE) { layer_norm_row_avx2(x, n, w, b, eps, y); return; }
#endif
    layer_norm_row_portable(x, n, w, b, eps, y);
}

static inline void softmax_row(const float *x, const float *mask, int64_t n, float *y, int path) {
#if CK_X86
    if (path != CK_PATH_PORTABLE) { softmax_row_avx2(x, mask, n, y); return; }
#endif
    softmax_row_portable(x, mask, n, y);
}

static inline void elementwise(int op, const float *a, const float *b, float factor, int64_t n, float *y, int path) {
#if CK_X86
    if (path != CK_PATH_PORTABLE) { elementwise_avx2(op, a, b, factor, n, y); return; }
#endif
    elementwise_portable(op, a, b, factor, n, y);
}

static inline float sum_squares(const float *x, int64_t n, int path) {
#if CK_X86
    if (path != CK_PATH_PORTABLE) return sum_squares_avx2(x, n);
#endif
    return sum_squares_portable(x, n);
}

static inline void axpy(float alpha, const float *x, float *acc, int64_t n, int path) {
#if CK_X86
    if (path != CK_PATH_PORTABLE) { axpy_avx2(alpha, x, acc, n); return; }
#endif
    axpy_portable(alpha, x, acc, n);
}

static inline void divide(const float *x, float d, int64_t n, float *y, int path) {
#if CK_X86
    if (path != CK_PATH_PORTABLE) { divide_avx2(x, d, n, y); return; }
#endif
    divide_portable(x, d, n, y);
}

// MARK: - Row kernels

/// Two float32 buffers of `n` values for a row kernel (input conversion, output before the store).
typedef struct {
    float *in;
    float *out;
} row_buffers;

static int row_buffers_make(row_buffers *b, int64_t n) {
    b->in = ck_alloc((size_t)n * 4);
    b->out = ck_alloc((size_t)n * 4);
    if (!b->in || !b->out) {
        free(b->in);
        free(b->out);
        return -1;
    }
    return 0;
}

static void row_buffers_free(row_buffers *b) {
    free(b->in);
    free(b->out);
}

int ck_layer_norm_rows(const void *x, int dtype, int64_t cols, const float *weight, const float *bias,
                        float eps, int64_t row0, int64_t row1, void *out, int path) {
    row_buffers buf;
    if (cols <= 0) return 0;
    if (row_buffers_make(&buf, cols) != 0) return -1;
    for (int64_t r = row0; r < row1; r++) {
        const float *row = row_f32(x, dtype, r * cols, buf.in, cols, path);
        layer_norm_row(row, cols, weight, bias, eps, buf.out, path);
        ck_store(buf.out, element_at(out, dtype, r * cols), dtype, cols, path);
    }
    row_buffers_free(&buf);
    return 0;
}

int ck_softmax_rows(const void *x, int dtype, int64_t cols, const float *mask, int64_t rows_per_batch,
                     int64_t row0, int64_t row1, void *out, int path) {
    row_buffers buf;
    if (cols <= 0) return 0;
    if (row_buffers_make(&buf, cols) != 0) return -1;
    for (int64_t r = row0; r < row1; r++) {
        const float *row = row_f32(x, dtype, r * cols, buf.in, cols, path);
        const float *m = mask ? mask + (r / rows_per_batch) * cols : NULL;
        softmax_row(row, m, cols, buf.out, path);
        ck_store(buf.out, element_at(out, dtype, r * cols), dtype, cols, path);
    }
    row_buffers_free(&buf);
    return 0;
}

void ck_elementwise(int op, const void *a, const float *b, int64_t b_count, float factor, int dtype, int64_t i0,
                    int64_t i1, void *out, int path) {
    _Alignas(64) float in[CHUNK];
    _Alignas(64) float result[CHUNK];
    const int uses_b = op == CK_ELEMENTWISE_MULTIPLY || op == CK_ELEMENTWISE_ADD;
    int64_t i = i0;
    while (i < i1) {
        int64_t n = i1 - i < CHUNK ? i1 - i : CHUNK;
        const float *pb = NULL;
        if (uses_b) {
            // Stay inside one repetition of b so that its values are contiguous.
            const int64_t offset = i % b_count;
            if (b_count - offset < n) n = b_count - offset;
            pb = b + offset;
        }
        const float *pa = row_f32(a, dtype, i, in, n, path);
        // In place when both are float32: `out` may alias `a`, and each chunk is read before written.
        float *dst = dtype == CK_OUT_F32 ? (float *)out + i : result;
        elementwise(op, pa, pb, factor, n, dst, path);
        if (dtype != CK_OUT_F32) ck_store(result, element_at(out, dtype, i), dtype, n, path);
        i += n;
    }
}

int ck_masked_mean_pool(const void *x, int dtype, const float *mask, int64_t seq, int64_t dim, int64_t b0,
                         int64_t b1, float *out, int path) {
    float *buf = dtype == CK_OUT_F32 ? NULL : ck_alloc((size_t)(dim > 0 ? dim : 1) * 4);
    if (dtype != CK_OUT_F32 && !buf) return -1;
    for (int64_t b = b0; b < b1; b++) {
        float *acc = out + b * dim;
        memset(acc, 0, (size_t)dim * 4);
        float count = 0.0f;
        for (int64_t s = 0; s < seq; s++) {
            const float m = mask[b * seq + s];
            if (m == 0.0f) continue;
            count += m;
            const float *row = row_f32(x, dtype, (b * seq + s) * dim, buf, dim, path);
            axpy(m, row, acc, dim, path);
        }
        divide(acc, count > 1e-9f ? count : 1e-9f, dim, acc, path);
    }
    free(buf);
    return 0;
}

int ck_l2_normalize_rows(const void *x, int dtype, int64_t cols, float eps, int64_t row0, int64_t row1,
                          void *out, int path) {
    row_buffers buf;
    if (cols <= 0) return 0;
    if (row_buffers_make(&buf, cols) != 0) return -1;
    for (int64_t r = row0; r < row1; r++) {
        const float *row = row_f32(x, dtype, r * cols, buf.in, cols, path);
        const float norm = sqrtf(sum_squares(row, cols, path));
        divide(row, norm > eps ? norm : eps, cols, buf.out, path);
        ck_store(buf.out, element_at(out, dtype, r * cols), dtype, cols, path);
    }
    row_buffers_free(&buf);
    return 0;
}
