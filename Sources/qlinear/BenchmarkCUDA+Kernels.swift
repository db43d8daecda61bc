import Foundation
import QuantizedLinear

extension BenchmarkCUDA {
    /// The memory-bound kernels on a 54560 x 3072 bf16 activation (the 5B long attention input) as
    /// the library runs them (no wait for the NaN check that `fromFloat` does), against the copy.
    /// Bytes are the fewest each must move: input read once, output written once, scales.
    static func measureKernels(_ context: Context) throws -> [Bandwidth] {
        let device = context.device
        let blockSize = context.blockSize
        let (m, k) = (54560, 3072)
        let count = Double(m * k)
        let x = try CUDABackend.randomNormal([m, k], dtype: .bfloat16, seed: 3, on: device)
        let activation = try BlockWiseINT8Layout.activation(blockSize: blockSize)
        let scaleShape = activation.scaleShape(for: [m, k])
        let q = try QuantizedTensor.fromFloat(x, layout: activation)
        let f = try QuantizedTensor.fromFloat(x, layout: TensorCoreFP8Layout.dynamic)
        let scaleBytes = 4.0 * Double(scaleShape.reduce(1, *))
        func int8(_ source: QuantizationSource, _ transform: QuantizationTransform) throws {
            _ = try CUDAQuantizedOps.quantizeBlockwise(source, shape: [m, k], scaleShape: scaleShape, blockRows: 1,
                                                       blockColumns: blockSize, towardZero: false,
                                                       transform: transform, roundTo: .bfloat16, checkFinite: false)
        }
        func fp8(_ source: QuantizationSource, _ transform: QuantizationTransform) throws {
            _ = try CUDAQuantizedOps.quantizeFP8(source, fixedScale: nil, transform: transform, roundTo: .bfloat16,
                                                 checkFinite: false)
        }
        let cases: [(String, Double, () throws -> Void)] = [
            ("INT8 quantize 1x\(blockSize) (bf16 -> int8)", 3 * count + scaleBytes, { try int8(.dense(x), .none) }),
            ("INT8 dequantize 1x\(blockSize) (int8 -> bf16)", 3 * count + scaleBytes, { _ = try q.dequantize() }),
            ("INT8 gelu (int8 -> gelu -> int8)", 2 * count + 2 * scaleBytes, {
                try int8(.int8(INT8Parts(codes: q.data, scales: q.scale)), .gelu(.tanh))
            }),
            ("INT8 gelu + quantize (bf16 -> gelu -> int8)", 3 * count + scaleBytes, {
                try int8(.dense(x), .gelu(.tanh))
            }),
            ("FP8 quantize (bf16 -> e4m3)", 3 * count, { try fp8(.dense(x), .none) }),
            ("FP8 dequantize (e4m3 -> bf16)", 3 * count, { _ = try f.dequantize() }),
            ("FP8 gelu (e4m3 -> gelu -> e4m3)", 2 * count, { try fp8(.fp8(FP8Parts(codes: f.data, scale: f.scale)), .gelu(.tanh)) }),
            ("FP8 gelu + quantize (bf16 -> gelu -> e4m3)", 3 * count, { try fp8(.dense(x), .gelu(.tanh)) }),
        ]
        let timings = try measure(cases.map { TimedPath(name: $0.0, calls: 1, body: $0.2) }, device: device,
                                  rounds: context.rounds, repeats: context.repeats)
        return zip(cases, timings).map { entry, timing in
            let rate = entry.1 / (kernelTime(timing) / 1e3) / 1e9
            return Bandwidth(kernel: entry.0, timing: timing, bytes: entry.1, gigabytesPerSecond: rate,
                             fractionOfCopy: rate / context.copy)
        }
    }
}
