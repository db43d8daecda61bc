/// Decode-shape linear kernels (1 <= M <= 16 rows): `gemv_stream`, that streams each weight row once
/// from memory (every mode), and with `TC` defined `gemv_w8a8_mma` (W8A8, modes 0 and 1) and `gemv_wo_mma`
/// (weight-only, modes 2 and 3) on the tensor cores (see there), specialised with `-D`:
/// - `MODE` 0: INT8 W8A8 on given activation codes `qx` (M, K) int8 and scales `sx` (M, KB);
///   1: INT8 W8A8 on a float input `x` (M, K) of dtype `X_DT`, quantized inside the kernel into
///   shared memory (1 x `BC` blocks, exactly the activation quantizer: `scale = amax / 127`, `q =
///   clamp(round(x / scale))`, NaN-propagating amax), so the op is one launch;
///   2: INT8 weight-only, `w = q * s` (`BR` x `BC` weight blocks); 3: FP8 weight-only, `w = e4m3(q) * s`;
///   4 (`gemv_wo_mma` only): FP8 W8A8 on a float input, quantized inside the kernel like the FP8 input
///   quantizer (per-tensor amax / 448, the same codes), `y = (sum_k qx qw) * (sx * sw) + b`.
/// - `MT` = M, `OUT_DT`, `BIAS_DT`, `TOWARD_ZERO` (mode 1's rounding), `U` 16-byte chunks per lane per
///   batch, `XS` 1 when the input is copied into shared memory first (mode 1 always; modes 0, 2, 3 where
///   it fits), 0 when it is read from global memory.
///
/// Arithmetic (NOTES.md, "Numerics decisions"): W8A8 computes each K block's int32 sum exactly (dp4a over
/// 16-byte chunks, the chunks' sums added as integers), then `acc = acc + float(sum_j) * (sx[m,j] * sw[n/BR, j])` in
/// float32 in increasing j, bias added last, rounded once to `OUT_DT`: the CPU reference's value exactly.
/// Weight-only (`gemv_stream`): `y = sum_k x * w` in float32 (fused multiply-adds into four partial sums
/// per lane and row, added and summed over the warp by a reduction), bias added last.
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
/// Mode 1's quantizer rounds with the magic-number add where the block's reciprocal is normal (no
/// float-to-int or round instruction per element: 0.66 -> 0.70 of copy at 2 x 18432 x 3072).
/// Measured on the H200 at M = 2 (scripts/gpu/membound_harness.py, NOTES.md issue 10): W8A8 0.70-0.92
/// of the copy bandwidth; weight-only here 0.40-0.56 (issue-bound on the per-element decode and FMAs;
/// `gemv_wo_mma` 0.61-0.81, used wherever it applies).
/// Needs K % 16 == 0, 16-byte aligned `qx` / `x` / `wq`, and for W8A8 `BC` a power of two in 16...512.
/// Dynamic shared memory (`decodeSharedBytes` in Swift): with XS, the input (`align16(M K)` codes +
/// `4 M KB` scales for W8A8, `align16(M K sizeof(X_DT))` for weight-only); W8A8 adds, 16-byte aligned,
/// `8 * 4 * (M * 32 * U + M * 32 * U / (BC / 16))` bytes of staging.
///
/// Weight-only on the tensor cores (`TC` defined): `gemv_wo_mma`, for MT <= 16 and, in mode 2,
/// BC % 64 == 0 (every 64-element segment of a row in one weight block).
///
/// Arithmetic: each weight code's exact value (int8, or e4m3) is a float16 operand. Input row m is
/// scaled by a power of two, 2^-e_m (its largest |x| into [2^14, 2^15)), and split into float16
/// pieces: one for bf16 / f16 inputs, three for f32 (hi + mid + lo: 33 bits), staged once per CTA in
/// shared memory; what a piece cannot hold is below 2^-24 after scaling, i.e. under 2^-38 of the
/// row's largest |x|. `mma.m16n8k16` f16 with float32 accumulation sums each 64-element segment of
/// a weight row: D = sum_k x'[m,k] q[n,k] (products exact), then `acc = fma(s, D, acc)` with the
/// segment's block scale s, and y = 2^e_m acc + bias: the scale is applied per segment instead of per
/// element (w = q * s), a different rounding of the same sum (NOTES.md, issue 10 round 3; the GPU
/// tests compare weight-only within 1e-6 of the float64 value). An output that comes out non-finite
/// (a non-finite input or scale, or a sum past the float range) is recomputed by the whole warp in
/// the contract's arithmetic, `sum_k x * (q * s)` in float32 from the global input, so NaN and
/// infinity appear exactly where that arithmetic gives them.
///
/// Layout: the CTA (8 warps) owns 16 weight rows at a time (tiles n0 = 16 (blockIdx.x + i gridDim.x));
/// warp w takes the row's segments [w SPW, (w + 1) SPW). Lane (g = lane / 4, t = lane % 4) loads 16
/// bytes at k = 64 s + 16 t of rows n0 + g and n0 + g + 8 (the quad of a row reads 64 contiguous
/// bytes); mma step e uses bytes 4e...4e + 3 of them as the A fragment's columns 2t, 2t + 1, 2t + 8,
/// 2t + 9, and the same k of x row g (the B fragment): the sum over k is the same in any order. U
/// segments per warp are in flight (the next batch loaded before the current one is used, across
/// tiles). At a tile's end the 8 warps' partial sums meet in shared memory and warp 0 adds them in warp
/// order, scales, adds the bias and stores.
///
/// W8A8 on the tensor cores (`TC` defined, modes 0 and 1): `gemv_w8a8_mma`, for MT <= 16 and BC % 64 == 0.
/// The same arithmetic and bits as `gemv_stream`: the weight codes are the A operand of `mma.m16n8k32` s8 x s8
/// -> s32 (16 weight rows), the activation codes (quantized in the kernel by the same `quantize_input`, or
/// copied) the B operand, so each K block's int32 sum is exact; each block's `float(S) * (sx * sw)` goes to
/// shared memory, and at a tile's end one thread per output adds the KB products in increasing block order,
/// bias last. Layout as `gemv_wo_mma` below, with K split over the 8 warps by whole blocks.
///
/// CUDA C in `KernelSources/decode.cu`.
enum DecodeKernels {
    static let source = KernelSource(file: "decode")
}
