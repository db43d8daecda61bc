import Foundation
import QuantizedLinear
#if canImport(Glibc)
import Glibc
#endif

/// `qlinear bench`: the reference PR's table on this CPU, every path against float32 OpenBLAS
/// measured in the same run.
enum Benchmark {
    static let command = Subcommand(
        name: "bench",
        summary: "time INT8/FP8 linear paths against float32 OpenBLAS on the WAN2.2 shapes (M = 1024 and 1)",
        discussion: """
            For each WAN2.2 layer of the reference PR (SPEC section 6: N and K of the model; M = 1024 and
            M = 1 on a CPU) times y = x W^T on: float32 OpenBLAS (sgemv at M = 1), the reference's CPU
            path (dequantize the whole INT8 weight, then float32 GEMM), our INT8 W8A8 (activation
            quantization included), INT8 weight-only, FP8 W8A8 and FP8 weight-only. Prints the median
            time, GFLOP/s, speed-up against float32 from the same run, the peak memory the path adds
            (resident-set high-water mark above the level before the call, large allocations returned
            to the system), and the relative L2 error against a float64 product on sampled rows.
            The timed calls reuse tensor buffers through the library's buffer pool, as a program
            calling a layer repeatedly does (and as ONNX Runtime's arena does); --fresh-buffers
            times every call on freshly mapped memory instead (each large output then pays its
            first-touch page faults). The peak memory is always measured on fresh memory.
            At M = 1 every path rotates among weight copies of more than 1 GB together, so the weights
            stream from memory; the machine's read and copy bandwidth are measured in the same run,
            and so are quantize and dequantize.
            """,
        options: [
            .flag("quick", "two shapes, fewer repetitions (a smoke run)"),
            .flag("fresh-buffers", "time every call on freshly mapped buffers (the buffer pool off)"),
            .text("json", placeholder: "FILE", "also write every measurement as JSON to FILE"),
            .text("m", placeholder: "LIST", validate: { _ = try parseCounts($0) },
                  "the M values to time, comma-separated (default: the large M, then 1)"),
            .text("shapes", placeholder: "LIST", validate: { _ = try parseShapes($0) },
                  "N x K shapes instead of the WAN2.2 layers, comma-separated (e.g. 3072x3072,14336x3072)"),
            .integer("rows", placeholder: "M", default: 1024, in: 1...65_536, "the large M"),
            .integer("repeats", placeholder: "R", in: 1...1000,
                     "timed repetitions at the large M (default 5, 2 with --quick; 4x as many at M = 1)"),
            .choice("cpu-path", ["best"] + CPUKernelPath.allCases.map(\.rawValue), default: "best",
                    "the quantized CPU kernels to time: the fastest this CPU runs, or one it supports (to see "
                        + "what a CPU without AVX-512 gets, e.g. avx2)"),
        ],
        run: run)

    struct Shape {
        let name: String
        let n: Int
        let k: Int
    }

    static let shapes = [
        Shape(name: "5B first layer", n: 18432, k: 3072),
        Shape(name: "5B attention", n: 3072, k: 3072),
        Shape(name: "5B MLP up", n: 14336, k: 3072),
        Shape(name: "5B MLP down", n: 3072, k: 14336),
        Shape(name: "14B first layer", n: 30720, k: 5120),
        Shape(name: "14B attention", n: 5120, k: 5120),
        Shape(name: "14B MLP up", n: 13824, k: 5120),
        Shape(name: "14B MLP down", n: 5120, k: 13824),
    ]

    struct Measurement: Codable {
        let shape: String
        let m: Int
        let n: Int
        let k: Int
        let path: String
        let medianSeconds: Double
        let gflops: Double
        let speedupVsFloat32: Double
        let peakBytes: Int
        let relativeError: Double?
    }

    struct Throughput: Codable {
        let kernel: String
        let elements: Int
        let bytesMoved: Int
        let medianSeconds: Double
        let gigabytesPerSecond: Double
        let fractionOfCopyBandwidth: Double
    }

    struct Report: Codable {
        let date: String
        let machine: String
        let openBLAS: String
        let cpuKernelPath: String
        let threads: Int
        /// Whether the timed linear calls reused pooled buffers (false with `--fresh-buffers`).
        let buffersReused: Bool
        let readBandwidthGBs: Double
        let copyBandwidthGBs: Double
        let linear: [Measurement]
        let quantization: [Throughput]
    }

    /// One timed path: the op for weight copy `i` (M = 1 rotates among copies).
    struct Path {
        let name: String
        let run: (Int) throws -> Tensor
    }

    /// glibc's `mallopt(M_MMAP_THRESHOLD, bytes)`: allocations of at least `bytes` are mapped
    /// fresh and returned to the system on free.
    static func setMmapThreshold(_ bytes: Int32) { mallopt(-3, bytes) }

    /// glibc's `mallopt(M_TRIM_THRESHOLD, bytes)`: free memory at the top of the heap beyond this
    /// is returned to the system (and faulted in again by the next allocation).
    static func setTrimThreshold(_ bytes: Int32) { mallopt(-1, bytes) }

    /// glibc's `mallopt`, looked up at run time (Glibc's Swift module does not export malloc.h);
    /// nothing happens on other C libraries.
    static func mallopt(_ option: Int32, _ value: Int32) {
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        _ = unsafeBitCast(symbol, to: Mallopt.self)(option, value)
    }

    static func run(_ arguments: ParsedArguments) throws {
        guard let name = arguments.string("cpu-path"), let path = CPUKernelPath(rawValue: name) else {
            return try runOnCurrentPath(arguments)
        }
        try CPUKernelPath.withPath(path) { try runOnCurrentPath(arguments) }
    }

    static func runOnCurrentPath(_ arguments: ParsedArguments) throws {
        let quick = arguments.flag("quick")
        let largeM = arguments.int("rows")
        let repeats = arguments.int("repeats", default: quick ? 2 : 5)
        registerBuiltinLayouts()
        let machine = machineDescription()
        print("qlinear bench: y = x W^T; \(machine)")
        print("\(OpenBLAS.shared.summary); \(OpenBLAS.shared.threadCount) OpenBLAS threads")
        print("CPU features: \(CPUFeatures.current); quantized kernels: \(CPUKernelPath.current) path, "
            + "\(CPUKernels.threadCount) threads")
        // Blocks of 1 MB and more are mapped fresh and returned on free, so the resident-set
        // high-water mark shows what each call allocates. The tensor buffer pool is off for the same
        // reason (with it, a call's output would reuse the last call's pages) except while the
        // linear paths' timed calls run (``withBufferPool``), unless --fresh-buffers.
        let poolBytes = arguments.flag("fresh-buffers") ? 0 : HostBufferPool.shared.capacityBytes
        setMmapThreshold(1 << 20)
        HostBufferPool.shared.capacityBytes = 0
        let (readBandwidth, copyBandwidth) = try measureBandwidth(quick: quick)
        print(String(format: "memory bandwidth (1 GB buffers): read %.1f GB/s, copy %.1f GB/s (read + write)",
                     readBandwidth / 1e9, copyBandwidth / 1e9))
        let chosen = try arguments.string("shapes").map(parseShapes) ?? (quick ? [shapes[1], shapes[5]] : shapes)
        let mValues = try arguments.string("m").map(parseCounts) ?? [largeM, 1]
        var measurements: [Measurement] = []
        for m in mValues {
            print("")
            print("M = \(m)" + (m == 1 ? " (weights rotate among copies > 1 GB: streaming from memory)" : ""))
            print(pad("layer", 16) + pad("N x K", 13) + pad("path", 26) + pad("median", 11) + pad("GFLOP/s", 9)
                + pad("vs fp32", 9) + pad("peak mem", 11) + "rel. err")
            for (index, shape) in chosen.enumerated() {
                let rows = try measureShape(shape, m: m, repeats: m == 1 ? repeats * 4 : repeats, poolBytes: poolBytes,
                                            seed: UInt64(index * 10 + (m == 1 ? 5 : 0)))
                measurements += rows
                for row in rows {
                    let error = row.relativeError.map { String(format: "%.2e", $0) } ?? "-"
                    print(pad(row.path == rows[0].path ? shape.name : "", 16)
                        + pad(row.path == rows[0].path ? "\(shape.n)x\(shape.k)" : "", 13) + pad(row.path, 26)
                        + pad(String(format: "%.2f ms", row.medianSeconds * 1000), 11)
                        + pad(String(format: "%.1f", row.gflops), 9)
                        + pad(String(format: "%.2fx", row.speedupVsFloat32), 9)
                        + pad(megabytes(row.peakBytes), 11) + error)
                }
            }
        }
        print("")
        let quantization = try measureQuantization(copyBandwidth: copyBandwidth, quick: quick)
        print(pad("kernel", 40) + pad("median", 11) + pad("GB/s", 8) + "of copy bandwidth")
        for row in quantization {
            print(pad(row.kernel, 40) + pad(String(format: "%.2f ms", row.medianSeconds * 1000), 11)
                + pad(String(format: "%.1f", row.gigabytesPerSecond), 8)
                + String(format: "%.0f%%", row.fractionOfCopyBandwidth * 100))
        }
        print("""

            GFLOP/s = 2 M N K / time (GOP/s for the integer paths); vs fp32 = float32 time / path time, same run;
            peak mem = resident-set high-water mark above the level before the call (output included);
            rel. err = ||y - y64|| / ||y64|| on sampled rows, y64 the float64 product of the unquantized x and W.
            """)
        if let file = arguments.string("json") {
            let report = Report(date: ISO8601DateFormatter().string(from: Date()), machine: machine,
                                openBLAS: OpenBLAS.shared.summary, cpuKernelPath: CPUKernelPath.current.rawValue,
                                threads: CPUKernels.threadCount, buffersReused: poolBytes > 0,
                                readBandwidthGBs: readBandwidth / 1e9,
                                copyBandwidthGBs: copyBandwidth / 1e9, linear: measurements,
                                quantization: quantization)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(report).write(to: URL(fileURLWithPath: file))
            print("wrote \(file)")
        }
    }

    /// `1,64,1024` -> [1, 64, 1024].
    static func parseCounts(_ text: String) throws -> [Int] {
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw TensorError(.invalidArgument, "expects positive integers separated by commas "
                + "(e.g. --m 1,64,1024), got `\(text)`")
        }
        return values.map { $0! }
    }

    /// `3072x3072,14336x3072` -> shapes named by their N x K.
    static func parseShapes(_ text: String) throws -> [Shape] {
        try text.split(separator: ",").map { item in
            let sides = item.lowercased().split(separator: "x").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard sides.count == 2, let n = sides[0], let k = sides[1], n > 0, k > 0 else {
                throw TensorError(.invalidArgument, "expects N x K pairs separated by commas "
                    + "(e.g. --shapes 3072x3072,14336x3072), got `\(item)`")
            }
            return Shape(name: "\(n)x\(k)", n: n, k: k)
        }
    }

    // MARK: Linear

    /// - Parameter poolBytes: the buffer pool's bound during the timed calls (0: fresh buffers).
    static func measureShape(_ shape: Shape, m: Int, repeats: Int, poolBytes: Int, seed: UInt64) throws
        -> [Measurement]
    {
        let (n, k) = (shape.n, shape.k)
        let x = try Tensor.randomNormal([m, k], seed: seed)
        let w = try Tensor.randomNormal([n, k], standardDeviation: 1 / Float(k).squareRoot(), seed: seed + 1)
        let int8Layout = try BlockWiseINT8Layout.weight(blockSize: 128)
        let qInt8 = try QuantizedTensor.fromFloat(w, layout: int8Layout)
        let qFP8 = try QuantizedTensor.fromFloat(w, layout: TensorCoreFP8Layout.dynamic)
        // At M = 1 each path cycles through copies of its weight totalling more than 1 GB.
        func copies<T>(_ value: T, bytes: Int, clone: (T) throws -> T) throws -> [T] {
            let count = m == 1 ? max(2, (1 << 30) / bytes + 1) : 1
            return try [value] + (1..<count).map { _ in try clone(value) }
        }
        let floatWeights = try copies(w, bytes: n * k * 4) { try Tensor.copying($0) }
        let int8Weights = try copies(qInt8, bytes: qInt8.byteCount) { try $0.clone() }
        let fp8Weights = try copies(qFP8, bytes: qFP8.byteCount) { try $0.clone() }
        let int8Codes = try qInt8.data.elements(as: Int8.self)
        let int8Scales = try qInt8.scale.floats()
        let weightOnly = LinearOptions(floatInput: .dequantizeWeight)
        let paths = [
            Path(name: "float32 OpenBLAS" + (m == 1 ? " sgemv" : " sgemm")) { i in
                try DenseOps.linear(x, floatWeights[i % floatWeights.count])
            },
            Path(name: "reference (dequant+fp32)") { _ in
                let dense = try Tensor(BlockWiseINT8Reference.dequantize(int8Codes, scales: int8Scales, shape: [n, k],
                                                                         layout: int8Layout), shape: [n, k])
                return try DenseOps.linear(x, dense)
            },
            Path(name: "INT8 W8A8") { i in try linear(x, int8Weights[i % int8Weights.count]).dequantized() },
            Path(name: "INT8 weight-only") { i in
                try linear(x, int8Weights[i % int8Weights.count], options: weightOnly).dequantized()
            },
            Path(name: "FP8 W8A8") { i in try linear(x, fp8Weights[i % fp8Weights.count]).dequantized() },
            Path(name: "FP8 weight-only") { i in
                try linear(x, fp8Weights[i % fp8Weights.count], options: weightOnly).dequantized()
            },
        ]
        let sampleRows = Array(Set([0, m / 3, m / 2, m - 1])).sorted()
        let exact = try float64Rows(x: x, w: w, rows: sampleRows)
        var results: [Measurement] = []
        var floatTime = 0.0
        for path in paths {
            // The reference path is the same at M = 1 with or without rotation (it rebuilds the
            // weight each call): fewer repetitions keep the run short.
            let count = path.name.hasPrefix("reference") ? max(2, repeats / 4) : repeats
            let (output, time) = try withBufferPool(bytes: poolBytes) { try timed(count, path.run) }
            if floatTime == 0 { floatTime = time }
            let peak = try peakBytes { _ = try path.run(0) }
            let values = try output.floats()
            let sampled = sampleRows.flatMap { row in values[row * n..<(row + 1) * n] }
            results.append(Measurement(
                shape: shape.name, m: m, n: n, k: k, path: path.name, medianSeconds: time,
                gflops: 2 * Double(m) * Double(n) * Double(k) / time / 1e9, speedupVsFloat32: floatTime / time,
                peakBytes: peak, relativeError: relativeError(sampled, exact)))
        }
        return results
    }

    /// Rows `rows` of x W^T in float64.
    static func float64Rows(x: Tensor, w: Tensor, rows: [Int]) throws -> [Double] {
        let (k, n) = (x.shape[1], w.shape[0])
        let xs = try x.floats()
        let ws = try w.floats()
        var result = [Double](repeating: 0, count: rows.count * n)
        result.withUnsafeMutableBufferPointer { out in
            xs.withUnsafeBufferPointer { xp in
                ws.withUnsafeBufferPointer { wp in
                    CPUKernels.parallelRanges(count: n, minimumPerThread: 64) { range in
                        for (index, row) in rows.enumerated() {
                            for column in range {
                                var sum = 0.0
                                for p in 0..<k { sum += Double(xp[row * k + p]) * Double(wp[column * k + p]) }
                                out[index * n + column] = sum
                            }
                        }
                    }
                }
            }
        }
        return result
    }

    static func relativeError(_ values: [Float], _ exact: [Double]) -> Double {
        var difference = 0.0
        var norm = 0.0
        for (value, reference) in zip(values, exact) {
            difference += (Double(value) - reference) * (Double(value) - reference)
            norm += reference * reference
        }
        return (difference / max(norm, .leastNormalMagnitude)).squareRoot()
    }

    // MARK: Bandwidth, quantize, dequantize

    /// Read bandwidth (a parallel vectorised max over 1 GB) and copy bandwidth (memcpy of 512 MB,
    /// counting bytes read plus bytes written), in bytes per second.
    static func measureBandwidth(quick: Bool) throws -> (read: Double, copy: Double) {
        let count = 1 << 28
        let source = try Tensor.randomNormal([1 << 16], seed: 99).floats()
        var big = [Float](repeating: 0, count: count)
        big.withUnsafeMutableBufferPointer { buffer in
            for start in stride(from: 0, to: count, by: source.count) {
                _ = UnsafeMutableBufferPointer(rebasing: buffer[start..<start + source.count]).update(from: source)
            }
        }
        let reads = try big.withUnsafeBufferPointer { buffer in
            try timed(quick ? 3 : 7) { _ in CPUKernels.maxMagnitude(buffer) }.1
        }
        let half = count / 2
        let copy = try big.withUnsafeMutableBufferPointer { buffer in
            let base = UnsafeMutableRawPointer(buffer.baseAddress!)
            return try timed(quick ? 3 : 7) { _ in memcpy(base, base + half * 4, half * 4) }.1
        }
        return (Double(count * 4) / reads, Double(half * 4 * 2) / copy)
    }

    /// Quantize and dequantize of a 2048 x 2048 weight (16 MB in float32; malloc reuses the output
    /// memory, so this is the kernels' own speed plus the output's zero-fill) and of a 5120 x 5120
    /// one (105 MB; every call maps fresh output pages, and first-touch page faults are part of
    /// the time).
    static func measureQuantization(copyBandwidth: Double, quick: Bool) throws -> [Throughput] {
        let repeats = quick ? 3 : 7
        var rows: [Throughput] = []
        for side in [2048, 5120] {
            // 2048: outputs reused from the heap (the kernels' own speed); 5120: mapped per call.
            setMmapThreshold(side == 2048 ? 32 << 20 : 1 << 20)
            setTrimThreshold(side == 2048 ? 256 << 20 : 128 << 10)
            defer {
                setMmapThreshold(1 << 20)
                setTrimThreshold(128 << 10)
            }
            let w = try Tensor.randomNormal([side, side], seed: 7)
            let int8 = try BlockWiseINT8Layout.weight(blockSize: 128)
            let elements = side * side
            func add(_ name: String, bytesPerElement: Int, _ body: () throws -> Void) throws {
                let time = try timed(repeats) { _ in try body() }.1
                let bytes = elements * bytesPerElement
                rows.append(Throughput(kernel: "\(name) \(side)x\(side)", elements: elements, bytesMoved: bytes,
                                       medianSeconds: time, gigabytesPerSecond: Double(bytes) / time / 1e9,
                                       fractionOfCopyBandwidth: Double(bytes) / time / copyBandwidth))
            }
            let qInt8 = try QuantizedTensor.fromFloat(w, layout: int8)
            let qFP8 = try QuantizedTensor.fromFloat(w, layout: TensorCoreFP8Layout.dynamic)
            // Bytes moved: float32 read + int8 written (5 per element); FP8 quantize reads twice.
            try add("INT8 quantize f32->i8", bytesPerElement: 5) { _ = try QuantizedTensor.fromFloat(w, layout: int8) }
            try add("INT8 dequantize i8->f32", bytesPerElement: 5) { _ = try qInt8.dequantize(to: .float32) }
            try add("FP8 quantize f32->e4m3", bytesPerElement: 9) {
                _ = try QuantizedTensor.fromFloat(w, layout: TensorCoreFP8Layout.dynamic)
            }
            try add("FP8 dequantize e4m3->f32", bytesPerElement: 5) { _ = try qFP8.dequantize(to: .float32) }
        }
        return rows
    }

    // MARK: Measurement helpers

    /// The median of `repeats` timed runs after one warm-up; the run index is passed to `body`.
    static func timed<R>(_ repeats: Int, _ body: (Int) throws -> R) throws -> (R, Double) {
        var result = try body(0)
        var times: [Double] = []
        for index in 0..<max(repeats, 1) {
            let start = DispatchTime.now().uptimeNanoseconds
            result = try body(index + 1)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return (result, times.sorted()[times.count / 2])
    }

    /// Runs `body` with the tensor buffer pool bounded by `bytes` (0: off), then turns it off again,
    /// which frees every buffer it kept: no later measurement starts with this one's pages.
    static func withBufferPool<R>(bytes: Int, _ body: () throws -> R) rethrows -> R {
        HostBufferPool.shared.capacityBytes = bytes
        defer { HostBufferPool.shared.capacityBytes = 0 }
        return try body()
    }

    /// Bytes of resident memory the call adds at its peak: the kernel's high-water mark (reset
    /// through /proc/self/clear_refs) minus the resident size before. 0 where /proc is missing.
    static func peakBytes(_ body: () throws -> Void) throws -> Int {
        func status(_ key: String) -> Int? {
            guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
            for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
                return line.split(separator: " ").compactMap { Int($0) }.first.map { $0 * 1024 }
            }
            return nil
        }
        let before = status("VmRSS")
        let reset = (try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)) != nil
        try body()
        guard reset, let before, let peak = status("VmHWM") else { return 0 }
        return max(0, peak - before)
    }

    static func machineDescription() -> String {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        return "\(model), \(ProcessInfo.processInfo.activeProcessorCount) cores"
    }

    static func megabytes(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1e6) }

    static func pad(_ text: String, _ width: Int) -> String {
        text.padding(toLength: width, withPad: " ", startingAt: 0)
    }
}
