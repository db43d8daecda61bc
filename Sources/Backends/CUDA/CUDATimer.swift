import Foundation
import QLTensor

/// Times work queued on a CUDA device with CUDA events (device time between two points of the
/// stream, so host-side gaps between launches count only when they leave the GPU idle).
package enum CUDATimer {
    /// One measurement: per timed repeat, the device time between its events and the host time the
    /// calls took to enqueue (wall clock, no synchronisation inside).
    package struct Timing: Sendable {
        package var device: [Double]
        package var host: [Double]
    }

    /// Runs `body` `warmup` times untimed, then `repeats` times between event pairs.
    /// - Returns: each timed run's milliseconds, in order.
    package static func measure(on device: Device, warmup: Int = 3, repeats: Int = 10,
                               _ body: () throws -> Void) throws -> [Double] {
        try timing(on: device, warmup: warmup, repeats: repeats, body).device
    }

    /// ``measure(on:warmup:repeats:_:)`` plus the host's enqueue time of each repeat: when the host
    /// time reaches the device time, the device waited for the host (the call is launch bound).
    package static func timing(on device: Device, warmup: Int = 3, repeats: Int = 10,
                              _ body: () throws -> Void) throws -> Timing {
        let gpu = try CUDABackend.cudaDevice(device)
        let driver = gpu.driver
        try gpu.makeCurrent()
        for _ in 0..<warmup { try body() }
        var events: [(CUHandle?, CUHandle?)] = []
        defer { for (a, b) in events { _ = driver.eventDestroy(a); _ = driver.eventDestroy(b) } }
        var host: [Double] = []
        for _ in 0..<repeats {
            var start: CUHandle?
            var stop: CUHandle?
            try driver.check(driver.eventCreate(&start, 0), "cuEventCreate")
            try driver.check(driver.eventCreate(&stop, 0), "cuEventCreate")
            events.append((start, stop))
            try driver.check(driver.eventRecord(start, gpu.stream), "cuEventRecord")
            let began = DispatchTime.now().uptimeNanoseconds
            try body()
            host.append(Double(DispatchTime.now().uptimeNanoseconds - began) / 1e6)
            try gpu.makeCurrent()
            try driver.check(driver.eventRecord(stop, gpu.stream), "cuEventRecord")
        }
        return Timing(device: try elapsed(events, driver), host: host)
    }

    /// Device time of `body` free of host launch gaps: `body` runs once eagerly (compiling its
    /// kernels), is captured once into a CUDA graph (relaxed capture, so the caching allocator may
    /// still allocate), and the graph is replayed `warmup` times untimed and `repeats` times between
    /// event pairs. `body` must only queue work on the device's stream (no host reads).
    /// - Returns: each timed replay's milliseconds.
    /// - Throws: ``TensorError/Code/unsupportedOperation`` when the driver has no graph API, or the
    ///   capture's error (the capture is ended first).
    package static func measureGraph(on device: Device, warmup: Int = 2, repeats: Int = 10,
                                    _ body: () throws -> Void) throws -> [Double] {
        let gpu = try CUDABackend.cudaDevice(device)
        let driver = gpu.driver
        guard let graphs = driver.graphs else {
            throw TensorError(.unsupportedOperation, "this CUDA driver has no graph API (CUDA 11.4 or newer)")
        }
        try gpu.makeCurrent()
        try body()
        let relaxedCapture: Int32 = 2
        try driver.check(graphs.beginCapture(gpu.stream, relaxedCapture), "cuStreamBeginCapture")
        var graph: CUHandle?
        do {
            try body()
        } catch {
            _ = graphs.endCapture(gpu.stream, &graph)
            if graph != nil { _ = graphs.destroy(graph) }
            throw error
        }
        try driver.check(graphs.endCapture(gpu.stream, &graph), "cuStreamEndCapture")
        defer { _ = graphs.destroy(graph) }
        var executable: CUHandle?
        try driver.check(graphs.instantiate(&executable, graph, 0), "cuGraphInstantiateWithFlags")
        defer { _ = graphs.destroyExecutable(executable) }
        for _ in 0..<warmup { try driver.check(graphs.launch(executable, gpu.stream), "cuGraphLaunch") }
        var events: [(CUHandle?, CUHandle?)] = []
        defer { for (a, b) in events { _ = driver.eventDestroy(a); _ = driver.eventDestroy(b) } }
        for _ in 0..<repeats {
            var start: CUHandle?
            var stop: CUHandle?
            try driver.check(driver.eventCreate(&start, 0), "cuEventCreate")
            try driver.check(driver.eventCreate(&stop, 0), "cuEventCreate")
            events.append((start, stop))
            try driver.check(driver.eventRecord(start, gpu.stream), "cuEventRecord")
            try driver.check(graphs.launch(executable, gpu.stream), "cuGraphLaunch")
            try driver.check(driver.eventRecord(stop, gpu.stream), "cuEventRecord")
        }
        let result = try elapsed(events, driver)
        try gpu.synchronize()
        return result
    }

    private static func elapsed(_ events: [(CUHandle?, CUHandle?)], _ driver: Driver) throws -> [Double] {
        try events.map { start, stop in
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
