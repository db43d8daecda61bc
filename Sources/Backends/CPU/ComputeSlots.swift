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
/// starved by a stream of small ones. An op of several kernels holds its slots across them
/// (``holding(upTo:_:)``): measured on 2 cores with 8 callers of a 64 x 3072 x 3072 INT8 linear, regions
/// queued one by one gave 0.80-0.85x of one caller's throughput (each hand-over between two callers'
/// regions waits for a sleeping thread), a lock around each whole call 0.97-1.06x. A region nested in
/// another (a kernel called from inside a worker) runs on the thread it is on, covered by the outer
/// region's slots, so nesting cannot deadlock.
package final class ComputeSlots: @unchecked Sendable {
    package static let shared = ComputeSlots(count: max(1, ProcessInfo.processInfo.activeProcessorCount))

    /// The number of slots (cores).
    package let count: Int
    private var free: Int
    /// Requests waiting for their slots, in arrival order; each is woken alone, by the release that
    /// grants it (no thundering herd of waiters rechecking a shared condition).
    private var queue: [(slots: Int, granted: DispatchSemaphore)] = []
    private let lock = NSLock()
    /// Slot-nanoseconds held so far, and when the number of slots in use last changed.
    private var heldSlotNanoseconds: UInt64 = 0
    private var lastChange = DispatchTime.now().uptimeNanoseconds

    package init(count: Int) {
        self.count = count
        free = count
    }

    /// Slots free now (for tests and reports; it changes as soon as it is read).
    package var freeCount: Int { lock.withLock { free } }

    /// Requests waiting for their slots now (for tests; it changes as soon as it is read).
    package var waitingCount: Int { lock.withLock { queue.count } }

    /// The slot-seconds held since the process started: the integral over time of the slots in use.
    /// Divided by `count` x a wall interval, it is the share of the cores granted to regions then
    /// (`qlinear bench-concurrency` reports it, to tell hand-over gaps from slower regions).
    package var heldSlotSeconds: Double {
        lock.withLock {
            account(at: DispatchTime.now().uptimeNanoseconds)
            return Double(heldSlotNanoseconds) / 1e9
        }
    }

    /// Adds the slots in use since the last change up to `now`. Call with the lock held, before
    /// `free` changes.
    private func account(at now: UInt64) {
        heldSlotNanoseconds &+= UInt64(count - free) &* (now &- min(lastChange, now))
        lastChange = now
    }

    /// Takes `min(max(wanted, 1), count)` slots, waiting until every earlier request has been granted
    /// and that many slots are free, and returns how many it took.
    package func acquire(upTo wanted: Int) -> Int {
        let taken = min(max(wanted, 1), count)
        lock.lock()
        if queue.isEmpty && free >= taken {
            account(at: DispatchTime.now().uptimeNanoseconds)
            free -= taken
            lock.unlock()
            return taken
        }
        let granted = DispatchSemaphore(value: 0)
        queue.append((taken, granted))
        lock.unlock()
        granted.wait()
        return taken
    }

    /// Gives back `taken` slots and grants them, in arrival order, to the waiting requests they cover.
    package func release(_ taken: Int) {
        lock.lock()
        defer { lock.unlock() }
        account(at: DispatchTime.now().uptimeNanoseconds)
        free += taken
        while let head = queue.first, head.slots <= free {
            free -= head.slots
            queue.removeFirst()
            head.granted.signal()
        }
    }

    /// Runs `body` holding up to `wanted` of the ``shared`` slots for all of it: every region `body`
    /// enters on this thread runs with those slots (at most as many as it wants) instead of queueing
    /// again, so a sequence of kernels of one op (quantize, then GEMM) is not interleaved with other
    /// callers' kernels. Inside a region or another hold it just runs `body`.
    package static func holding<R>(upTo wanted: Int, _ body: () throws -> R) rethrows -> R {
        if isInsideRegion || heldByThisThread > 0 { return try body() }
        let taken = shared.acquire(upTo: wanted)
        defer { shared.release(taken) }
        pthread_setspecific(heldKey, UnsafeRawPointer(bitPattern: taken))
        defer { pthread_setspecific(heldKey, nil) }
        return try body()
    }

    /// The slots this thread holds through ``holding(upTo:_:)``, 0 outside a hold.
    package static var heldByThisThread: Int { Int(bitPattern: pthread_getspecific(heldKey)) }

    private static let heldKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

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
