/// Elementwise products of contiguous tensors, `VEC` elements per access, float32 arithmetic and
/// one rounding to the output dtype.
///
/// Compile-time parameters (`-D`): `IN_DT` (input and output element code), `VEC`, and `SCALE`
/// or `MULTIPLY` with `B_DT` (the second operand's code).
///
/// CUDA C in `KernelSources/elementwise.cu`.
enum ElementwiseKernels {
    static let source = KernelSource(file: "elementwise")
}
