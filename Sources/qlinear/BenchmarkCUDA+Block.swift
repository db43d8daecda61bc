import Foundation
import QuantizedLinear

extension BenchmarkCUDA {
    /// An MLP block `down(gelu_tanh(up(x)))`, x (M, hidden) bf16, in each format:
    /// - bf16: cuBLASLt with its GELU epilogue for `up`, then cuBLASLt for `down`;
    /// - INT8: W8A8 `up` (x quantized), the bf16 result quantized into 1 x B blocks with the gelu
    ///   fused into the quantizer (one pass), W8A8 `down` on those codes;
    /// - FP8: FP8 `up` (x quantized), gelu fused into the per-tensor quantizer, FP8 `down`.
    static func measureBlock(model: String, m: Int, hidden: Int, mlp: Int, _ context: Context) throws -> [Row] {
        let device = context.device
        let x = try CUDABackend.randomNormal([m, hidden], dtype: .bfloat16, seed: 11, on: device)
        let up = try CUDABackend.randomNormal([mlp, hidden], standardDeviation: 0.02, dtype: .bfloat16, seed: 12,
                                              on: device)
        let down = try CUDABackend.randomNormal([hidden, mlp], standardDeviation: 0.02, dtype: .bfloat16, seed: 13,
                                                on: device)
        let weightLayout = try BlockWiseINT8Layout.weight(blockSize: context.blockSize)
        let activation = try BlockWiseINT8Layout.activation(blockSize: context.blockSize)
        let (int8Up, int8Down) = (try QuantizedTensor.fromFloat(up, layout: weightLayout),
                                  try QuantizedTensor.fromFloat(down, layout: weightLayout))
        let (fp8Up, fp8Down) = (try QuantizedTensor.fromFloat(up, layout: TensorCoreFP8Layout.dynamic),
                                try QuantizedTensor.fromFloat(down, layout: TensorCoreFP8Layout.dynamic))
        func dense(_ value: AnyTensor) throws -> Tensor {
            guard let tensor = value.denseTensor else {
                throw TensorError(.backendFailure, "bench-cuda: the MLP block's up projection returned a quantized tensor")
            }
            return tensor
        }
        let paths: [(TimedPath, Format)] = [
            (TimedPath(name: "bf16 cuBLASLt (GELU epilogue)", calls: 1) {
                _ = try linear(try CUDABackend.linearGELU(x, up), down)
            }, .bf16),
            (TimedPath(name: "INT8 W8A8 (gelu in quantizer)", calls: 1) {
                let h = try dense(try linear(x, int8Up))
                let (codes, scales) = try CUDAQuantizedOps.quantizeBlockwise(
                    .dense(h), shape: h.shape, scaleShape: activation.scaleShape(for: h.shape), blockRows: 1,
                    blockColumns: context.blockSize, towardZero: false, transform: .gelu(.tanh), roundTo: .bfloat16,
                    checkFinite: false)
                let q = QuantizedTensor(unchecked: activation, data: codes, scale: scales, shape: h.shape,
                                        originalDType: .bfloat16)
                _ = try linear(q, int8Down)
            }, .int8),
            (TimedPath(name: "FP8 cuBLASLt (gelu in quantizer)", calls: 1) {
                let h = try dense(try linear(x, fp8Up))
                let (codes, scale) = try CUDAQuantizedOps.quantizeFP8(.dense(h), fixedScale: nil,
                                                                       transform: .gelu(.tanh), roundTo: .bfloat16,
                                                                       checkFinite: false)
                let q = QuantizedTensor(unchecked: TensorCoreFP8Layout.dynamic, data: codes, scale: scale,
                                        shape: h.shape, originalDType: .bfloat16)
                _ = try linear(q, fp8Down)
            }, .fp8),
        ]
        let timings = try measure(paths.map(\.0), device: device, rounds: context.rounds, repeats: context.repeats)
        let flops = 4.0 * Double(m) * Double(mlp) * Double(hidden)
        return zip(paths, timings).map { path, timing in
            let weights = 2 * weightBytes(path.1, n: mlp, k: hidden, blockSize: context.blockSize)
            return row(model: model, layer: "MLP block (up, gelu, down)", m: m, n: mlp, k: hidden, path: path.0.name,
                       format: path.1, timing: timing, flops: flops, bytes: Double(4 * m * hidden) + weights,
                       weightBytes: nil, baseline: timings[0], context)
        }
    }
}
