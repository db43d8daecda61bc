import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The process-wide limit on CPU compute threads: one slot per core, shared by every caller.
///
/// Every parallel region of the CPU backend (``CPUKernels/parallelRanges(count:granule:minimumPerThread:_:)``,
/// which the float GEMMs use too, with OpenBLAS held at one thread) takes slots before it computes, and an op
/// of several kernels holds its slots across them (``holding(upTo:_:)``). So however many threads or tasks
/// call the library, at most ``count`` threads run its kernels at once (eight callers on two cores do not
/// split into eight one-core GEMMs thrashing the caches, nor into 8 x (OpenBLAS's threads + ours)).
///
/// How many slots a request gets is its fair share of the cores among the requests that compete for them:
/// with `c` requests in flight (holding or waiting) that want more than one slot, this one included, a
/// request wanting `w` slots is granted `min(w, count, max(1, count / c))`. A lone caller gets every core
/// it can use; two callers on two cores each run on one core, side by side. That is faster than taking
/// turns with both cores: an op on one core has no part imbalance, no worker to wake and no serial stretch
/// that leaves the other core idle (2 cores, 64 x 3072 x 3072: INT8 W8A8 on one core 65-71 calls/s, two such
/// callers side by side 117-130, one caller on both cores 109-118; float32 41-46, 77-86 and 68-83).
/// Requests that want one slot (small work) do not count as competitors. Requests wait in arrival order,
/// each until its grant is free, so a large one is never starved by a stream of small ones. A region
/// nested in another (a kernel called from inside a worker) runs on the thread it is on, covered by the
/// outer region's slots, so nesting cannot deadlock.
package final class ComputeSlots: @unchecked Sendable {
    package static let shared = ComputeSlots(count: max(1, ProcessInfo.processInfo.activeProcessorCount))

    /// The number of slots (cores).
    package let count: Int
    private var free: Int
    /// Requests waiting for their slots, in arrival order; each is woken alone, by the release that
    /// grants it (no thundering herd of waiters rechecking a shared condition).
    private var queue: [(slots: Int, granted: DispatchSemaphore)] = []
    /// Requests holding or waiting for slots that wanted more than one (those that share the cores).
    private var competing = 0
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

    /// The slots granted to one request; give them back with ``release(_:)``.
    package struct Grant: Sendable {
        /// How many slots the request holds.
        package let slots: Int
        /// Whether the request wanted more than one slot (it counts among the competing requests).
        fileprivate let competes: Bool
    }

    /// Takes this request's fair share of the slots, `min(max(wanted, 1), count, max(1, count / c))` with
    /// `c` the requests wanting more than one slot now in flight (this one included), waiting until every
    /// earlier request has been granted and that many slots are free.
    package func acquire(upTo wanted: Int) -> Grant {
        let competes = wanted > 1 && count > 1
        lock.lock()
        if competes { competing += 1 }
        let grant = Grant(slots: competes ? min(wanted, count, max(1, count / competing)) : 1, competes: competes)
        if queue.isEmpty && free >= grant.slots {
            account(at: DispatchTime.now().uptimeNanoseconds)
            free -= grant.slots
            lock.unlock()
            return grant
        }
        let granted = DispatchSemaphore(value: 0)
        queue.append((grant.slots, granted))
        lock.unlock()
        granted.wait()
        return grant
    }

    /// Takes up to `wanted` slots that are free while no request waits, without waiting (none otherwise):
    /// a region inside a hold widens onto cores nobody else asked for. Borrowed slots do not compete.
    package func borrowIdle(upTo wanted: Int) -> Grant {
        guard wanted > 0 else { return Grant(slots: 0, competes: false) }
        lock.lock()
        defer { lock.unlock() }
        let taken = queue.isEmpty ? min(wanted, free) : 0
        if taken > 0 {
            account(at: DispatchTime.now().uptimeNanoseconds)
            free -= taken
        }
        return Grant(slots: taken, competes: false)
    }

    /// Gives back a request's slots and grants them, in arrival order, to the waiting requests they cover.
    package func release(_ grant: Grant) {
        lock.lock()
        defer { lock.unlock() }
        guard grant.slots > 0 else { return }
        account(at: DispatchTime.now().uptimeNanoseconds)
        if grant.competes { competing -= 1 }
        free += grant.slots
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
        let grant = shared.acquire(upTo: wanted)
        defer { shared.release(grant) }
        pthread_setspecific(heldKey, UnsafeRawPointer(bitPattern: grant.slots))
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
