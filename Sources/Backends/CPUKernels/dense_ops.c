// Dense transformer kernels: layer norm, softmax with an additive mask, elementwise ops and GELU,
// masked mean pooling, L2 normalisation. Contracts in include/CKernelsDense.h.
//
// Each kernel has a portable version and vector ones (dense_simd.h, instantiated for AVX2 + FMA and
// for AVX-512 F). exp and erf are polynomials evaluated with the same float operations in all of them
// (fmaf in the scalar code, the vector fused multiply-add in the vector code; contraction is off so
// the compiler adds no fusing of its own), so every path and the scalar definition (ck_gelu_scalar)
// give bit-identical elementwise results.
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

static void divide_portable(const float *x, float d, int64_t n, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] / d;
}

// MARK: - Vector kernels (dense_simd.h, once per width)

#define SIMD_CAT_(a, b) a##_##b
#define SIMD_CAT(a, b) SIMD_CAT_(a, b)

#if CK_X86
CK_AVX2 static inline float hmax_avx2(__m256 v) {
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}

/// All ones in the first `n` of 8 lanes.
CK_AVX2 static inline __m256i lanes_below_avx2(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#define SIMD_TARGET CK_AVX2
#define SIMD_NAME(name) SIMD_CAT(name, avx2)
#define vf __m256
#define VLANES 8
#define v_load _mm256_loadu_ps
#define v_store _mm256_storeu_ps
#define v_set1 _mm256_set1_ps
#define v_zero _mm256_setzero_ps
#define v_add _mm256_add_ps
#define v_sub _mm256_sub_ps
#define v_mul _mm256_mul_ps
#define v_div _mm256_div_ps
#define v_fma _mm256_fmadd_ps
#define v_min _mm256_min_ps
#define v_max _mm256_max_ps
#define v_round(v) _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define v_abs(v) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v)
#define v_neg(v) _mm256_xor_ps(_mm256_set1_ps(-0.0f), v)
#define v_copysign(m, s) _mm256_or_ps(v_abs(m), _mm256_and_ps(_mm256_set1_ps(-0.0f), s))
#define v_pow2(n) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), \
                                                                        _mm256_set1_epi32(127)), 23))
#define v_zero_below(y, x, lo) _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), y)
#define v_hsum ck_hsum8
#define v_hmax hmax_avx2
#define v_load_tail(p, n, fill) _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, lanes_below_avx2(n)), \
                                                 _mm256_castsi256_ps(lanes_below_avx2(n)))
#define v_store_tail(p, v, n) _mm256_maskstore_ps(p, lanes_below_avx2(n), v)
#include "dense_simd.h"

// AVX-512 F only (the paths that take it, avx512vnni and amx, have it); sign operations go through
// the integer view because AVX-512 F has no float and/or/xor.
#define SIMD_TARGET CK_AVX512
#define SIMD_NAME(name) SIMD_CAT(name, avx512)
#define vf __m512
#define VLANES 16
#define v_load _mm512_loadu_ps
#define v_store _mm512_storeu_ps
#define v_set1 _mm512_set1_ps
#define v_zero _mm512_setzero_ps
#define v_add _mm512_add_ps
#define v_sub _mm512_sub_ps
#define v_mul _mm512_mul_ps
#define v_div _mm512_div_ps
#define v_fma _mm512_fmadd_ps
#define v_min _mm512_min_ps
#define v_max _mm512_max_ps
#define v_round(v) _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define v_bits _mm512_castps_si512
#define v_float _mm512_castsi512_ps
#define v_abs(v) v_float(_mm512_and_si512(v_bits(v), _mm512_set1_epi32(0x7fffffff)))
#define v_neg(v) v_float(_mm512_xor_si512(v_bits(v), _mm512_set1_epi32((int)0x80000000u)))
#define v_copysign(m, s) v_float(_mm512_ternarylogic_epi32(v_bits(m), v_bits(s), \
                                                           _mm512_set1_epi32(0x7fffffff), 0xe4))
#define v_pow2(n) v_float(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))
#define v_zero_below(y, x, lo) _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), _mm512_setzero_ps())
#define v_hsum _mm512_reduce_add_ps
#define v_hmax _mm512_reduce_max_ps
#define v_load_tail(p, n, fill) _mm512_mask_loadu_ps(_mm512_set1_ps(fill), (__mmask16)((1u << (n)) - 1), p)
#define v_store_tail(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1), v)
#include "dense_simd.h"
#undef v_bits
#undef v_float
#endif

// MARK: - Dispatch by path

/// The row kernels run on zmm on the paths whose CPUs have AVX-512 F (avx512vnni, amx), on ymm on the
/// other vector paths.
static inline int dense_uses_avx512(int path) { return path == CK_PATH_AVX512VNNI || path == CK_PATH_AMX; }

static inline void layer_norm_row(const float *x, int64_t n, const float *w, const float *b, float eps, float *y,
                                  int path) {
#if CK_X86
    if (dense_uses_avx512(path)) { layer_norm_row_avx512(x, n, w, b, eps, y); return; }
    if (path != CK_PATH_PORTABLE) { layer_norm_row_avx2(x, n, w, b, eps, y); return; }
#endif
    layer_norm_row_portable(x, n, w, b, eps, y);
}

static inline void softmax_row(const float *x, const float *mask, int64_t n, float *y, int path) {
#if CK_X86
    if (dense_uses_avx512(path)) { softmax_row_avx512(x, mask, n, y); return; }
    if (path != CK_PATH_PORTABLE) { softmax_row_avx2(x, mask, n, y); return; }
#endif
    softmax_row_portable(x, mask, n, y);
}

static inline void elementwise(int op, const float *a, const float *b, float factor, int64_t n, float *y, int path) {
#if CK_X86
    if (dense_uses_avx512(path)) { elementwise_avx512(op, a, b, factor, n, y); return; }
    if (path != CK_PATH_PORTABLE) { elementwise_avx2(op, a, b, factor, n, y); return; }
#endif
    elementwise_portable(op, a, b, factor, n, y);
}

static inline float sum_squares(const float *x, int64_t n, int path) {
#if CK_X86
    if (dense_uses_avx512(path)) return sum_squares_avx512(x, n);
    if (path != CK_PATH_PORTABLE) return sum_squares_avx2(x, n);
#endif
    return sum_squares_portable(x, n);
}

static inline void axpy(float alpha, const float *x, float *acc, int64_t n, int path) {
#if CK_X86
    if (dense_uses_avx512(path)) { axpy_avx512(alpha, x, acc, n); return; }
    if (path != CK_PATH_PORTABLE) { axpy_avx2(alpha, x, acc, n); return; }
#endif
    axpy_portable(alpha, x, acc, n);
}

static inline void divide(const float *x, float d, int64_t n, float *y, int path) {
#if CK_X86
    if (dense_uses_avx512(path)) { divide_avx512(x, d, n, y); return; }
    if (path != CK_PATH_PORTABLE) { divide_avx2(x, d, n, y); return; }
#endif
    divide_portable(x, d, n, y);
}

// MARK: - Row kernels

/// Two float32 buffers of `n` values for a row kernel (input conversion, output before the store);
/// float32 rows are read and written where they are instead (each row kernel reads an input value
/// before it writes that position, so even an output that aliases its input would be right).
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
        float *y = dtype == CK_OUT_F32 ? (float *)out + r * cols : buf.out;
        layer_norm_row(row, cols, weight, bias, eps, y, path);
        if (dtype != CK_OUT_F32) ck_store(buf.out, element_at(out, dtype, r * cols), dtype, cols, path);
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
        float *y = dtype == CK_OUT_F32 ? (float *)out + r * cols : buf.out;
        softmax_row(row, m, cols, y, path);
        if (dtype != CK_OUT_F32) ck_store(buf.out, element_at(out, dtype, r * cols), dtype, cols, path);
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
        float *y = dtype == CK_OUT_F32 ? (float *)out + r * cols : buf.out;
        divide(row, norm > eps ? norm : eps, cols, y, path);
        if (dtype != CK_OUT_F32) ck_store(buf.out, element_at(out, dtype, r * cols), dtype, cols, path);
    }
    row_buffers_free(&buf);
    return 0;
}
