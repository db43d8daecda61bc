import Foundation
import QLTensor

/// The CUDA backend: dense tensors on NVIDIA GPUs (``DeviceMemory`` and ``DeviceBackend``), the
/// quantized kernel contract (`QuantizedKernels`), and device queries.
///
/// ```swift
/// let x = try Tensor.randomNormal([4, 64], seed: 1).to(.cuda(0))
/// ```
/// It serves `.cuda` tensors as soon as this module is linked (through `BackendSlot.CUDA`), with
/// or without CUDA on the machine: without it, every use throws
/// ``TensorError/Code/deviceUnavailable`` with the loader's reason (no `libcuda.so.1`, no device, ...).
public final class CUDABackend: DeviceMemory, @unchecked Sendable {
    public static let shared = CUDABackend()
    public var kind: DeviceKind { .cuda }

    private init() {}

    /// Whether a CUDA driver and at least one device are present.
    public static var isAvailable: Bool { ((try? CUDARuntime.shared())?.deviceCount ?? 0) > 0 }

    /// Why CUDA cannot be used here, or `nil` when it can.
    public static var unavailableReason: String? {
        do {
            let runtime = try CUDARuntime.shared()
            return runtime.deviceCount > 0 ? nil : "the CUDA driver reports no device"
        } catch {
            return "\(error)"
        }
    }

    /// Name, compute capability and multiprocessor count of `device`, e.g. "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)".
    public static func describe(_ device: Device) throws -> String {
        let gpu = try cudaDevice(device)
        return "\(gpu.name) (sm_\(gpu.capability), \(gpu.multiprocessorCount) SMs, \(gpu.totalMemory >> 30) GiB)"
    }

    /// Compute capability of `device` as one number (90 for 9.0).
    public static func computeCapability(_ device: Device) throws -> Int { try cudaDevice(device).capability }

    /// Waits until every queued op on `device` has finished.
    public static func synchronize(_ device: Device) throws { try cudaDevice(device).synchronize() }

    static func cudaDevice(_ device: Device) throws -> CUDADevice {
        guard case .cuda(let ordinal) = device else {
            throw TensorError(.deviceMismatch, "\(device) is not a CUDA device")
        }
        return try CUDARuntime.shared().device(ordinal)
    }
}

extension BackendSlot.CUDA: BackendModule {
    package static var backend: any DeviceBackend { CUDABackend.shared }
}
