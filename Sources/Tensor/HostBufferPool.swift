import Foundation

/// Freed host buffers of 256 KiB and more, kept for the next tensor of about the same size.
///
/// Large tensor buffers are fresh mappings (from 2 MiB on, 2 MiB aligned and advised as huge pages;
/// `malloc` maps anything above its threshold too): each first touch of such a buffer is a page fault
/// in which the kernel zero-fills the page, so a model that allocates its activations layer after
/// layer pays one fault pass per intermediate tensor (6-9 % of the CPU time of a MiniLM forward pass
/// on the development VM, in `clear_page`). The pool keeps freed buffers and hands one back when a new
/// buffer needs at least its size minus a quarter: the bytes are already mapped, nothing is faulted.
/// Bounded by ``capacityBytes`` (the oldest buffers are freed first beyond it), so a process keeps at
/// most that much idle memory. Thread-safe. Tensors use ``shared``.
public final class HostBufferPool: @unchecked Sendable {
    /// The pool every CPU tensor buffer comes from: 64 MiB of idle buffers at most, or the number of
    /// MiB in the environment variable `QLINEAR_HOST_POOL_MB` (0 turns the reuse off).
    public static let shared = HostBufferPool(capacityBytes: environmentCapacity ?? 64 << 20)

    /// `QLINEAR_HOST_POOL_MB` in bytes, when it is a whole number of MiB (0 to 1 TiB).
    static var environmentCapacity: Int? {
        guard let text = ProcessInfo.processInfo.environment["QLINEAR_HOST_POOL_MB"],
              let megabytes = Int(text), (0...(1 << 20)).contains(megabytes) else { return nil }
        return megabytes << 20
    }

    /// Buffers below this size come from `malloc`'s own free lists and are not pooled.
    package static let minimumBytes = 256 << 10
    /// From this size on, buffers are 2 MiB aligned, sized in whole 2 MiB pages and advised as
    /// transparent huge pages (first-touch faults on the development VM: 65 ms to 14 ms for 105 MB).
    package static let hugePageBytes = 2 << 20
    /// Smaller pooled buffers are sized in multiples of this.
    static let smallGranule = 64 << 10

    /// The granule a buffer of `byteCount` bytes is sized in.
    static func granule(for byteCount: Int) -> Int { byteCount >= hugePageBytes ? hugePageBytes : smallGranule }

    private let lock = NSLock()
    private var limit: Int
    private var kept: [(pointer: UnsafeMutableRawPointer, capacity: Int)] = []
    private var keptBytes = 0

    /// A pool keeping at most `capacityBytes` idle bytes.
    public init(capacityBytes: Int) {
        limit = max(0, capacityBytes)
    }

    deinit { kept.forEach { free($0.pointer) } }

    /// The most idle bytes the pool keeps (64 MiB for ``shared``). Setting it frees what no longer
    /// fits; 0 turns the pool off (every large buffer is then unmapped when its last tensor goes away).
    public var capacityBytes: Int {
        get { lock.withLock { limit } }
        set {
            let freed: [UnsafeMutableRawPointer] = lock.withLock {
                limit = max(0, newValue)
                return evict(toFit: 0)
            }
            freed.forEach { free($0) }
        }
    }

    /// Idle bytes held now (for tests and reports; it changes as soon as it is read).
    public var idleBytes: Int { lock.withLock { keptBytes } }

    /// Frees every idle buffer (the pool stays on).
    public func purge() {
        let freed: [UnsafeMutableRawPointer] = lock.withLock {
            let all = kept.map(\.pointer)
            kept.removeAll()
            keptBytes = 0
            return all
        }
        freed.forEach { free($0) }
    }

    /// The smallest kept buffer of at least `byteCount` bytes and at most a quarter (or 2 MiB) more,
    /// the most recently freed of equal ones (its lines are the likeliest still in cache), and its
    /// capacity; nil when none fits (the caller then allocates).
    func take(byteCount: Int) -> (pointer: UnsafeMutableRawPointer, capacity: Int)? {
        let slack = max(Self.granule(for: byteCount), byteCount / 4)
        return lock.withLock {
            var best: Int?
            for (index, buffer) in kept.enumerated().reversed()
            where buffer.capacity >= byteCount && buffer.capacity - byteCount <= slack {
                if best.map({ buffer.capacity < kept[$0].capacity }) ?? true { best = index }
            }
            guard let best else { return nil }
            keptBytes -= kept[best].capacity
            return kept.remove(at: best)
        }
    }

    /// Keeps a freed buffer of `capacity` bytes (one from ``allocate(byteCount:)``), or frees it when
    /// it does not fit the pool.
    func give(_ pointer: UnsafeMutableRawPointer, capacity: Int) {
        let freed: [UnsafeMutableRawPointer] = lock.withLock {
            guard capacity <= limit else { return [pointer] }
            let evicted = evict(toFit: capacity)
            kept.append((pointer, capacity))
            keptBytes += capacity
            return evicted
        }
        freed.forEach { free($0) }
    }

    /// A new buffer for `byteCount` bytes (>= ``minimumBytes``): a kept one, else a fresh one of the
    /// size rounded up to its granule (from ``hugePageBytes`` on: 2 MiB aligned, advised as huge
    /// pages; below: page aligned). Returns its capacity too.
    func allocate(byteCount: Int) -> (pointer: UnsafeMutableRawPointer, capacity: Int) {
        if let buffer = take(byteCount: byteCount) { return buffer }
        let granule = Self.granule(for: byteCount)
        let capacity = (byteCount + granule - 1) / granule * granule
        let huge = granule == Self.hugePageBytes
        var pointer: UnsafeMutableRawPointer?
        guard posix_memalign(&pointer, huge ? Self.hugePageBytes : 4096, capacity) == 0, let pointer else {
            fatalError("out of memory allocating \(capacity) bytes of tensor storage")
        }
        #if os(Linux)
        if huge { _ = madvise(pointer, capacity, MADV_HUGEPAGE) }
        #endif
        return (pointer, capacity)
    }

    /// Removes the oldest buffers until `incoming` more bytes fit under the limit; returns them to
    /// be freed outside the lock. Call with the lock held.
    private func evict(toFit incoming: Int) -> [UnsafeMutableRawPointer] {
        var freed: [UnsafeMutableRawPointer] = []
        while !kept.isEmpty && keptBytes + incoming > limit {
            let oldest = kept.removeFirst()
            keptBytes -= oldest.capacity
            freed.append(oldest.pointer)
        }
        return freed
    }
}
