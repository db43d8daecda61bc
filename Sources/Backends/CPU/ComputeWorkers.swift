import Foundation

/// The library's own threads that run parallel regions beside their callers: one fewer than the cores,
/// started on first use and kept for the life of the process (a worker parks on a semaphore between
/// regions; an instance and its threads are never freed).
///
/// A region granted `w` slots (``ComputeSlots``) runs its body on the calling thread and on `w - 1` of
/// these workers. Because the slots bound the threads inside regions at the cores, and each region holds
/// its caller's slot as well, a region never finds every worker busy: its helpers start at once,
/// whatever the caller's executor is doing. (With Dispatch's `concurrentPerform`, sixteen Swift tasks on
/// a 16-core host left the shared thread pool saturated by the blocked tasks: each region's helpers came
/// late or never, the caller ran its parts alone while holding every slot, and the throughput fell to
/// 0.31-0.50x of one caller's.)
package final class ComputeWorkers: @unchecked Sendable {
    package static let shared = ComputeWorkers(threads: ComputeSlots.shared.count - 1)

    /// One region's body, shared by the caller and its helpers.
    private final class Region: @unchecked Sendable {
        let body: () -> Void
        let finished = DispatchSemaphore(value: 0)
        init(body: @escaping () -> Void) { self.body = body }
    }

    /// The number of worker threads.
    package let threads: Int
    private var pending: [Region] = []
    private let lock = NSLock()
    private let posted = DispatchSemaphore(value: 0)

    package init(threads: Int) {
        self.threads = max(0, threads)
        for index in 0..<self.threads {
            let thread = Thread { self.serve() }
            thread.name = "QuantizedLinear compute \(index + 1)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Runs `body` on `width` threads at once (this one and `width - 1` workers, at most ``threads``),
    /// returning when every run has finished.
    package func run(width: Int, _ body: () -> Void) {
        let helpers = min(width - 1, threads)
        guard helpers > 0 else {
            body()
            return
        }
        // The workers drop their reference to the region before they signal, so `body` has not escaped
        // when this returns.
        withoutActuallyEscaping(body) { body in
            let region = Region(body: body)
            lock.withLock { pending.append(contentsOf: repeatElement(region, count: helpers)) }
            for _ in 0..<helpers { posted.signal() }
            region.body()
            for _ in 0..<helpers { region.finished.wait() }
        }
    }

    private func serve() {
        while true {
            posted.wait()
            var region: Region? = lock.withLock { pending.removeFirst() }
            let finished = region!.finished
            region!.body()
            region = nil
            finished.signal()
        }
    }
}
