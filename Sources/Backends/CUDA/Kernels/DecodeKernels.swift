/// Decode-shape linear kernels (1 <= M <= 16 rows): one kernel, `gemv_stream`, that streams each weight
/// row once from memory, specialised with `-D`:
/// - `MODE` 0: INT8 W8A8 on given activation codes `qx` (M, K) int8 and scales `sx` (M, KB);
///   1: INT8 W8A8 on a float input `x` (M, K) of dtype `X_DT`, quantized inside the kernel into
///   shared memory (1 x `BC` blocks, exactly the activation quantizer: `scale = amax / 127`, `q =
///   clamp(round(x / scale))`, NaN-propagating amax), so the op is one launch;
///   2: INT8 weight-only, `w = q * s` (`BR` x `BC` weight blocks); 3: FP8 weight-only, `w = e4m3(q) * s`.
/// - `MT` = M, `OUT_DT`, `BIAS_DT`, `TOWARD_ZERO` (mode 1's rounding), `U` 16-byte chunks per lane per batch.
///
/// Arithmetic (CONTRACTS.md): W8A8 computes each K block's int32 sum exactly (dp4a over 16-byte chunks,
/// then an exact integer shuffle sum over the block's `BC / 16` lanes), then
/// `acc = acc + float(sum_j) * (sx[m,j] * sw[n/BR, j])` in float32 in increasing j, bias added last,
/// rounded once to `OUT_DT`: the CPU reference's value exactly. Weight-only: `y = sum_k x * w` in
/// float32 (fused multiply-adds, lane partials summed by a warp reduction), bias added last.
///
/// Launch: block 256 threads (8 warps); persistent grid (any size); warp w of the grid streams rows
/// n = w, w + warps, ...; each row in batches of 32 * U chunks, the next batch's loads issued before
/// the current batch is used, so every lane keeps U 16-byte loads in flight across row boundaries.
/// Needs K % 16 == 0, 16-byte aligned `qx` / `x` / `wq`, and for W8A8 `BC` a power of two in 16...512.
/// Mode 1 takes `align16(M K) + 4 M KB` bytes of dynamic shared memory.
///
/// CUDA C in `KernelSources/decode.cu`.
enum DecodeKernels {
    static let source = KernelSource(file: "decode")
}
