#ifndef CKERNELS_DENSE_H
#define CKERNELS_DENSE_H
// Dense float kernels of the transformer ops (layer norm, softmax, GELU, elementwise, pooling,
// L2 normalisation). Only Sources/Tensor/DenseKernels.swift calls these. Element types are the
// CK_OUT_* codes (F32, F16, BF16) for inputs as well as outputs; arithmetic is float32. Every
// function works on a range of rows (or elements) so that the Swift wrapper can split the work
// across cores; each one is single-threaded and reentrant. Buffers are contiguous and row-major.
// Row kernels return 0, or -1 when their row buffers cannot be allocated (nothing is then written).
#include <stdint.h>

/// Converts n elements of `dtype` (CK_OUT_*) to float32.
void ck_dense_to_f32(const void *src, int dtype, float *dst, int64_t n, int path);

/// Writes n float32 values as `dtype` (CK_OUT_*), rounding to nearest even.
void ck_dense_from_f32(const float *src, void *dst, int dtype, int64_t n, int path);

/// Layer norm of rows [row0, row1) of a rows x cols matrix:
/// y = (x - mean) / sqrt(var + eps) * weight + bias, var the biased variance; weight and bias
/// (cols float32 values each) may be NULL (1 and 0).
int ck_layer_norm_rows(const void *x, int dtype, int64_t cols, const float *weight, const float *bias,
                        float eps, int64_t row0, int64_t row1, void *out, int path);

/// Softmax over each row of cols values, rows [row0, row1): y = exp(v - max v) / sum exp(v - max v)
/// with v = x + mask[(row / rows_per_batch) * cols + c] when mask is not NULL. A row whose values
/// are all -inf gives zeros.
int ck_softmax_rows(const void *x, int dtype, int64_t cols, const float *mask, int64_t rows_per_batch,
                     int64_t row0, int64_t row1, void *out, int path);

/// Elementwise operations of ck_elementwise.
enum {
    CK_ELEMENTWISE_MULTIPLY = 0, ///< out = a * b
    CK_ELEMENTWISE_ADD = 1,      ///< out = a + b
    CK_ELEMENTWISE_SCALE = 2,    ///< out = a * factor (b unused)
    CK_ELEMENTWISE_GELU_ERF = 3, ///< out = a / 2 * (1 + erf(a / sqrt 2)) (b unused)
    CK_ELEMENTWISE_GELU_TANH = 4 ///< out = a / 2 * (1 + tanh(sqrt(2/pi) (a + 0.044715 a^3))) (b unused)
};

/// Elements [i0, i1) of out = op(a[i], b[i % b_count]) (b broadcast over a's leading dimensions;
/// float32, b_count >= 1 when b is used). a and out have `dtype`.
void ck_elementwise(int op, const void *a, const float *b, int64_t b_count, float factor, int dtype,
                    int64_t i0, int64_t i1, void *out, int path);

/// Masked mean pooling of batches [b0, b1) of x (batches x seq x dim, `dtype`):
/// out[b, d] = sum_s mask[b, s] x[b, s, d] / max(sum_s mask[b, s], 1e-9); out is float32 batches x dim.
/// Positions whose mask is 0 are not read.
int ck_masked_mean_pool(const void *x, int dtype, const float *mask, int64_t seq, int64_t dim, int64_t b0,
                         int64_t b1, float *out, int path);

/// L2 normalisation of rows [row0, row1): y = x / max(||x||_2, eps).
int ck_l2_normalize_rows(const void *x, int dtype, int64_t cols, float eps, int64_t row0, int64_t row1,
                          void *out, int path);

/// GELU of one value with the same float operations as the vector kernels (erf form, or the tanh form
/// when tanh_form): the one definition that GeluApproximation.apply and the fused INT8 gelu use.
float ck_gelu_scalar(float x, int tanh_form);

#endif
