import Foundation
@testable import QLTensor
import QuantizedLinear
import Testing

/// Each test but the last uses its own pool, so buffers other suites free into the shared one cannot
/// change what it sees.
@Suite("Host buffer pool: large tensor buffers are reused, bounded, never handed out dirty as zeros")
struct HostBufferPoolTests {
    @Test("a freed buffer comes back for the next one of about its size, aligned for its class",
          arguments: [(61 << 20) + 12_345, (1 << 20) + 4099, 256 << 10])
    func reuse(byteCount: Int) {
        let pool = HostBufferPool(capacityBytes: 128 << 20)
        let first = pool.allocate(byteCount: byteCount)
        let alignment = byteCount >= HostBufferPool.hugePageBytes ? HostBufferPool.hugePageBytes : 4096
        #expect(Int(bitPattern: first.pointer) % alignment == 0)
        #expect(first.capacity >= byteCount && first.capacity % HostBufferPool.granule(for: byteCount) == 0)
        pool.give(first.pointer, capacity: first.capacity)
        #expect(pool.idleBytes == first.capacity)
        let again = pool.allocate(byteCount: byteCount - byteCount / 8)
        #expect(again.pointer == first.pointer && again.capacity == first.capacity)
        #expect(pool.idleBytes == 0)
        pool.give(again.pointer, capacity: again.capacity)
    }

    @Test("a buffer much larger than asked for is not handed out; the smallest fitting one is")
    func slack() {
        let pool = HostBufferPool(capacityBytes: 512 << 20)
        let large = pool.allocate(byteCount: 97 << 20)
        let medium = pool.allocate(byteCount: 24 << 20)
        pool.give(large.pointer, capacity: large.capacity)
        pool.give(medium.pointer, capacity: medium.capacity)
        let small = pool.allocate(byteCount: 8 << 20)
        #expect(small.pointer != large.pointer && small.pointer != medium.pointer)
        let fitting = pool.allocate(byteCount: 22 << 20)
        #expect(fitting.pointer == medium.pointer)
        for buffer in [small, fitting] { pool.give(buffer.pointer, capacity: buffer.capacity) }
        #expect(pool.idleBytes == large.capacity + medium.capacity + small.capacity)
    }

    @Test("the capacity bounds the idle bytes: oldest freed first, oversized never kept, 0 keeps none")
    func capacity() {
        let pool = HostBufferPool(capacityBytes: 10 << 20)
        let buffers = (0..<3).map { _ in pool.allocate(byteCount: 4 << 20) }
        buffers.forEach { pool.give($0.pointer, capacity: $0.capacity) }
        #expect(pool.idleBytes == 8 << 20)
        // The first buffer was evicted for the third; the two kept are the newest.
        let reused = pool.allocate(byteCount: 4 << 20)
        #expect(reused.pointer == buffers[2].pointer)
        pool.give(reused.pointer, capacity: reused.capacity)
        let oversized = pool.allocate(byteCount: 12 << 20)
        pool.give(oversized.pointer, capacity: oversized.capacity)
        #expect(pool.idleBytes == 8 << 20)
        pool.capacityBytes = 4 << 20
        #expect(pool.idleBytes == 4 << 20)
        pool.capacityBytes = 0
        #expect(pool.idleBytes == 0)
        let unpooled = pool.allocate(byteCount: 4 << 20)
        pool.give(unpooled.pointer, capacity: unpooled.capacity)
        #expect(pool.idleBytes == 0)
        pool.capacityBytes = 64 << 20
        let last = pool.allocate(byteCount: 4 << 20)
        pool.give(last.pointer, capacity: last.capacity)
        pool.purge()
        #expect(pool.idleBytes == 0)
    }

    @Test("the shared pool's bound: 64 MiB, or QLINEAR_HOST_POOL_MB when it is set to a whole number")
    func sharedCapacity() {
        let variable = ProcessInfo.processInfo.environment["QLINEAR_HOST_POOL_MB"]
        let expected = variable.flatMap(Int.init).map { $0 << 20 } ?? 64 << 20
        #expect(HostBufferPool.environmentCapacity == variable.flatMap(Int.init).map { $0 << 20 })
        #expect(HostBufferPool.shared.capacityBytes == expected)
    }

    @Test("zeros are zeros on a buffer a dirty tensor gave back (shared pool)")
    func zerosAfterReuse() throws {
        let count = ((37 << 20) + 4444) / 4
        do {
            var dirty = try Tensor(uninitializedShape: [count], dtype: .float32)
            try dirty.withUnsafeMutableElements(as: Float.self) { $0.update(repeating: .nan) }
        }
        for _ in 0..<3 {
            let zeros = try Tensor(zeros: [count], dtype: .float32)
            #expect(try zeros.floats().allSatisfy { $0 == 0 && $0.sign == .plus })
        }
    }
}
