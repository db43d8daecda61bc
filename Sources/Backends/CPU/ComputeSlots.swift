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
/// each until its grant is free, so a large one is never starved by a stream of small ones. Slot `i`'s
/// work runs on worker `i` of ``ComputeWorkers`` (a grant made without contention lets the caller stand in
/// for its first slot), so under contention the same `count` threads run every kernel. A region nested in
/// another (a kernel called from inside a worker) runs on the thread it is on, covered by the outer
/// region's slots, so nesting cannot deadlock.
package final class ComputeSlots: @unchecked Sendable {
    package static let shared = ComputeSlots(count: max(1, ProcessInfo.processInfo.activeProcessorCount))

    /// The number of slots (cores).
    package let count: Int
    /// The free slot numbers, the most recently freed last (taken first: its worker's caches are warm).
    private var freeSlots: [Int]
    /// A request waiting for its slots; woken alone, by the release that grants it (no thundering herd
    /// of waiters rechecking a shared condition).
    private final class Waiter {
        let slots: Int
        var granted: [Int] = []
        let semaphore = DispatchSemaphore(value: 0)
        init(slots: Int) { self.slots = slots }
    }
    /// Requests waiting for their slots, in arrival order.
    private var queue: [Waiter] = []
    /// Requests holding or waiting for slots that wanted more than one (those that share the cores).
    private var competing = 0
    private let lock = NSLock()
    /// Slot-nanoseconds held so far, and when the number of slots in use last changed.
    private var heldSlotNanoseconds: UInt64 = 0
    private var lastChange = DispatchTime.now().uptimeNanoseconds

    package init(count: Int) {
        self.count = count
        freeSlots = Array((0..<count).reversed())
    }

    /// Slots free now (for tests and reports; it changes as soon as it is read).
    package var freeCount: Int { lock.withLock { freeSlots.count } }

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
    /// the free slots change.
    private func account(at now: UInt64) {
        heldSlotNanoseconds &+= UInt64(count - freeSlots.count) &* (now &- min(lastChange, now))
        lastChange = now
    }

    /// The slots granted to one request; give them back with ``release(_:)``.
    package struct Grant: Sendable {
        /// The slot numbers held; slot `i`'s work runs on worker `i` of ``ComputeWorkers/shared`` (or, for
        /// the first slot of a grant made without contention, on the caller's thread).
        package let indices: [Int]
        /// Whether the request wanted more than one slot (it counts among the competing requests).
        fileprivate let competes: Bool
        /// Whether other requests for several slots were in flight when this one arrived: its work then
        /// runs on its slots' workers, not on the caller's thread, so however many callers take turns,
        /// at most ``ComputeSlots/count`` threads ever run kernels (their caches and buffers stay warm).
        package let contended: Bool

        /// How many slots the request holds.
        package var slots: Int { indices.count }
    }

    /// Takes this request's fair share of the slots, `min(max(wanted, 1), count, max(1, count / c))` with
    /// `c` the requests wanting more than one slot now in flight (this one included), waiting until every
    /// earlier request has been granted and that many slots are free.
    package func acquire(upTo wanted: Int) -> Grant {
        let competes = wanted > 1 && count > 1
        lock.lock()
        if competes { competing += 1 }
        let share = competes ? min(wanted, count, max(1, count / competing)) : 1
        let contended = competes && competing > 1
        if queue.isEmpty && freeSlots.count >= share {
            account(at: DispatchTime.now().uptimeNanoseconds)
            let taken = takeFree(share)
            lock.unlock()
            return Grant(indices: taken, competes: competes, contended: contended)
        }
        let waiter = Waiter(slots: share)
        queue.append(waiter)
        lock.unlock()
        waiter.semaphore.wait()
        return Grant(indices: waiter.granted, competes: competes, contended: contended)
    }

    /// Removes and returns the `n` most recently freed slots. Call with the lock held.
    private func takeFree(_ n: Int) -> [Int] {
        let taken = Array(freeSlots.suffix(n).reversed())
        freeSlots.removeLast(n)
        return taken
    }

    /// Takes up to `wanted` slots that are free while no request waits, without waiting (none otherwise):
    /// a region inside a hold widens onto cores nobody else asked for. Borrowed slots do not compete.
    package func borrowIdle(upTo wanted: Int) -> Grant {
        guard wanted > 0 else { return Grant(indices: [], competes: false, contended: false) }
        lock.lock()
        defer { lock.unlock() }
        let n = queue.isEmpty ? min(wanted, freeSlots.count) : 0
        if n > 0 { account(at: DispatchTime.now().uptimeNanoseconds) }
        return Grant(indices: takeFree(n), competes: false, contended: false)
    }

    /// Gives back a request's slots and grants them, in arrival order, to the waiting requests they cover.
    package func release(_ grant: Grant) {
        lock.lock()
        defer { lock.unlock() }
        guard grant.slots > 0 else { return }
        account(at: DispatchTime.now().uptimeNanoseconds)
        if grant.competes { competing -= 1 }
        freeSlots.append(contentsOf: grant.indices.reversed())
        while let head = queue.first, head.slots <= freeSlots.count {
            head.granted = takeFree(head.slots)
            queue.removeFirst()
            head.semaphore.signal()
        }
    }

    /// Runs `body` holding up to `wanted` of the ``shared`` slots for all of it: every region `body`
    /// enters runs with those slots (at most as many as it wants) instead of queueing again, so a
    /// sequence of kernels of one op (quantize, then GEMM) is not interleaved with other callers'
    /// kernels. A grant made under contention runs `body` on the worker of its first slot (this thread
    /// waits); one made without runs it here. Inside a region or another hold it just runs `body`.
    package static func holding<R>(upTo wanted: Int, _ body: () throws -> R) throws -> R {
        if isInsideRegion || heldGrant != nil { return try body() }
        let grant = shared.acquire(upTo: wanted)
        defer { shared.release(grant) }
        if grant.contended {
            return try ComputeWorkers.shared.perform(on: grant.indices[0]) { try running(grant, body) }
        }
        return try running(grant, body)
    }

    /// Runs `body` with `grant` as this thread's hold.
    private static func running<R>(_ grant: Grant, _ body: () throws -> R) rethrows -> R {
        let box = HeldGrant(grant)
        pthread_setspecific(heldKey, Unmanaged.passUnretained(box).toOpaque())
        defer { pthread_setspecific(heldKey, nil) }
        return try withExtendedLifetime(box) { try body() }
    }

    private final class HeldGrant {
        let grant: Grant
        init(_ grant: Grant) { self.grant = grant }
    }

    /// The grant this thread holds through ``holding(upTo:_:)``, nil outside a hold.
    package static var heldGrant: Grant? {
        pthread_getspecific(heldKey).map { Unmanaged<HeldGrant>.fromOpaque($0).takeUnretainedValue().grant }
    }

    /// The slots this thread holds through ``holding(upTo:_:)``, 0 outside a hold.
    package static var heldByThisThread: Int { heldGrant?.slots ?? 0 }

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
