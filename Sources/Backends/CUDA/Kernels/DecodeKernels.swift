/// Decode-shape linear kernels (1 <= M <= 16 rows): one kernel, `gemv_stream`, that streams each weight
/// row once from memory, specialised with `-D`:
/// - `MODE` 0: INT8 W8A8 on given activation codes `qx` (M, K) int8 and scales `sx` (M, KB);
///   1: INT8 W8A8 on a float input `x` (M, K) of dtype `X_DT`, quantized inside the kernel into
///   shared memory (1 x `BC` blocks, exactly the activation quantizer: `scale = amax / 127`, `q =
///   clamp(round(x / scale))`, NaN-propagating amax), so the op is one launch;
///   2: INT8 weight-only, `w = q * s` (`BR` x `BC` weight blocks); 3: FP8 weight-only, `w = e4m3(q) * s`.
/// - `MT` = M, `OUT_DT`, `BIAS_DT`, `TOWARD_ZERO` (mode 1's rounding), `U` 16-byte chunks per lane per
///   batch, `XS` 1 when the input is copied into shared memory first (mode 1 always; modes 0, 2, 3 where
///   it fits), 0 when it is read from global memory.
///
/// Arithmetic (CONTRACTS.md): W8A8 computes each K block's int32 sum exactly (dp4a over 16-byte chunks,
/// the chunks' sums added as integers), then `acc = acc + float(sum_j) * (sx[m,j] * sw[n/BR, j])` in
/// float32 in increasing j, bias added last, rounded once to `OUT_DT`: the CPU reference's value exactly.
/// Weight-only: `y = sum_k x * w` in float32 (fused multiply-adds into four partial sums per lane and
/// row, added and summed over the warp by a reduction), bias added last.
///
/// Launch: block 256 threads (8 warps); persistent grid (any size; all of it resident at once is
/// best); warp w of the grid streams rows n = w, w + warps, ...; each row in batches of 32 * U chunks
/// (lane l loads chunk u * 32 + l of a batch, so every load instruction reads 512 contiguous bytes),
/// the next batch's loads issued before the current batch is used, so every lane keeps U 16-byte
/// loads in flight across row boundaries.
/// W8A8: each lane writes its chunks' int32 dot products (one per row m) to the warp's shared staging
/// area; then one lane per (m, block) adds the block's BC / 16 chunk sums and forms the block's
/// product, and lane m adds the batch's products to its accumulator in increasing block order. No
/// shuffles in the stream; two `__syncwarp` per batch. (The first version reduced each chunk's sum
/// with shuffles and gathered the products in order with 4 more: 98 registers, 0.44-0.50 of copy.)
/// Measured on the H200 at M = 2 (scripts/gpu/membound_harness.py, NOTES.md issue 10): W8A8 0.66-0.92
/// of the copy bandwidth, weight-only 0.40-0.56 (issue-bound on the per-element decode and FMAs).
/// Needs K % 16 == 0, 16-byte aligned `qx` / `x` / `wq`, and for W8A8 `BC` a power of two in 16...512.
/// Dynamic shared memory (`decodeSharedBytes` in Swift): with XS, the input (`align16(M K)` codes +
/// `4 M KB` scales for W8A8, `align16(M K sizeof(X_DT))` for weight-only); W8A8 adds, 16-byte aligned,
/// `8 * 4 * (M * 32 * U + M * 32 * U / (BC / 16))` bytes of staging.
///
/// CUDA C in `KernelSources/decode.cu`.
enum DecodeKernels {
    static let source = KernelSource(file: "decode")
}
