/// Linear kernel of our own: the general block-wise INT8 W8A8 GEMM (SIMT, `dp4a`) that serves every
/// block size and shape the tensor-core and decode kernels do not (decode shapes: ``DecodeKernels``).
///
/// `w8a8_simt` computes exactly the CPU reference's arithmetic:
/// `y[m,n] = sum_j float(sum_{k in block j} qx[m,k] qw[n,k]) * sx[m,j] * sw[n/BRW, j] + b[n]`, the inner
/// sum in int32, the outer in float32 in block order with the same rounding (`__fmul_rn`,
/// `__fadd_rn`), written straight to `OUT_DT`. Grid (ceil(N/64), ceil(M/64)), 256 threads, each
/// computing 4 x 4 outputs; no dynamic shared memory; any compute capability >= 6.1.
///
/// CUDA C in `KernelSources/linear.cu`.
enum LinearKernels {
    static let source = KernelSource(file: "linear")
}
