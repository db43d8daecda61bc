import QuantizedLinear

let x = try Tensor.randomNormal([4, 77, 1024], dtype: .bfloat16, seed: 1)      // (..., K)
let w = try Tensor.randomNormal([1024, 1024], standardDeviation: 0.02, seed: 2)  // (N, K)

// Quantize the weight: 128 x 128 blocks, round to nearest even (toward zero on request).
let qw = try QuantizedTensor.fromFloat(w, layout: BlockWiseINT8Layout.weight(blockSize: 128))

// W8A8: the input is quantized on the fly (1 x 128 blocks) and the INT8 GEMM runs.
let y = try linear(x, qw).dequantized()                                          // (4, 77, 1024), bfloat16

// Weight-only: the weight is used dequantized in a float GEMM.
let y2 = try linear(x, qw, options: LinearOptions(floatInput: .dequantizeWeight))

// Stay in INT8 through linear -> gelu -> linear.
let h = try linear(x, qw, options: LinearOptions(outputLayout: BlockWiseINT8Layout.activation()))
let g = try gelu(h, approximation: .tanh)                                        // still a QuantizedTensor

// FP8 (per-tensor e4m3fn) works the same way.
let q8 = try QuantizedTensor.fromFloat(w, layout: TensorCoreFP8Layout.dynamic)

// Fallbacks are observable: make them errors, or record them.
try FallbackPolicy.withPolicy(.fail) { _ = try linear(x, q8) }
let (_, events) = try FallbackStatistics.recording { try matmul(x, qw) }         // events: why it fell back
print(events.map(\.reason))
print(LayoutRegistry.shared.coverageReport())                    // native handler or fallback, per op x layout
