import Foundation
import QLTensor

/// Times work queued on a CUDA device with CUDA events (device time between two points of the
/// stream, so host-side gaps between launches count only when they leave the GPU idle).
package enum CUDATimer {
    /// Runs `body` `warmup` times untimed, then `repeats` times between event pairs.
    /// - Returns: each timed run's milliseconds, in order.
    package static func measure(on device: Device, warmup: Int = 3, repeats: Int = 10,
                                _ body: () throws -> Void) throws -> [Double] {
        let gpu = try CUDABackend.cudaDevice(device)
        let driver = gpu.driver
        try gpu.makeCurrent()
        for _ in 0..<warmup { try body() }
        var events: [(CUHandle?, CUHandle?)] = []
        defer { for (a, b) in events { _ = driver.eventDestroy(a); _ = driver.eventDestroy(b) } }
        for _ in 0..<repeats {
            var start: CUHandle?
            var stop: CUHandle?
            try driver.check(driver.eventCreate(&start, 0), "cuEventCreate")
            try driver.check(driver.eventCreate(&stop, 0), "cuEventCreate")
            events.append((start, stop))
            try driver.check(driver.eventRecord(start, gpu.stream), "cuEventRecord")
            try body()
            try gpu.makeCurrent()
            try driver.check(driver.eventRecord(stop, gpu.stream), "cuEventRecord")
        }
        return try events.map { start, stop in
            try driver.check(driver.eventSynchronize(stop), "cuEventSynchronize")
            var milliseconds: Float = 0
            try driver.check(driver.eventElapsedTime(&milliseconds, start, stop), "cuEventElapsedTime")
            return Double(milliseconds)
        }
    }

    /// The median of `values`.
    package static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2]
            : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

extension CUDABackend {
    /// A tensor of normal samples made on the device (a counter-based hash and Box-Muller), for
    /// benchmarks whose inputs are too large to draw on the host.
    package static func randomNormal(_ shape: [Int], standardDeviation: Float = 1, dtype: DType = .float32,
                                     seed: UInt64, on device: Device) throws -> Tensor {
        let gpu = try cudaDevice(device)
        let result = try GPU.empty(shape, dtype, on: gpu)
        let count = result.count
        try GPU.launchElementwise(gpu, "random_normal", count: count, defines: ["OUT_DT": dtype.kernelCode],
                                  [try GPU(result).argument, .int(count), .int64(Int64(bitPattern: seed)),
                                   .float(standardDeviation)])
        return result
    }
}
