import Foundation
import QuantizedLinear

/// `qlinear bench-cuda`: the SPEC section 6 WAN2.2 layers and MLP blocks on a CUDA GPU, every path
/// side by side in one run, plus the memory-bound kernels against a copy measured in the same run.
enum BenchmarkCUDA {
    static let command = Subcommand(
        name: "bench-cuda",
        summary: "time bf16, INT8 W8A8, FP8 and weight-only linear layers and MLP blocks on a CUDA GPU",
        discussion: """
            For each WAN2.2 layer of SPEC section 6 (M = 54560, 1024 and 2; also M = 16 for the first
            layers), y = x W^T with random bf16 data made on the GPU: cuBLASLt bf16 (the baseline), our
            block-wise INT8 W8A8 (activation quantization included), our FP8 through cuBLASLt (input
            quantization included), and at M <= 16 the weight-only paths; decode shapes rotate among
            weight copies worth several L2 caches, 20 calls per timing, so weights stream from HBM.
            Then the MLP blocks (up, tanh-gelu, down at M = 54560 and 1024): bf16 with cuBLASLt's GELU
            epilogue, INT8 (gelu fused into the activation quantizer) and FP8 (likewise).
            Then quantize / dequantize / fused-gelu kernels on a 54560 x 3072 activation.

            Each path is timed eagerly in --rounds interleaved rounds of --repeats CUDA-event timings
            (median; "spread" = max / min - 1 of the round medians), then as CUDA graph replays (the
            kernels without host launch gaps); "host" is the enqueue time per call. TOP/s, % of the
            chip's dense peak (H100/H200: bf16 989, int8/fp8 1979) and GB/s use the graph time;
            "x bf16" is bf16's eager time over the path's (graph ratio in parentheses). GB/s counts the
            fewest bytes a path must move, against a device-to-device copy measured first.
            """,
        options: [
            .flag("quick", "5B layers and blocks only, 2 rounds of 3 repeats (a smoke run)"),
            .integer("device", default: 0, in: 0...255, "the CUDA device ordinal"),
            .integer("repeats", placeholder: "R", in: 1...1000,
                     "timed repetitions per round (default 5, 3 with --quick)"),
            .integer("rounds", in: 1...100, "interleaved rounds per path (default 3, 2 with --quick)"),
            .integer("block-size", placeholder: "B", default: 128, in: 1...16_384, "INT8 block size"),
            .text("only", placeholder: "LIST", default: "linear,blocks,kernels", validate: validateSections,
                  "sections to run, comma-separated: linear, blocks, kernels"),
            .text("layer", placeholder: "TEXT", "only the layers whose name contains TEXT (e.g. \"first layer\")"),
            .text("json", placeholder: "FILE", "also write every measurement as JSON to FILE"),
        ],
        run: run)

    struct Shape {
        let model: String
        let layer: String
        let m: Int
        let n: Int
        let k: Int
        var decode: Bool { m <= 16 }
    }

    static let shapes = [
        Shape(model: "5B", layer: "first layer", m: 2, n: 18432, k: 3072),
        Shape(model: "5B", layer: "first layer (M = 16)", m: 16, n: 18432, k: 3072),
        Shape(model: "5B", layer: "attention long", m: 54560, n: 3072, k: 3072),
        Shape(model: "5B", layer: "attention medium", m: 1024, n: 3072, k: 3072),
        Shape(model: "5B", layer: "MLP up long", m: 54560, n: 14336, k: 3072),
        Shape(model: "5B", layer: "MLP down long", m: 54560, n: 3072, k: 14336),
        Shape(model: "14B", layer: "first layer", m: 2, n: 30720, k: 5120),
        Shape(model: "14B", layer: "first layer (M = 16)", m: 16, n: 30720, k: 5120),
        Shape(model: "14B", layer: "attention long", m: 54560, n: 5120, k: 5120),
        Shape(model: "14B", layer: "attention medium", m: 1024, n: 5120, k: 5120),
        Shape(model: "14B", layer: "MLP up long", m: 54560, n: 13824, k: 5120),
        Shape(model: "14B", layer: "MLP down long", m: 54560, n: 5120, k: 13824),
    ]

    /// Hidden and MLP widths of the two models' blocks.
    static let blocks: [(model: String, hidden: Int, mlp: Int)] = [("5B", 3072, 14336), ("14B", 5120, 13824)]

    static let sections = ["linear", "blocks", "kernels"]

    /// `--only`: a comma-separated list of ``sections``.
    @Sendable static func validateSections(_ text: String) throws {
        let chosen = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        if let unknown = chosen.first(where: { !sections.contains($0) }) {
            throw TensorError(.invalidArgument, "--only takes a comma-separated list of "
                + "\(sections.joined(separator: ", ")); got `\(unknown)`")
        }
    }

    static func run(_ arguments: ParsedArguments) throws {
        let quick = arguments.flag("quick")
        let device = Device.cuda(arguments.int("device"))
        let repeats = arguments.int("repeats", default: quick ? 3 : 5)
        let rounds = arguments.int("rounds", default: quick ? 2 : 3)
        let blockSize = arguments.int("block-size")
        let sections = Set(arguments.string("only")!.split(separator: ",").map(String.init))
        let layerFilter = arguments.string("layer")
        registerBuiltinLayouts()
        guard CUDABackend.isAvailable else {
            throw TensorError(.deviceUnavailable, "bench-cuda needs a CUDA GPU: \(CUDABackend.unavailableReason ?? "")")
        }
        let name = try CUDABackend.describe(device)
        let peaks = Peaks.forDevice(named: name)
        let copy = try measureCopy(device: device, rounds: rounds, repeats: repeats)
        print("qlinear bench-cuda on \(name); block \(blockSize); \(rounds) rounds x \(repeats) repeats; "
            + String(format: "device copy %.0f GB/s (read + write)", copy))
        let context = Context(device: device, peaks: peaks, copy: copy, rounds: rounds, repeats: repeats,
                              blockSize: blockSize)
        var linearRows: [Row] = []
        let chosen = shapes.filter { shape in
            sections.contains("linear") && (!quick || shape.model == "5B")
                && (layerFilter.map { shape.layer.contains($0) } ?? true)
        }
        for shape in chosen {
            let rows = try measureLinear(shape, context)
            rows.forEach { print(format($0)) }
            linearRows += rows
        }
        var blockRows: [Row] = []
        for block in !sections.contains("blocks") ? [] : quick ? Array(blocks.prefix(1)) : blocks {
            for m in [54560, 1024] {
                let rows = try measureBlock(model: block.model, m: m, hidden: block.hidden, mlp: block.mlp, context)
                rows.forEach { print(format($0)) }
                blockRows += rows
            }
        }
        let bandwidth = sections.contains("kernels") ? try measureKernels(context) : []
        bandwidth.forEach { print(format($0)) }
        let algorithms = try CUDABackend.chosenGEMMAlgorithms(device)
        for key in algorithms.keys.sorted() { print("cuBLASLt \(key): \(algorithms[key]!)") }
        if let file = arguments.string("json") {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf",
                                                                          negativeInfinity: "-inf", nan: "nan")
            let report = Report(device: name, peaks: peaks, copyGigabytesPerSecond: copy, blockSize: blockSize,
                                rounds: rounds, repeats: repeats, linear: linearRows, mlpBlocks: blockRows,
                                bandwidth: bandwidth, cublasLtAlgorithms: algorithms)
            try encoder.encode(report).write(to: URL(fileURLWithPath: file))
            print("wrote \(file)")
        }
    }

    /// What every measurement needs.
    struct Context {
        let device: Device
        let peaks: Peaks?
        /// Device-to-device copy, GB/s counting bytes read plus bytes written.
        let copy: Double
        let rounds: Int
        let repeats: Int
        let blockSize: Int
    }

    /// A row from a path's measurement; `bytes` and `weightBytes` are the fewest it must move.
    static func row(model: String, layer: String, m: Int, n: Int, k: Int, path: String, format: Format,
                    timing: Measurement, flops: Double, bytes: Double, weightBytes: Double?, baseline: Measurement,
                    _ context: Context) -> Row {
        let seconds = kernelTime(timing) / 1e3
        let tops = flops / seconds / 1e12
        let rate = bytes / seconds / 1e9
        let weightRate = weightBytes.map { $0 / seconds / 1e9 }
        return Row(model: model, layer: layer, m: m, n: n, k: k, path: path, format: format, timing: timing,
                   teraOpsPerSecond: tops, fractionOfPeak: format.peak(context.peaks).map { tops / $0 },
                   bytes: bytes, gigabytesPerSecond: rate, fractionOfCopy: rate / context.copy,
                   weightGigabytesPerSecond: weightRate, weightFractionOfCopy: weightRate.map { $0 / context.copy },
                   ratioToBF16: baseline.milliseconds / timing.milliseconds,
                   graphRatioToBF16: timing.graphMilliseconds.flatMap { g in baseline.graphMilliseconds.map { $0 / g } })
    }

    /// Bytes of a weight in each format: codes plus scales.
    static func weightBytes(_ format: Format, n: Int, k: Int, blockSize: Int) -> Double {
        switch format {
        case .bf16: return Double(2 * n * k)
        case .int8: return Double(n * k + 4 * ((n + blockSize - 1) / blockSize) * ((k + blockSize - 1) / blockSize))
        case .fp8: return Double(n * k + 4)
        }
    }

    /// Every path of one linear shape.
    static func measureLinear(_ shape: Shape, _ context: Context) throws -> [Row] {
        let device = context.device
        let (m, n, k) = (shape.m, shape.n, shape.k)
        let x = try CUDABackend.randomNormal([m, k], dtype: .bfloat16, seed: 1, on: device)
        // Decode shapes stream their weights: copies worth at least 4 L2 caches (200 MB of INT8
        // codes), 20 back-to-back calls per timing so launch gaps are amortised.
        let copies = shape.decode ? max(2, (200 << 20) / (n * k) + 1) : 1
        let calls = shape.decode ? 20 : 1
        let weights = try (0..<copies).map { copy in
            try CUDABackend.randomNormal([n, k], standardDeviation: 0.02, dtype: .bfloat16, seed: UInt64(2 + copy),
                                         on: device)
        }
        let weightLayout = try BlockWiseINT8Layout.weight(blockSize: context.blockSize)
        let int8 = try weights.map { try QuantizedTensor.fromFloat($0, layout: weightLayout) }
        let fp8 = try weights.map { try QuantizedTensor.fromFloat($0, layout: TensorCoreFP8Layout.dynamic) }
        func rotating(_ name: String, _ body: @escaping (Int) throws -> Void) -> TimedPath {
            TimedPath(name: name, calls: calls) { for call in 0..<calls { try body(call % copies) } }
        }
        var paths: [(TimedPath, Format)] = [
            (rotating("bf16 cuBLASLt") { _ = try linear(x, weights[$0]) }, .bf16),
            (rotating("INT8 W8A8 (+act quant)") { _ = try linear(x, int8[$0]) }, .int8),
            (rotating("FP8 cuBLASLt (+input quant)") { _ = try linear(x, fp8[$0]) }, .fp8),
        ]
        if shape.decode {
            let weightOnly = LinearOptions(floatInput: .dequantizeWeight)
            paths.append((rotating("INT8 weight-only") { _ = try linear(x, int8[$0], options: weightOnly) }, .int8))
            paths.append((rotating("FP8 weight-only") { _ = try linear(x, fp8[$0], options: weightOnly) }, .fp8))
        }
        let timings = try measure(paths.map(\.0), device: device, rounds: context.rounds, repeats: context.repeats)
        let flops = 2.0 * Double(m) * Double(n) * Double(k)
        return zip(paths, timings).map { path, timing in
            let weight = weightBytes(path.1, n: n, k: k, blockSize: context.blockSize)
            return row(model: shape.model, layer: shape.layer, m: m, n: n, k: k, path: path.0.name, format: path.1,
                       timing: timing, flops: flops, bytes: Double(2 * m * k + 2 * m * n) + weight,
                       weightBytes: shape.decode ? weight : nil, baseline: timings[0], context)
        }
    }

    /// Device-to-device copy of a 54560 x 3072 bf16 tensor (335 MB), GB/s counting read + write.
    static func measureCopy(device: Device, rounds: Int, repeats: Int) throws -> Double {
        let x = try CUDABackend.randomNormal([54560, 3072], dtype: .bfloat16, seed: 9, on: device)
        let timing = try measure([TimedPath(name: "copy", calls: 1) { _ = try Tensor.copying(x) }], device: device,
                                 rounds: rounds, repeats: repeats)[0]
        return Double(4 * x.count) / (kernelTime(timing) / 1e3) / 1e9
    }
}
