/// Linear kernels of our own: the general block-wise INT8 W8A8 GEMM (SIMT, `dp4a`) that serves every
/// block size and shape the tensor-core kernel does not, and the weight-only GEMV for decode shapes.
///
/// `w8a8_simt` computes exactly the CPU reference's arithmetic:
/// `y[m,n] = sum_j float(sum_{k in block j} qx[m,k] qw[n,k]) * sx[m,j] * sw[n/BRW, j] + b[n]`, the inner
/// sum in int32, the outer in float32 in block order with the same rounding (`__fmul_rn`,
/// `__fadd_rn`), written straight to `OUT_DT`. Grid (ceil(N/64), ceil(M/64)), 256 threads, each
/// computing 4 x 4 outputs; no dynamic shared memory; any compute capability >= 6.1.
///
/// `wo_gemv` is the weight-only linear for few rows (M <= 8): one warp per 4 output columns streams
/// those weight rows once with 16-byte loads (`WQ` 0: INT8 codes with BR x BC block scales; 1: FP8 codes
/// with one scale) and multiplies it with `MT` input rows of dtype `X_DT` (read from cache).
/// Grid (ceil(N/32), ceil(M/MT)), 256 threads; needs K % EPT == 0.
///
/// CUDA C in `KernelSources/linear.cu`.
enum LinearKernels {
    static let source = KernelSource(file: "linear")
}
