/// Quantize, dequantize and requantize kernels for block-wise INT8 and per-tensor FP8.
///
/// One source, specialised with `-D`:
/// - `SRC`: 0 = a dense tensor of dtype `IN_DT`; 1 = INT8 codes with their block scales (same grid
///   as the output: gelu and weight update re-quantize with the tensor's own blocks); 2 = FP8 codes
///   with their per-tensor scale.
/// - `OPK`: 0 none; 1 / 2 GELU (erf / tanh); 3 `+ strength * delta` (delta of dtype `DELTA_DT`).
///   The result is rounded to `ROUND_DT` before quantizing, as the CPU path materialises it there.
/// - `TOWARD_ZERO`: INT8 rounding (1 truncates, 0 rounds half to even).
/// - `BR`, `BC`: the INT8 block shape; `EPT` elements per thread per access (16-byte accesses where
///   the shape allows); `U` accesses (chunks) per lane in flight; `G = BC / EPT` for the row kernel.
/// - Layout of the streaming kernels (`quant_rows`, `dequant`, `fp8_dequant`): a warp step covers
///   U * 32 consecutive chunks, lane l holding chunks u * 32 + l, so each load and store instruction
///   of a warp touches one contiguous run (whole 32-byte sectors). Measured on the H200 (54560 x 3072,
///   scripts/gpu/membound_harness.py): quantize 0.79 of the copy bandwidth (bf16, U = 4), dequantize 0.81
///   (INT8) and 0.89 (FP8), fused tanh-gelu requantization 0.40 (INT8 codes) / 0.51 (bf16 input);
///   NOTES.md issue 10.
///
/// Every quantizer follows the CPU definition exactly: `scale = amax / 127` (true division),
/// `q = clamp(round(x / scale), -127, 127)` with `x / scale` correctly rounded (a reciprocal and one
/// FMA correction, `div_by`, or `__fdiv_rn` for scales under 1e-30), an
/// all-zero block gets scale 0 and codes 0; FP8 `scale = amax / 448` (1 for all zeros), `q =
/// e4m3(clamp(x / scale, -448, 448))`. Non-finite inputs set `*flag` (the host turns it into an error);
/// without a flag they propagate: amax is taken over bit patterns (`abs_max`), so a block holding NaN
/// gets a NaN scale (codes 0), one holding infinity an infinite scale, and a GEMM on it a non-finite row.
///
/// CUDA C in `KernelSources/quantization.cu`.
enum QuantizationKernels {
    static let source = KernelSource(file: "quantization")
}
