import Foundation
import QuantizedLinear

/// `qlinear bench-cuda`: the SPEC section 6 WAN2.2 layers on a CUDA GPU, every path side by side in
/// one run, timed with CUDA events (median).
enum BenchmarkCUDA {
    static let command = Subcommand(
        name: "bench-cuda",
        summary: "time bf16, INT8 W8A8, FP8 and weight-only linear layers on a CUDA GPU (WAN2.2 shapes)",
        discussion: """
            For each WAN2.2 layer of SPEC section 6 (M = 54560, 1024 and 2), y = x W^T with random
            bf16 data made on the GPU: cuBLASLt bf16 (the baseline), our block-wise INT8 W8A8
            (activation quantization included), our FP8 through cuBLASLt (input quantization
            included), and at M = 2 the weight-only paths (rotating among 4 weight copies, 20 calls
            per timing, so weights stream from memory and launch gaps are amortised). Reports the
            median time (CUDA events), TFLOP/s (2 M N K / t), the ratio to bf16 measured in the same
            run and, at M = 2, the weight bytes streamed per second. Then quantize/dequantize
            bandwidth against a measured device-to-device copy.
            """,
        options: [
            .flag("quick", "the 5B layers only, with fewer repeats"),
            .integer("device", default: 0, in: 0...255, "the CUDA device ordinal"),
            .integer("repeats", placeholder: "R", in: 1...1000, "timed repetitions (default 10, 5 with --quick)"),
            .integer("block-size", placeholder: "B", default: 128, in: 1...16_384, "INT8 block size"),
            .flag("json", "print one JSON object instead of tables"),
        ],
        run: run)

    struct Shape {
        let model: String
        let layer: String
        let m: Int
        let n: Int
        let k: Int
    }

    static let shapes = [
        Shape(model: "5B", layer: "first layer", m: 2, n: 18432, k: 3072),
        Shape(model: "5B", layer: "attention long", m: 54560, n: 3072, k: 3072),
        Shape(model: "5B", layer: "attention medium", m: 1024, n: 3072, k: 3072),
        Shape(model: "5B", layer: "MLP up long", m: 54560, n: 14336, k: 3072),
        Shape(model: "5B", layer: "MLP down long", m: 54560, n: 3072, k: 14336),
        Shape(model: "14B", layer: "first layer", m: 2, n: 30720, k: 5120),
        Shape(model: "14B", layer: "attention long", m: 54560, n: 5120, k: 5120),
        Shape(model: "14B", layer: "attention medium", m: 1024, n: 5120, k: 5120),
        Shape(model: "14B", layer: "MLP up long", m: 54560, n: 13824, k: 5120),
        Shape(model: "14B", layer: "MLP down long", m: 54560, n: 5120, k: 13824),
    ]

    struct Row: Encodable {
        let model: String
        let layer: String
        let m: Int
        let n: Int
        let k: Int
        let path: String
        let milliseconds: Double
        let tflops: Double
        let ratioToBF16: Double
        /// Weight bytes per second, for decode shapes.
        let weightGBps: Double?
    }

    struct Bandwidth: Encodable {
        let kernel: String
        let milliseconds: Double
        let gbps: Double
        let ratioToCopy: Double
    }

    static func run(_ arguments: ParsedArguments) throws {
        let quick = arguments.flag("quick")
        let device = Device.cuda(arguments.int("device"))
        let repeats = arguments.int("repeats", default: quick ? 5 : 10)
        let blockSize = arguments.int("block-size")
        registerBuiltinLayouts()
        guard CUDABackend.isAvailable else {
            throw TensorError(.deviceUnavailable, "bench-cuda needs a CUDA GPU: \(CUDABackend.unavailableReason ?? "")")
        }
        let json = arguments.flag("json")
        if !json {
            print("qlinear bench-cuda on \(try CUDABackend.describe(device)); block \(blockSize); median of \(repeats) "
                + "(CUDA events)")
        }
        let weightLayout = try BlockWiseINT8Layout.weight(blockSize: blockSize)
        var rows: [Row] = []
        for shape in quick ? shapes.filter({ $0.model == "5B" }) : shapes {
            let x = try CUDABackend.randomNormal([shape.m, shape.k], dtype: .bfloat16, seed: 1, on: device)
            // Decode shapes stream their weights: rotate among copies worth several L2 caches, and
            // time 20 back-to-back calls per event pair so launch gaps do not dominate.
            let decode = shape.m <= 16
            let copies = decode ? 4 : 1
            let calls = decode ? 20 : 1
            let weights = try (0..<copies).map { copy in
                try CUDABackend.randomNormal([shape.n, shape.k], standardDeviation: 0.02, dtype: .bfloat16,
                                             seed: UInt64(2 + copy), on: device)
            }
            let int8 = try weights.map { try QuantizedTensor.fromFloat($0, layout: weightLayout) }
            let fp8 = try weights.map { try QuantizedTensor.fromFloat($0, layout: TensorCoreFP8Layout.dynamic) }
            func rotating(_ body: @escaping (Int) throws -> Void) -> () throws -> Void {
                { for call in 0..<calls { try body(call % copies) } }
            }
            var paths: [(String, Int, () throws -> Void)] = [
                ("bf16 cuBLASLt", 2, rotating { _ = try linear(x, weights[$0]) }),
                ("INT8 W8A8 (+act quant)", 1, rotating { _ = try linear(x, int8[$0]) }),
                ("FP8 cuBLASLt (+input quant)", 1, rotating { _ = try linear(x, fp8[$0]) }),
            ]
            if decode {
                let weightOnly = LinearOptions(floatInput: .dequantizeWeight)
                paths.append(("INT8 weight-only", 1, rotating { _ = try linear(x, int8[$0], options: weightOnly) }))
                paths.append(("FP8 weight-only", 1, rotating { _ = try linear(x, fp8[$0], options: weightOnly) }))
            }
            var baseline = Double.nan
            for (name, weightBytes, body) in paths {
                let ms = CUDATimer.median(try FallbackPolicy.withPolicy(.fail) {
                    try CUDATimer.measure(on: device, warmup: 3, repeats: repeats, body)
                }) / Double(calls)
                if baseline.isNaN { baseline = ms }
                let flops = 2.0 * Double(shape.m) * Double(shape.n) * Double(shape.k)
                rows.append(Row(model: shape.model, layer: shape.layer, m: shape.m, n: shape.n, k: shape.k, path: name,
                                milliseconds: ms, tflops: flops / ms / 1e9, ratioToBF16: baseline / ms,
                                weightGBps: shape.m <= 16 ? Double(shape.n * shape.k * weightBytes) / ms / 1e6 : nil))
                if !json { print(format(rows.last!)) }
            }
        }
        let bandwidth = try measureBandwidth(device: device, repeats: repeats, blockSize: blockSize)
        if json {
            struct Report: Encodable { let device: String; let linear: [Row]; let bandwidth: [Bandwidth] }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = try encoder.encode(Report(device: try CUDABackend.describe(device), linear: rows,
                                                 bandwidth: bandwidth))
            print(String(decoding: data, as: UTF8.self))
        } else {
            for entry in bandwidth {
                print("\(entry.kernel.padding(toLength: 44, withPad: " ", startingAt: 0)) "
                    + String(format: "%8.3f ms %8.0f GB/s %6.2fx copy", entry.milliseconds, entry.gbps, entry.ratioToCopy))
            }
        }
    }

    static func format(_ row: Row) -> String {
        let label = "\(row.model) \(row.layer) \(row.m)x\(row.n)x\(row.k)".padding(toLength: 40, withPad: " ", startingAt: 0)
        let path = row.path.padding(toLength: 28, withPad: " ", startingAt: 0)
        var line = label + path + String(format: "%9.3f ms %7.1f TFLOP/s %6.2fx bf16", row.milliseconds, row.tflops,
                                         row.ratioToBF16)
        if let gbps = row.weightGBps { line += String(format: "  weights %5.0f GB/s", gbps) }
        return line
    }

    /// Quantize and dequantize of a long activation (54560 x 3072 bf16) against a device copy of the
    /// same tensor; bytes are the fewest each must move (inputs read once, outputs written once).
    static func measureBandwidth(device: Device, repeats: Int, blockSize: Int) throws -> [Bandwidth] {
        let (m, k) = (54560, 3072)
        let count = Double(m * k)
        let x = try CUDABackend.randomNormal([m, k], dtype: .bfloat16, seed: 3, on: device)
        let activation = try BlockWiseINT8Layout.activation(blockSize: blockSize)
        let q = try QuantizedTensor.fromFloat(x, layout: activation)
        let f = try QuantizedTensor.fromFloat(x, layout: TensorCoreFP8Layout.dynamic)
        let scaleBytes = 4.0 * Double(m * ((k + blockSize - 1) / blockSize))
        let cases: [(String, Double, () throws -> Void)] = [
            ("device-to-device copy (bf16)", 4 * count, { _ = try Tensor.copying(x) }),
            // The kernels as linear runs them (no wait for the NaN check that `fromFloat` does).
            ("INT8 quantize 1x\(blockSize) (bf16 -> int8)", 3 * count + scaleBytes, {
                _ = try CUDAQuantizedOps.quantizeBlockwise(.dense(x), shape: [m, k], scaleShape: q.scale.shape,
                                                           blockRows: 1, blockColumns: blockSize, towardZero: false,
                                                           checkFinite: false)
            }),
            ("INT8 dequantize 1x\(blockSize) (int8 -> bf16)", 3 * count + scaleBytes, { _ = try q.dequantize() }),
            ("FP8 quantize (bf16 -> e4m3, 2 passes)", 3 * count, {
                _ = try CUDAQuantizedOps.quantizeFP8(.dense(x), fixedScale: nil, checkFinite: false)
            }),
            ("FP8 dequantize (e4m3 -> bf16)", 3 * count, { _ = try f.dequantize() }),
        ]
        var results: [Bandwidth] = []
        var copyRate = Double.nan
        for (name, bytes, body) in cases {
            let ms = CUDATimer.median(try FallbackPolicy.withPolicy(.fail) {
                try CUDATimer.measure(on: device, warmup: 2, repeats: repeats, body)
            })
            let gbps = bytes / ms / 1e6
            if copyRate.isNaN { copyRate = gbps }
            results.append(Bandwidth(kernel: name, milliseconds: ms, gbps: gbps, ratioToCopy: gbps / copyRate))
        }
        return results
    }
}
