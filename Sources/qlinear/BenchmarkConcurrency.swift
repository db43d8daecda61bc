import Foundation
import QuantizedLinear

/// `qlinear bench-concurrency`: throughput of one linear shape with 1, 2 and 8 concurrent callers.
enum BenchmarkConcurrency {
    static let command = Subcommand(
        name: "bench-concurrency",
        summary: "throughput of linear with 1, 2 and 8 concurrent callers (threads and Swift tasks)",
        discussion: """
            Runs C calls of y = x W^T, x (M, K), W (N, K) for float32 (OpenBLAS), INT8 W8A8 and INT8
            weight-only, shared by 1, 2 and 8 callers: plain threads, then tasks of one Swift TaskGroup.
            Prints calls per second (best of R interleaved rounds), the ratio of that to one caller's
            best, the median, lowest and highest of the rounds' own ratios (each round times every
            caller count within seconds, so its ratio is the least disturbed by a change of the
            machine's speed), and the share of the cores that ComputeSlots had granted during the
            best round (below 100 %: time between one caller's op and the next one's, or outside any
            op). ComputeSlots keeps the compute
            threads at one per core, so more callers should not lower the throughput.
            """,
        options: [
            .integer("rows", placeholder: "M", default: 64, in: 1...16_384, "rows M of the activation"),
            .integer("n", placeholder: "N", default: 3072, in: 1...65_536, "output features N"),
            .integer("k", placeholder: "K", default: 3072, in: 1...65_536, "input features K"),
            .integer("calls", placeholder: "C", default: 48, in: 1...100_000, "calls per run"),
            .integer("repeats", placeholder: "R", default: 3, in: 1...1000, "interleaved rounds (the best and the rounds' ratios are shown)"),
            .text("callers", placeholder: "LIST", default: "1,2,8", validate: { _ = try parseCallers($0) },
                  "caller counts, comma-separated; 1 is always measured (the ratios' base)"),
            .choice("path", ["all", "float32", "w8a8", "weight-only"], default: "all", "the linear paths to run"),
            .choice("mode", ["both", "threads", "tasks"], default: "both", "plain threads, Swift tasks or both"),
        ],
        run: run)

    static func run(_ arguments: ParsedArguments) throws {
        let m = arguments.int("rows")
        let n = arguments.int("n")
        let k = arguments.int("k")
        let calls = arguments.int("calls")
        let repeats = arguments.int("repeats")
        let callerCounts = try parseCallers(arguments.string("callers") ?? "1,2,8")
        let chosenPath = arguments.string("path") ?? "all"
        let modes = arguments.string("mode").map { $0 == "both" ? ["threads", "tasks"] : [$0] } ?? ["threads", "tasks"]
        registerBuiltinLayouts()
        let x = try Tensor.randomNormal([m, k], seed: 1)
        let w = try Tensor.randomNormal([n, k], standardDeviation: 1 / Float(k).squareRoot(), seed: 2)
        let q = try QuantizedTensor.fromFloat(w, layout: BlockWiseINT8Layout.weight(blockSize: 128))
        let weightOnly = LinearOptions(floatInput: .dequantizeWeight)
        let allPaths: [(option: String, name: String, call: @Sendable () throws -> Void)] = [
            ("float32", "float32 (OpenBLAS)", { _ = try linear(x, w) }),
            ("w8a8", "INT8 W8A8", { _ = try linear(x, q) }),
            ("weight-only", "INT8 weight-only", { _ = try linear(x, q, options: weightOnly) }),
        ]
        let paths = allPaths.filter { chosenPath == "all" || $0.option == chosenPath }
        print("qlinear bench-concurrency: \(calls) calls of \(m) x \(n) x \(k) per run, best of \(repeats); "
            + "\(ProcessInfo.processInfo.activeProcessorCount) cores; \(OpenBLAS.shared.summary)")
        print(pad("path", 22) + pad("callers", 16) + pad("calls/s", 10) + pad("vs 1 caller", 13)
            + pad("per round [min, max]", 24) + "cores held")
        for (_, name, call) in paths {
            try call()   // warm-up
            for mode in modes {
                // Rounds of 1, 2 and 8 callers, interleaved, the order reversed every other round
                // (1 2 8, 8 2 1, ...), so that a drift of the machine's speed (other processes, clock)
                // reaches every caller count alike; each round's ratios compare runs seconds apart.
                var best = [Int: (rate: Double, busy: Double)]()
                var ratios = [Int: [Double]]()
                for round in 0..<repeats {
                    var rates = [Int: Double]()
                    for callers in round % 2 == 0 ? callerCounts : callerCounts.reversed() {
                        let held = ComputeSlots.shared.heldSlotSeconds
                        let seconds = mode == "threads" ? try threads(callers, calls, call) : try tasks(callers, calls, call)
                        let busy = (ComputeSlots.shared.heldSlotSeconds - held)
                            / (Double(ComputeSlots.shared.count) * seconds)
                        let rate = Double(calls) / seconds
                        rates[callers] = rate
                        if rate > best[callers]?.rate ?? 0 { best[callers] = (rate, busy) }
                    }
                    for callers in callerCounts { ratios[callers, default: []].append(rates[callers]! / rates[1]!) }
                }
                let single = best[1]?.rate ?? 1
                for callers in callerCounts {
                    let (rate, busy) = best[callers] ?? (0, 0)
                    let paired = (ratios[callers] ?? []).sorted()
                    print(pad(name, 22) + pad("\(callers) \(mode)", 16) + pad(String(format: "%.1f", rate), 10)
                        + pad(String(format: "%.2fx", rate / single), 13)
                        + pad(String(format: "%.2fx [%.2f, %.2f]", median(paired), paired.first ?? 0,
                                     paired.last ?? 0), 24)
                        + String(format: "%.0f%%", 100 * busy))
                }
            }
        }
    }

    /// The middle value of `sorted` (the mean of the two middle ones for an even count; 0 when empty).
    static func median(_ sorted: [Double]) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    /// `2,8` -> [1, 2, 8]: the counts in increasing order, 1 always first.
    static func parseCallers(_ text: String) throws -> [Int] {
        let counts = try Benchmark.parseCounts(text)
        guard counts.allSatisfy({ $0 <= 1024 }) else {
            throw TensorError(.invalidArgument, "--callers: at most 1024 callers, got `\(text)`")
        }
        return Array(Set(counts + [1])).sorted()
    }

    /// Seconds for `calls` calls shared by `callers` plain threads.
    static func threads(_ callers: Int, _ calls: Int, _ call: @escaping @Sendable () throws -> Void) throws -> Double {
        let failure = FailureBox()
        let group = DispatchGroup()
        let start = DispatchTime.now().uptimeNanoseconds
        for caller in 0..<callers {
            group.enter()
            let thread = Thread {
                for _ in stride(from: caller, to: calls, by: callers) {
                    do { try call() } catch { failure.record(error) }
                }
                group.leave()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        group.wait()
        if let error = failure.error { throw error }
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Seconds for `calls` calls shared by `callers` tasks of one TaskGroup.
    static func tasks(_ callers: Int, _ calls: Int, _ call: @escaping @Sendable () throws -> Void) throws -> Double {
        let result = ResultBox()
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            let start = DispatchTime.now().uptimeNanoseconds
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for caller in 0..<callers {
                        group.addTask { for _ in stride(from: caller, to: calls, by: callers) { try call() } }
                    }
                    try await group.waitForAll()
                }
                result.set(.success(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
            } catch {
                result.set(.failure(error))
            }
            done.signal()
        }
        done.wait()
        return try result.get()
    }

    static func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }
}

private final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var first: Error?
    func record(_ error: Error) { lock.withLock { if first == nil { first = error } } }
    var error: Error? { lock.withLock { first } }
}

private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Result<Double, Error> = .success(0)
    func set(_ result: Result<Double, Error>) { lock.withLock { value = result } }
    func get() throws -> Double { try lock.withLock { value }.get() }
}
