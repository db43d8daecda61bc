#ifndef CKERNELS_H
#define CKERNELS_H
// The project's C kernels (module CQLKernels). Only the Swift wrappers in QLCPU call these; every pointer
// argument is a plain contiguous buffer whose size the wrapper has checked.
#include <stdint.h>
#include <stddef.h>

// CPU feature bits reported by ck_cpu_features().
enum {
    CK_CPU_AVX2 = 1 << 0,
    CK_CPU_FMA = 1 << 1,
    CK_CPU_F16C = 1 << 2,
    CK_CPU_AVX512F = 1 << 3,
    CK_CPU_AVX512BW = 1 << 4,
    CK_CPU_AVX512VL = 1 << 5,
    CK_CPU_AVX512VNNI = 1 << 6,
    CK_CPU_AVXVNNI = 1 << 7,
};

/// Feature bits of this CPU, from CPUID and XGETBV (0 on non-x86 machines).
uint32_t ck_cpu_features(void);

/// Portable C = A * B^T for row-major A (m x k, row stride lda), B (n x k, ldb), C (m x n, ldc),
/// C = alpha * A B^T + beta * C. Used only when OpenBLAS cannot be loaded.
void ck_sgemm_nt_portable(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                          const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

// ---------------------------------------------------------------------------------------------
// Quantized CPU kernels (block-wise INT8, per-tensor FP8). Each takes the code path to run,
// chosen by the Swift wrapper from ck_cpu_features() (or forced by tests); a path the CPU lacks
// must never be passed. Sizes are element counts; matrices are row-major and contiguous.

/// Code paths of the quantized kernels.
enum {
    CK_PATH_PORTABLE = 0,   ///< plain C, any CPU
    CK_PATH_AVX2 = 1,       ///< AVX2 + FMA + F16C
    CK_PATH_AVX512VNNI = 2, ///< AVX-512 F/BW/VL + VNNI (vpdpbusd); memory-bound kernels use AVX2 here
};

/// Output element types the kernels write directly.
enum {
    CK_OUT_F32 = 0,
    CK_OUT_F16 = 1,
    CK_OUT_BF16 = 2,
};

/// Block-wise INT8 quantization of `bands` bands of rows: the tensor is `batches` matrices of
/// rows x cols, cut into br x bc blocks; band b covers block row (b % ceil(rows/br)) of batch
/// (b / ceil(rows/br)). Writes codes (same layout as x) and scales (row-major scale grid) for
/// bands [band0, band1). scale = amax/127, q = clamp(round(x/scale), -127, 127) with a true division;
/// rounding 0 = nearest even, 1 = toward zero. Returns 1 when a NaN or infinity was met (outputs
/// are then unspecified), else 0.
int ck_i8_quantize(const float *x, int64_t rows, int64_t cols, int64_t br, int64_t bc, int rounding,
                   int64_t band0, int64_t band1, int8_t *q, float *scales, int path);

/// Block-wise INT8 dequantization of global rows [row0, row1) (rows of all batches, in order):
/// out = q * scale of the element's block, written as `out_dtype`; `out` holds those rows only
/// (its first element is row row0's first), `q` and `scales` are the whole tensor's. Returns 0, or -1 when
/// out_dtype is not one of CK_OUT_*.
int ck_i8_dequantize(const int8_t *q, const float *scales, int64_t rows, int64_t cols, int64_t br, int64_t bc,
                     int64_t row0, int64_t row1, void *out, int out_dtype, int path);

/// The operands of a block-wise INT8 W8A8 GEMM y = x W^T:
/// y[m,n] = sum_j float(sum_{k in block j} qx[m,k] qw[n,k]) * sx[m,j] * sw[n/bn, j] + bias[n].
typedef struct {
    int64_t m, n, k;        ///< GEMM sizes
    int64_t bk;             ///< K block: activation blocks 1 x bk, weight blocks bn x bk
    int64_t bn;             ///< weight block rows
    const int8_t *x;        ///< activation codes, m x k (portable path and GEMV)
    const float *sx;        ///< activation scales, m x ceil(k/bk)
    const void *apack;      ///< packed activation (ck_i8_pack_activation), for the AVX2 and VNNI GEMMs
    const float *sxpack;    ///< activation scales padded to the packed row count
    const int8_t *w;        ///< weight codes, n x k
    const float *sw;        ///< weight scales, ceil(n/bn) x ceil(k/bk)
    const float *bias;      ///< n values, or NULL
    void *out;              ///< m x n in out_dtype, row stride n
    int out_dtype;          ///< CK_OUT_*
} ck_i8_gemm_args;

/// Rows of the packed activation (m rounded up to the micro-kernel's row count) and bytes per row.
void ck_i8_packed_activation_size(int64_t m, int64_t k, int64_t bk, int path, int64_t *rows,
                                  int64_t *row_bytes);

/// Packs rows [row0, row1) of the packed activation for the GEMM of `path` (AVX2: int16 pairs;
/// VNNI: u8 = q + 128 in quads; each K block padded to the group), and copies their scales into
/// `sxpack` (padded rows, m and beyond, get zeros).
void ck_i8_pack_activation(const int8_t *x, const float *sx, int64_t m, int64_t k, int64_t bk, int path,
                           int64_t row0, int64_t row1, void *apack, float *sxpack);

/// The multiple of which each thread's column range [n0, n1) must start (the micro-kernel width).
int64_t ck_i8_gemm_column_granule(int path);

/// W8A8 GEMM for output columns [n0, n1). Packs the weight panel by panel into a buffer of cache
/// size; never copies the whole weight. Returns 0, or -1 when a buffer cannot be allocated.
int ck_i8_gemm(const ck_i8_gemm_args *args, int64_t n0, int64_t n1, int path);

/// W8A8 for few rows (decode): streams each weight row once for all m rows, columns [n0, n1).
void ck_i8_gemv(const ck_i8_gemm_args *args, int64_t n0, int64_t n1, int path);

/// Weight-only INT8 for few rows: y[m,n] = sum_k x[m,k] (qw[n,k] sw[n/bn,k/bk]) + bias[n], float x,
/// each weight dequantized (q * s, float32) before it multiplies x; AVX2 converts the codes in
/// registers, the portable path decodes 512 values at a time into a buffer; never the whole weight.
/// Columns [n0, n1).
void ck_i8_gemv_weight_only(const float *x, int64_t m, int64_t k, const int8_t *w, const float *sw, int64_t n,
                            int64_t bn, int64_t bk, const float *bias, void *out, int out_dtype, int64_t n0,
                            int64_t n1, int path);

/// Per-tensor FP8: amax of |x| over n values into *amax. Returns 1 when a NaN or infinity was met.
int ck_fp8_amax(const float *x, int64_t n, float *amax, int path);

/// Per-tensor FP8 codes: q = e4m3(clamp(x / scale, -448, 448)), round to nearest even.
void ck_fp8_quantize(const float *x, int64_t n, float scale, uint8_t *q, int path);

/// out = float(q) * scale as float32 (scale 1 gives the exact e4m3 values); NaN codes give a NaN
/// (whose payload may differ from the reference's Float.nan).
void ck_fp8_decode(const uint8_t *q, int64_t n, float scale, float *out, int path);

/// out = float(q) * scale, written as out_dtype. Returns 0, or -1 for an unknown out_dtype.
int ck_fp8_dequantize(const uint8_t *q, int64_t n, float scale, void *out, int out_dtype, int path);

/// FP8 weight for few rows: y[m,n] = (sum_k x[m,k] (float(qw[n,k]) * wscale)) * post + bias[n].
/// Weight-only passes wscale = sw, post = 1 (the weight as dequantized); W8A8 passes the decoded
/// input codes, wscale = 1, post = sx * sw (FP8 x FP8 products are exact in float32).
void ck_fp8_gemv(const float *x, int64_t m, int64_t k, const uint8_t *w, float wscale, float post, int64_t n,
                 const float *bias, void *out, int out_dtype, int64_t n0, int64_t n1, int path);

/// Epilogue of a float GEMM: out[r, c] = acc[r, c] * alpha + bias[c] for rows [row0, row1) of a
/// rows x cols matrix, written as out_dtype (out may alias acc when out_dtype is CK_OUT_F32).
void ck_gemm_epilogue(const float *acc, int64_t cols, float alpha, const float *bias, void *out, int out_dtype,
                      int64_t row0, int64_t row1, int path);

/// Largest activation block ck_i8_gelu_requantize_rows takes.
#define CK_GELU_MAX_BLOCK 4096

/// Fused gelu on a block-wise INT8 activation (1 x `block` blocks, rows of `cols`), rows
/// [row_begin, row_end): y = gelu(q * s) (erf form, or tanh form when `tanh_form`), rounded to
/// `round_dtype` (CK_OUT_*), re-quantized with the INT8 scale of amax (amax / 127, one step lower
/// where 127 * scale would overflow) and q = clamp(round(y / scale)) (nearest-even, or toward zero
/// when `toward_zero`), exactly as the plain-Swift definition. A block holding a NaN or infinity
/// gets scale NaN and codes 0 (the caller reports it).
void ck_i8_gelu_requantize_rows(const int8_t *q, const float *s, int64_t cols, int64_t block, int tanh_form,
                                int round_dtype, int toward_zero, int64_t row_begin, int64_t row_end,
                                int8_t *q_out, float *s_out);

#include "CKernelsDense.h"

#endif
