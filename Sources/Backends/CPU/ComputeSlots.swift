import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The process-wide limit on CPU compute threads: one slot per core, shared by every caller.
///
/// Every parallel region of the CPU backend (``CPUKernels/parallelRanges(count:granule:minimumPerThread:_:)``,
/// which the float GEMMs use too, with OpenBLAS held at one thread) takes slots before it computes: as many
/// as it can use and are free, at least one, waiting while none is free. So however many threads or tasks
/// call the library, at most ``count`` threads run its kernels at once: one caller gets every core, eight
/// callers on two cores run two at a time (each on one core) instead of 8 x (OpenBLAS's threads + ours)
/// thrashing. A region nested in another (a kernel called from inside a worker) runs on the thread it is
/// on, covered by the outer region's slots, so nesting cannot deadlock.
package final class ComputeSlots: @unchecked Sendable {
    package static let shared = ComputeSlots(count: max(1, ProcessInfo.processInfo.activeProcessorCount))

    /// The number of slots (cores).
    package let count: Int
    private var free: Int
    private let condition = NSCondition()

    package init(count: Int) {
        self.count = count
        free = count
    }

    /// Slots free now (for tests and reports; it changes as soon as it is read).
    package var freeCount: Int { condition.withLock { free } }

    /// Takes between 1 and `wanted` slots, waiting while none is free, and returns how many it took.
    package func acquire(upTo wanted: Int) -> Int {
        condition.lock()
        defer { condition.unlock() }
        while free == 0 { condition.wait() }
        let taken = min(max(wanted, 1), free)
        free -= taken
        return taken
    }

    /// Gives back `taken` slots.
    package func release(_ taken: Int) {
        condition.lock()
        free += taken
        condition.unlock()
        condition.broadcast()
    }

    /// Whether the current thread is inside a region that holds slots.
    package static var isInsideRegion: Bool { pthread_getspecific(regionKey) != nil }

    /// Runs `body` with the current thread marked as inside a region (restoring the mark after).
    package static func markingRegion<R>(_ body: () throws -> R) rethrows -> R {
        let previous = pthread_getspecific(regionKey)
        pthread_setspecific(regionKey, UnsafeRawPointer(bitPattern: 1))
        defer { pthread_setspecific(regionKey, previous) }
        return try body()
    }

    private static let regionKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()
}
