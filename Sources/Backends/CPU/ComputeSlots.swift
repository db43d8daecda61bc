import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The process-wide limit on CPU compute threads: one slot per core, shared by every caller.
///
/// Every parallel region of the CPU backend (``CPUKernels/parallelRanges(count:granule:minimumPerThread:_:)``,
/// which the float GEMMs use too, with OpenBLAS held at one thread) takes slots before it computes. A region
/// asks for the slots it can use (`wanted`, at most ``count``) and waits, in arrival order, until that many
/// are free; then it runs with exactly those. So however many threads or tasks call the library, at most
/// ``count`` threads run its kernels at once; one caller gets every core, and several callers take turns,
/// each region running as fast as it would alone (eight callers on two cores do not split into eight
/// one-core GEMMs thrashing the caches, nor into 8 x (OpenBLAS's threads + ours)). Regions that want fewer
/// slots than there are cores (small work) run side by side. Arrival order means a large region is never
/// starved by a stream of small ones. A region nested in another (a kernel called from inside a worker)
/// runs on the thread it is on, covered by the outer region's slots, so nesting cannot deadlock.
package final class ComputeSlots: @unchecked Sendable {
    package static let shared = ComputeSlots(count: max(1, ProcessInfo.processInfo.activeProcessorCount))

    /// The number of slots (cores).
    package let count: Int
    private var free: Int
    /// Tickets in arrival order: `nextTicket` is handed to the next region that asks, `serving` is the
    /// ticket whose region is granted next.
    private var nextTicket = 0
    private var serving = 0
    private let condition = NSCondition()

    package init(count: Int) {
        self.count = count
        free = count
    }

    /// Slots free now (for tests and reports; it changes as soon as it is read).
    package var freeCount: Int { condition.withLock { free } }

    /// Requests waiting for their slots now (for tests; it changes as soon as it is read).
    package var waitingCount: Int { condition.withLock { nextTicket - serving } }

    /// Takes `min(max(wanted, 1), count)` slots, waiting until every earlier request has been granted
    /// and that many slots are free, and returns how many it took.
    package func acquire(upTo wanted: Int) -> Int {
        let taken = min(max(wanted, 1), count)
        condition.lock()
        let ticket = nextTicket
        nextTicket += 1
        while ticket != serving || free < taken { condition.wait() }
        free -= taken
        serving += 1
        condition.unlock()
        // The next ticket may fit in what is left.
        condition.broadcast()
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
