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
    CK_CPU_AMXINT8 = 1 << 8, ///< AMX-TILE + AMX-INT8 in CPUID and tile state enabled in XCR0
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
    CK_PATH_AVX512VNNI = 2, ///< AVX-512 F/BW/VL + VNNI (vpdpbusd), zmm FMA in the decoded GEMM and the dense
                            ///< row kernels; memory-bound kernels use AVX2 here
    CK_PATH_AVXVNNI = 3,    ///< AVX2 + AVX-VNNI (vpdpbusd on ymm) for the INT8 GEMM
    CK_PATH_AMX = 4,        ///< AMX-INT8 (tdpbssd) for the INT8 GEMM, AVX-512 VNNI elsewhere
};

/// Asks the OS for this process's permission to use AMX tile data (Linux arch_prctl
/// ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA). Returns 1 when AMX-INT8 can run, 0 otherwise (no
/// AMX in CPUID or XCR0, or the kernel refused). Idempotent; call before any CK_PATH_AMX kernel.
int ck_amx_request_permission(void);

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
    const void *apack;      ///< packed activation (ck_i8_gemm_pack_activation), for the SIMD GEMMs
    const float *sxpack;    ///< activation scales padded to the packed row count
    const int8_t *w;        ///< weight codes, n x k
    const float *sw;        ///< weight scales, ceil(n/bn) x ceil(k/bk)
    const float *bias;      ///< n values, or NULL
    void *out;              ///< m x n in out_dtype, row stride n
    int out_dtype;          ///< CK_OUT_*
} ck_i8_gemm_args;

/// Packed activation of the W8A8 GEMM (ck_i8_gemm_run) for `path`: rows (m rounded up to the
/// micro-tile's rows) and bytes per row (each K block padded with zero codes to the path's group:
/// 4 bytes, 64 for AMX).
void ck_i8_gemm_activation_size(int64_t m, int64_t k, int64_t bk, int path, int64_t *rows, int64_t *row_bytes);

/// Packs rows [row0, row1) of the activation for ck_i8_gemm_run: codes as int8 (AVX2, AMX) or as
/// u8 = q + 128 (AVX-VNNI, AVX-512 VNNI), each K block padded; their scales into `sxpack`
/// (m x ceil(k/bk) rows padded with zeros).
void ck_i8_gemm_pack_activation(const int8_t *x, const float *sx, int64_t m, int64_t k, int64_t bk, int path,
                                int64_t row0, int64_t row1, void *apack, float *sxpack);

/// 1 when `path` reads the activation codes and scales in place (args->x and args->sx, with
/// args->apack and args->sxpack NULL, no packing pass): AMX with every K block a multiple of 64 codes
/// long (bk and k multiples of 64), whose packed rows would be the rows as they are; else 0.
int ck_i8_gemm_activation_in_place(int64_t k, int64_t bk, int path);

/// The multiple of which each thread's column range [n0, n1) of ck_i8_gemm_run must start.
int64_t ck_i8_gemm_granule(int path);

/// W8A8 GEMM for output columns [n0, n1), any M (args->apack and args->sxpack packed by
/// ck_i8_gemm_pack_activation, or NULL where ck_i8_gemm_activation_in_place says so; the portable
/// path reads args->x and args->sx instead). The weight
/// is packed panel by panel (a panel of the thread's columns, a chunk of whole K blocks) into
/// buffers of cache size: AVX2 stores w and |w| for the sign trick (vpsignb moves w's sign onto
/// the activation, vpmaddubsw multiplies |w| x (+-x): every pair sum is at most 2 x 127 x 127 =
/// 32258 in magnitude, so the int16 step never saturates), the VNNI paths w and sum_k w per column
/// and block. Block sums are exact int32; the output follows NOTES.md, "Numerics decisions". Returns 0, or -1 when
/// a buffer cannot be allocated.
int ck_i8_gemm_run(const ck_i8_gemm_args *args, int64_t n0, int64_t n1, int path);

/// W8A8 for few rows (decode), output columns [n0, n1): reads args->x, args->sx and the weight
/// directly (no packing); one weight row at a time, streamed from memory once for all m rows (in
/// chunks of four rows), with exact int32 block sums (AVX2: the vpmaddubsw sign trick; AVX-512 VNNI
/// and AMX paths: vpdpbusd on u8 = x + 128, 128 sum w subtracted) and the arithmetic of
/// ck_i8_gemm_run.
void ck_i8_gemv_run(const ck_i8_gemm_args *args, int64_t n0, int64_t n1, int path);

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

/// Kinds of compact weight the decoded-panel float GEMM reads.
enum {
    CK_WEIGHT_INT8 = 0, ///< block-wise INT8 codes, value = q * scales[n / bn, k / bk]
    CK_WEIGHT_E4M3 = 1, ///< per-tensor e4m3 codes, value = float(q) * scale
};

/// A weight as its codes, for ck_decoded_gemm.
typedef struct {
    int kind;             ///< CK_WEIGHT_*
    const void *codes;    ///< n x k codes, row-major
    const float *scales;  ///< INT8: the ceil(n/bn) x ceil(k/bk) block scales; else unused
    float scale;          ///< e4m3: the per-tensor scale (1 for the raw code values)
    int64_t bn, bk;       ///< INT8 block shape
} ck_decoded_weight;

/// Floats of the packed input of ck_decoded_gemm for an m x k input: ceil(k/256) chunks of
/// ceil(m/6) row tiles of 256 x 6.
int64_t ck_decoded_gemm_input_size(int64_t m, int64_t k);

/// Packs row tiles [tile0, tile1) (6 rows each, rows past m as zeros) of x (m x k float32,
/// row-major) for ck_decoded_gemm: K chunk c, tile i, K value t, row r at
/// xp[((c * ceil(m/6) + i) * 256 + t) * 6 + r] (values copied, not rounded).
void ck_decoded_gemm_pack_input(const float *x, int64_t m, int64_t k, int64_t tile0, int64_t tile1, float *xp,
                                int path);

/// ck_decoded_gemm_pack_input for an input given as m x k e4m3 codes (FP8 W8A8): each code packed as its
/// exact float value (0x7F and 0xFF as NaN), no float copy of the input first.
void ck_decoded_gemm_pack_input_e4m3(const uint8_t *q, int64_t m, int64_t k, int64_t tile0, int64_t tile1, float *xp,
                                     int path);

/// y = (x W^T) * alpha + bias for output columns [n0, n1) of an m x n output (out_dtype), x m x k
/// float32 packed by ck_decoded_gemm_pack_input (`xp`), W decoded from its codes into cache-sized
/// float panels as the GEMM goes: each element is exactly its dequantized value (INT8 q * s, e4m3
/// float(q) * scale), products and sums in float32 (FMA; the AVX-512 paths' 24 x 16 micro-kernel gives
/// the AVX2 path's bits). Returns 0, or -1 when a buffer cannot be allocated.
int ck_decoded_gemm(const float *xp, int64_t m, int64_t n, int64_t k, const ck_decoded_weight *w, float alpha,
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
