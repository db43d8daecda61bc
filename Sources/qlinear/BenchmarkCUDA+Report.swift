import Foundation
import QuantizedLinear

extension BenchmarkCUDA {
    /// Dense tensor-core peaks of a GPU, in TFLOP/s (bf16) and TOP/s (int8 / fp8), from the vendor's
    /// datasheet for the SXM parts this project is measured on; `nil` for other GPUs.
    struct Peaks: Encodable {
        let bf16: Double
        let int8: Double
        let fp8: Double

        static func forDevice(named name: String) -> Peaks? {
            name.contains("H200") || name.contains("H100") ? Peaks(bf16: 989, int8: 1979, fp8: 1979) : nil
        }
    }

    /// The number format of a path, which decides the peak it is compared with.
    enum Format: String, Encodable {
        case bf16, int8, fp8

        func peak(_ peaks: Peaks?) -> Double? {
            guard let peaks else { return nil }
            switch self {
            case .bf16: return peaks.bf16
            case .int8: return peaks.int8
            case .fp8: return peaks.fp8
            }
        }
    }

    /// One timed linear (or MLP block) path.
    struct Row: Encodable {
        let model: String
        let layer: String
        let m: Int
        let n: Int
        let k: Int
        let path: String
        let format: Format
        let timing: Measurement
        /// `flops / graph time` (eager time when no graph): 2 M N K per linear.
        let teraOpsPerSecond: Double
        /// Of the format's dense peak (``Peaks``).
        let fractionOfPeak: Double?
        /// The fewest bytes the path must move: input read once (bf16), weights and scales read once,
        /// output written once (bf16).
        let bytes: Double
        let gigabytesPerSecond: Double
        let fractionOfCopy: Double
        /// Weight bytes (codes + scales) per second, for decode shapes.
        let weightGigabytesPerSecond: Double?
        let weightFractionOfCopy: Double?
        /// bf16's time over this path's (eager, per call), measured in the same run.
        let ratioToBF16: Double
        /// The same ratio from graph replays (kernels only).
        let graphRatioToBF16: Double?
    }

    /// One memory-bound kernel against the measured copy.
    struct Bandwidth: Encodable {
        let kernel: String
        let timing: Measurement
        let bytes: Double
        let gigabytesPerSecond: Double
        let fractionOfCopy: Double
    }

    struct Report: Encodable {
        let device: String
        let peaks: Peaks?
        let copyGigabytesPerSecond: Double
        let blockSize: Int
        let rounds: Int
        let repeats: Int
        let linear: [Row]
        let mlpBlocks: [Row]
        let bandwidth: [Bandwidth]
        /// cuBLASLt's algorithm per GEMM description (fixed for the process: see BLASLtContext).
        let cublasLtAlgorithms: [String: String]
    }

    /// The time the figures are computed from: graph replays where captured (the kernels alone),
    /// else eager calls.
    static func kernelTime(_ timing: Measurement) -> Double { timing.graphMilliseconds ?? timing.milliseconds }

    static func format(_ row: Row) -> String {
        let label = "\(row.model) \(row.layer) \(row.m)x\(row.n)x\(row.k)"
        var line = label.padding(toLength: 42, withPad: " ", startingAt: 0)
            + row.path.padding(toLength: 30, withPad: " ", startingAt: 0)
            + String(format: "%8.3f ms (graph %@, host %7.3f, spread %4.1f%%) %7.1f TOP/s",
                     row.timing.milliseconds, row.timing.graphMilliseconds.map { String(format: "%8.3f", $0) } ?? "    -   ",
                     row.timing.hostMilliseconds, 100 * row.timing.spread, row.teraOpsPerSecond)
        if let peak = row.fractionOfPeak { line += String(format: " %4.0f%% peak", 100 * peak) }
        line += String(format: " %5.2fx bf16", row.ratioToBF16)
        if let graph = row.graphRatioToBF16 { line += String(format: " (graph %5.2fx)", graph) }
        if let weights = row.weightGigabytesPerSecond, let fraction = row.weightFractionOfCopy {
            line += String(format: "  weights %5.0f GB/s = %4.2f of copy", weights, fraction)
        }
        return line
    }

    static func format(_ entry: Bandwidth) -> String {
        entry.kernel.padding(toLength: 52, withPad: " ", startingAt: 0)
            + String(format: "%8.3f ms (graph %@, spread %4.1f%%) %7.0f GB/s %5.2f of copy", entry.timing.milliseconds,
                     entry.timing.graphMilliseconds.map { String(format: "%8.3f", $0) } ?? "    -   ",
                     100 * entry.timing.spread, entry.gigabytesPerSecond, entry.fractionOfCopy)
    }
}
