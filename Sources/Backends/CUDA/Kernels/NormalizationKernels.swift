/// Row-wise reductions over the last dimension: layer norm, softmax with an additive mask, L2
/// normalization. Rows are contiguous and `d` long; arithmetic in float32.
///
/// One group of `RT` threads per row: `RT = 32` is one warp per row (blocks of 32 x 8 threads,
/// eight rows per block), `RT = 128 ... 1024` one block per row for long rows. Each thread reads
/// `VEC` consecutive elements per access (`d % VEC == 0`, every operand aligned to its vector).
/// Reductions are warp shuffles, then shared memory across the warps of a block. Rows are read
/// once per pass (mean, variance, output) from L1/L2 rather than cached in registers, so that one
/// compiled variant serves every row length.
///
/// Compile-time parameters (`-D`): `IN_DT` element code of x and y, `VEC`, `RT`, and one of
/// `LAYER_NORM` (with `W_DT`, `B_DT`: weight / bias codes, -1 when absent), `SOFTMAX` (with
/// `M_DT`: mask code, -1 when absent), `L2_NORMALIZE`.
///
/// CUDA C in `KernelSources/normalization.cu`.
enum NormalizationKernels {
    static let source = KernelSource(file: "normalization")
}
