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
    /// The capacity of a buffer from ``HostBufferPool/shared`` (given back to it when freed), else 0.
    private let pooledCapacity: Int
    /// Keeps borrowed host memory (a memory-mapped file) alive while the storage lives.
    private let owner: AnyObject?
    /// The backend allocation when `device` is not the CPU.
    public let allocation: (any DeviceAllocation)?

    /// Fresh, zero-filled host memory.
    public convenience init(hostByteCount: Int) {
        self.init(uninitializedHostByteCount: hostByteCount)
        hostPointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(hostByteCount, 1))
    }

    /// Fresh host memory whose bytes are unspecified: only for kernels that write every byte before
    /// anything reads it (it saves the zero-filling pass, a full extra write of the buffer).
    ///
    /// Buffers of 256 KiB or more come from ``HostBufferPool`` (from 2 MiB on 2 MiB aligned and advised
    /// as transparent huge pages) and are reused once freed, so a buffer the pool hands back is not
    /// faulted in again at all.
    package init(uninitializedHostByteCount: Int) {
        device = .cpu
        byteCount = uninitializedHostByteCount
        let size = max(uninitializedHostByteCount, 1)
        if size >= HostBufferPool.minimumBytes {
            (host, pooledCapacity) = HostBufferPool.shared.allocate(byteCount: size)
        } else {
            var pointer: UnsafeMutableRawPointer?
            guard posix_memalign(&pointer, 64, size) == 0, let pointer else {
                fatalError("out of memory allocating \(size) bytes of tensor storage")
            }
            host = pointer
            pooledCapacity = 0
        }
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
        pooledCapacity = 0
        self.owner = owner
        allocation = nil
    }

    /// Memory on a backend device.
    public init(allocation: any DeviceAllocation) {
        device = allocation.device
        byteCount = allocation.byteCount
        host = nil
        ownsHost = false
        pooledCapacity = 0
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
        guard ownsHost, let host else { return }
        if pooledCapacity > 0 {
            HostBufferPool.shared.give(host, capacity: pooledCapacity)
        } else {
            free(host)
        }
    }
}
