import Foundation
import QLTensor

/// Device memory: a caching allocator over `cuMemAlloc`, and the allocations tensors hold.
extension CUDADevice {
    /// Blocks are rounded up (512 B below 1 MiB, 2 MiB above) and kept in free lists by rounded
    /// size when released, so steady-state inference allocates nothing from the driver.
    static func roundedSize(_ byteCount: Int) -> Int {
        let size = max(byteCount, 1)
        let granule = size < 1 << 20 ? 512 : 2 << 20
        return (size + granule - 1) / granule * granule
    }

    /// Device memory of at least `byteCount` bytes, uninitialised.
    /// - Throws: ``TensorError/Code/backendFailure`` when the device is out of memory even after the
    ///   cache is returned to the driver.
    func allocate(byteCount: Int) throws -> CUDAAllocation {
        let size = CUDADevice.roundedSize(byteCount)
        let reused = allocator.take(size)
        if let reused { return CUDAAllocation(device: self, address: reused, byteCount: byteCount, capacity: size) }
        try makeCurrent()
        var address: CUDeviceAddress = 0
        if driver.memoryAllocate(&address, size) != 0 {
            try releaseCache()
            try driver.check(driver.memoryAllocate(&address, size),
                             "cuMemAlloc(\(size) bytes) on cuda:\(ordinal) (\(totalMemory >> 20) MiB in total)")
        }
        return CUDAAllocation(device: self, address: address, byteCount: byteCount, capacity: size)
    }

    /// Takes a block back into the cache (called when its last tensor goes away).
    func recycle(_ address: CUDeviceAddress, capacity: Int) {
        allocator.put(address, capacity: capacity)
    }

    /// Frees every cached block (after the queued work that may still use them has finished).
    func releaseCache() throws {
        try synchronize()
        let blocks = allocator.drain()
        for block in blocks { try driver.check(driver.memoryFree(block), "cuMemFree") }
    }
}

/// Free device blocks by rounded size. Reuse is safe because all work runs on the device's one
/// stream: a block released by a tensor is only handed to work queued after the work that used it.
final class CachingAllocator: @unchecked Sendable {
    private let lock = NSLock()
    private var freeBlocks: [Int: [CUDeviceAddress]] = [:]
    /// Bytes held in the free lists.
    private(set) var cachedBytes = 0

    /// A free block of exactly `size` (rounded) bytes, if one is cached.
    func take(_ size: Int) -> CUDeviceAddress? {
        lock.withLock {
            guard let address = freeBlocks[size]?.popLast() else { return nil }
            cachedBytes -= size
            return address
        }
    }

    func put(_ address: CUDeviceAddress, capacity: Int) {
        lock.withLock {
            freeBlocks[capacity, default: []].append(address)
            cachedBytes += capacity
        }
    }

    /// Every cached block, removed from the cache (to be freed).
    func drain() -> [CUDeviceAddress] {
        lock.withLock {
            let all = freeBlocks.values.flatMap { $0 }
            freeBlocks = [:]
            cachedBytes = 0
            return all
        }
    }
}

/// A block of device memory: the ``DeviceAllocation`` behind every CUDA tensor. It goes back to
/// its device's cache when the last tensor using it goes away.
package final class CUDAAllocation: DeviceAllocation, @unchecked Sendable {
    package var device: Device { .cuda(owner.ordinal) }
    package let byteCount: Int
    let address: CUDeviceAddress
    let capacity: Int
    let owner: CUDADevice

    init(device: CUDADevice, address: CUDeviceAddress, byteCount: Int, capacity: Int) {
        owner = device
        self.address = address
        self.byteCount = byteCount
        self.capacity = capacity
    }

    deinit { owner.recycle(address, capacity: capacity) }
}
