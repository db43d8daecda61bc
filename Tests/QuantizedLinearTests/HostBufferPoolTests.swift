@testable import QLTensor
import QuantizedLinear
import Testing

/// The pool is process-wide and other suites allocate beside these tests, so each test uses sizes
/// no other test asks for (tens of MiB plus odd bytes) and asserts only what concurrent callers
/// cannot change.
@Suite("Host buffer pool: large tensor buffers are reused, never handed out dirty as zeros", .serialized)
struct HostBufferPoolTests {
    static let oddSize = (61 << 20) + 12_345

    @Test("a freed large buffer comes back for the next buffer of its size")
    func reuse() {
        var first: UnsafeMutableRawPointer?
        do {
            let storage = TensorStorage(uninitializedHostByteCount: Self.oddSize)
            first = storage.hostPointer
        }
        let again = TensorStorage(uninitializedHostByteCount: Self.oddSize - 1000)
        #expect(again.hostPointer == first)
        #expect(Int(bitPattern: again.hostPointer) % HostBufferPool.minimumBytes == 0)
    }

    @Test("zeros on a reused buffer are zeros")
    func zerosAfterReuse() throws {
        var dirty: UnsafeMutableRawPointer?
        do {
            var tensor = try Tensor(uninitializedShape: [Self.oddSize / 4], dtype: .float32)
            try tensor.withUnsafeMutableElements(as: Float.self) { $0.update(repeating: .nan) }
            dirty = tensor.storage.hostPointer
        }
        let zeros = try Tensor(zeros: [Self.oddSize / 4], dtype: .float32)
        #expect(zeros.storage.hostPointer == dirty)
        #expect(try zeros.floats().allSatisfy { $0 == 0 && $0.sign == .plus })
    }

    @Test("a buffer much larger than asked for is not handed out")
    func slack() {
        var large: UnsafeMutableRawPointer?
        do { large = TensorStorage(uninitializedHostByteCount: (97 << 20) + 7).hostPointer }
        let small = TensorStorage(uninitializedHostByteCount: (23 << 20) + 7)
        #expect(small.hostPointer != large)
        let fitting = TensorStorage(uninitializedHostByteCount: (90 << 20) + 7)
        #expect(fitting.hostPointer == large)
    }

    @Test("capacity 0 frees every idle buffer and keeps none")
    func capacity() {
        let saved = HostBufferPool.capacityBytes
        defer { HostBufferPool.capacityBytes = saved }
        _ = TensorStorage(uninitializedHostByteCount: Self.oddSize)
        HostBufferPool.capacityBytes = 0
        #expect(HostBufferPool.idleBytes == 0)
        _ = TensorStorage(uninitializedHostByteCount: Self.oddSize)
        #expect(HostBufferPool.idleBytes == 0)
    }

    @Test("a buffer larger than the capacity is freed, not kept")
    func oversized() {
        let saved = HostBufferPool.capacityBytes
        defer { HostBufferPool.capacityBytes = saved }
        HostBufferPool.capacityBytes = 8 << 20
        HostBufferPool.purge()
        _ = TensorStorage(uninitializedHostByteCount: 10 << 20)
        #expect(HostBufferPool.idleBytes <= 8 << 20)
    }
}
