import Foundation

/// Memory owned by a non-CPU backend (a CUDA allocation, for instance).
///
/// The backend that made it frees it when the last reference goes away.
public protocol DeviceAllocation: AnyObject, Sendable {
    var device: Device { get }
    var byteCount: Int { get }
}

/// The bytes behind one or more tensors, on one device.
///
/// Host memory is 64-byte aligned so SIMD kernels can use aligned loads on contiguous tensors.
/// Tensors share a storage through views and copy it before writing when it is shared
/// (copy-on-write), so a ``Tensor`` behaves as a value.
public final class TensorStorage: @unchecked Sendable {
    public let device: Device
    public let byteCount: Int
    private let host: UnsafeMutableRawPointer?
    private let ownsHost: Bool
    /// Keeps borrowed host memory (a memory-mapped file) alive while the storage lives.
    private let owner: AnyObject?
    /// The backend allocation when `device` is not the CPU.
    public let allocation: (any DeviceAllocation)?

    /// Fresh, zero-filled host memory.
    public init(hostByteCount: Int) {
        device = .cpu
        byteCount = hostByteCount
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: max(hostByteCount, 1), alignment: 64)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(hostByteCount, 1))
        host = pointer
        ownsHost = true
        owner = nil
        allocation = nil
    }

    /// Host memory that belongs to `owner` (for example a memory-mapped checkpoint); it is never
    /// written through this storage without a copy first.
    public init(borrowing pointer: UnsafeMutableRawPointer, byteCount: Int, owner: AnyObject) {
        device = .cpu
        self.byteCount = byteCount
        host = pointer
        ownsHost = false
        self.owner = owner
        allocation = nil
    }

    /// Memory on a backend device.
    public init(allocation: any DeviceAllocation) {
        device = allocation.device
        byteCount = allocation.byteCount
        host = nil
        ownsHost = false
        owner = nil
        self.allocation = allocation
    }

    /// Whether writing in place is allowed (borrowed memory is read-only to us).
    var isWritable: Bool { host == nil || ownsHost }

    /// The host address; only for CPU storage.
    public var hostPointer: UnsafeMutableRawPointer {
        guard let host else { preconditionFailure("host pointer requested for a tensor on \(device)") }
        return host
    }

    deinit {
        if ownsHost { host?.deallocate() }
    }
}
