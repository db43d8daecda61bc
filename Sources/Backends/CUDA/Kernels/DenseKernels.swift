/// Elementwise and layout kernels for dense tensors.
///
/// Compile-time parameters (`-D`): `IN_DT`, `OUT_DT`, `B_DT` element codes, `ES` bytes per gathered word
/// (1, 2, 4, 8 or 16), `APPROX` (0 erf, 1 tanh) for GELU. Shapes travel in a `Dims` struct of
/// up to 8 dimensions.
///
/// CUDA C in `KernelSources/dense.cu`.
enum DenseKernels {
    static let maxRank = 8

    static let source = KernelSource(file: "dense")

    /// The `Dims` struct's bytes: output shape and two stride lists (in elements), padded to 8.
    static func dims(shape: [Int], a: [Int], b: [Int]) -> [UInt8] {
        var words = [Int64](repeating: 0, count: 3 * maxRank)
        for axis in shape.indices {
            words[axis] = Int64(shape[axis])
            words[maxRank + axis] = Int64(a[axis])
            words[2 * maxRank + axis] = Int64(b[axis])
        }
        var bytes = words.withUnsafeBytes { Array($0) }
        withUnsafeBytes(of: Int32(shape.count)) { bytes += $0 }
        bytes += [0, 0, 0, 0]
        return bytes
    }
}
