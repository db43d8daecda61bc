import Foundation
import QLTensor

/// The process-wide CUDA state: the driver, the devices, NVRTC and cuBLASLt, each loaded once.
///
/// Loading failures are remembered, so every later use throws the same clear error instead of
/// retrying `dlopen`.
final class CUDARuntime: @unchecked Sendable {
    let driver: Driver
    let deviceCount: Int
    private let lock = NSLock()
    private var devices: [Int: CUDADevice] = [:]
    private var nvrtcResult: Swift.Result<NVRTC, TensorError>?
    private var blasResult: Swift.Result<BLASLt, TensorError>?

    private init(driver: Driver) throws {
        self.driver = driver
        try driver.check(driver.initialize(0), "cuInit")
        var count: Int32 = 0
        try driver.check(driver.deviceGetCount(&count), "cuDeviceGetCount")
        deviceCount = Int(count)
    }

    private static let loaded = capture { try CUDARuntime(driver: Driver()) }

    /// The value or the ``TensorError`` that making it threw, to be rethrown on every later use.
    static func capture<T>(_ make: () throws -> T) -> Swift.Result<T, TensorError> {
        do {
            return .success(try make())
        } catch let error as TensorError {
            return .failure(error)
        } catch {
            return .failure(TensorError(.deviceUnavailable, "CUDA could not be loaded", underlying: "\(error)"))
        }
    }

    /// The runtime, or the reason CUDA cannot be used on this machine.
    static func shared() throws -> CUDARuntime { try loaded.get() }

    /// The device with `ordinal`, set up on first use (primary context, stream, allocator).
    func device(_ ordinal: Int) throws -> CUDADevice {
        try lock.withLock {
            if let device = devices[ordinal] { return device }
            guard ordinal >= 0 && ordinal < deviceCount else {
                throw TensorError(.deviceUnavailable, "cuda:\(ordinal) does not exist: this machine has "
                    + "\(deviceCount) CUDA device\(deviceCount == 1 ? "" : "s")")
            }
            let device = try CUDADevice(runtime: self, ordinal: ordinal)
            devices[ordinal] = device
            return device
        }
    }

    /// NVRTC, loaded on first use.
    func nvrtc() throws -> NVRTC {
        try lock.withLock {
            if nvrtcResult == nil { nvrtcResult = CUDARuntime.capture { try NVRTC() } }
            return try nvrtcResult!.get()
        }
    }

    /// cuBLASLt, loaded on first use.
    func blas() throws -> BLASLt {
        try lock.withLock {
            if blasResult == nil { blasResult = CUDARuntime.capture { try BLASLt() } }
            return try blasResult!.get()
        }
    }
}
