import Foundation
import QuantizedLinear

extension BenchmarkCUDA {
    /// One path's timing: eager calls timed with CUDA events in `rounds` rounds (interleaved with the
    /// other paths of the same shape), the same calls replayed from a CUDA graph, and the host's
    /// enqueue time.
    struct Measurement: Encodable {
        /// Median device time per call of eager calls, over every round (what a caller sees).
        let milliseconds: Double
        /// Median device time per call of graph replays: the kernels alone, without host launch gaps;
        /// `nil` when the calls could not be captured.
        let graphMilliseconds: Double?
        /// Median host time to enqueue one call (wall clock). Close to `milliseconds`: launch bound.
        let hostMilliseconds: Double
        /// `max / min - 1` of the rounds' medians: the spread of this path inside one run.
        let spread: Double
        /// Each round's median per call.
        let rounds: [Double]
    }

    /// A path to time: `body` makes `calls` calls (rotating weights for decode shapes).
    struct TimedPath {
        let name: String
        let calls: Int
        let body: () throws -> Void
    }

    /// Times every path in `rounds` interleaved rounds of `repeats` eager repeats each (after a
    /// warm-up), then once as graph replays; per-call figures (divided by each path's `calls`).
    static func measure(_ paths: [TimedPath], device: Device, rounds: Int, repeats: Int) throws -> [Measurement] {
        var samples = [[Double]](repeating: [], count: paths.count)
        var hosts = [[Double]](repeating: [], count: paths.count)
        var roundMedians = [[Double]](repeating: [], count: paths.count)
        for round in 0..<rounds {
            for (index, path) in paths.enumerated() {
                let timing = try FallbackPolicy.withPolicy(.fail) {
                    try CUDATimer.timing(on: device, warmup: round == 0 ? 3 : 1, repeats: repeats, path.body)
                }
                let perCall = timing.device.map { $0 / Double(path.calls) }
                samples[index] += perCall
                hosts[index] += timing.host.map { $0 / Double(path.calls) }
                roundMedians[index].append(CUDATimer.median(perCall))
            }
        }
        return try paths.enumerated().map { index, path in
            let graph: Double?
            do {
                graph = CUDATimer.median(try FallbackPolicy.withPolicy(.fail) {
                    try CUDATimer.measureGraph(on: device, repeats: repeats, path.body)
                }) / Double(path.calls)
            } catch let error as TensorError {
                FileHandle.standardError.write(Data("bench-cuda: \(path.name) not captured: \(error)\n".utf8))
                graph = nil
            }
            let medians = roundMedians[index]
            return Measurement(milliseconds: CUDATimer.median(samples[index]), graphMilliseconds: graph,
                               hostMilliseconds: CUDATimer.median(hosts[index]),
                               spread: (medians.max() ?? .nan) / (medians.min() ?? .nan) - 1, rounds: medians)
        }
    }
}
