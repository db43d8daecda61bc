/// The two ends of an encoder: embedding lookup (token ids -> rows of a table) and masked mean
/// pooling (token rows -> one row per sequence).
///
/// Compile-time parameters (`-D`): `EMBEDDING` with `WB` (bytes per copied word: 1, 2, 4, 8 or 16,
/// dividing the row's bytes); `MEAN_POOL` with `IN_DT`, `M_DT` (mask element code) and `VEC`.
///
/// CUDA C in `KernelSources/token.cu`.
enum TokenKernels {
    static let source = KernelSource(file: "token")
}
