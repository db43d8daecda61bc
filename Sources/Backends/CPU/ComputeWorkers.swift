import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The library's own compute threads: one per slot of ``ComputeSlots`` (one per core), started on first
/// use and kept for the life of the process (a worker parks on a semaphore between jobs; an instance
/// and its threads are never freed).
///
/// Slot `i`'s work runs on worker `i`. A region granted slots `[i, j, ...]` runs its body on those
/// workers (with the caller standing in for the first slot when the grant was made without contention),
/// and an op granted its slots under contention runs whole on its first slot's worker while the caller
/// waits. So however many threads or tasks call the library, kernels run on at most one thread per core,
/// always the same threads: their caches, our scratch buffers and OpenBLAS's stay warm, and a region's
/// helpers start at once whatever the caller's executor is doing. (With Dispatch's `concurrentPerform`,
/// sixteen Swift tasks on a 16-core host left the shared thread pool saturated by the blocked tasks: each
/// region's helpers came late or never, and the throughput fell to 0.31-0.50x of one caller's.) A job
/// runs with the caller's forced kernel path (``CPUKernelPath/withPath(_:_:)``).
package final class ComputeWorkers: @unchecked Sendable {
    package static let shared = ComputeWorkers(threads: ComputeSlots.shared.count)

    /// One job for one worker; `finished` is signalled after the worker has dropped its reference to
    /// the body. The caller of an optional run withdraws a job that no worker has started yet
    /// (``withdraw()``), so a worker that comes late never holds up a region whose parts are all done.
    private final class Job: @unchecked Sendable {
        private var body: (() -> Void)?
        let path: CPUKernelPath?
        let finished = DispatchSemaphore(value: 0)
        private let lock = NSLock()
        init(body: @escaping () -> Void, path: CPUKernelPath?) {
            self.body = body
            self.path = path
        }

        /// The body, for the worker that runs it, or nil when the caller withdrew the job first.
        func start() -> (() -> Void)? {
            lock.withLock {
                defer { body = nil }
                return body
            }
        }

        /// Drops the body if no worker has started it: true when withdrawn (the caller must then not wait
        /// for `finished`, which no one signals).
        func withdraw() -> Bool {
            lock.withLock {
                guard body != nil else { return false }
                body = nil
                return true
            }
        }
    }

    /// A worker's mailbox: the jobs posted to it, in order.
    private final class Mailbox: @unchecked Sendable {
        private var jobs: [Job] = []
        private let lock = NSLock()
        private let posted = DispatchSemaphore(value: 0)

        func post(_ job: Job) {
            lock.withLock { jobs.append(job) }
            posted.signal()
        }

        func next() -> Job {
            ComputeWorkers.waitBriefSpin(posted)
            return lock.withLock { jobs.removeFirst() }
        }
    }

    /// How long a thread keeps polling (yielding between polls) for the semaphore it waits on before it
    /// parks. A parked thread's core may halt, and on a virtual machine waking a halted vCPU took
    /// 100-300 us (M = 64, 1024 x 1024 W8A8: 0.48 ms on two cores, 0.33 ms on one, on the 2-core VM),
    /// while the next region of a layer, or of the next layer, usually comes within tens of
    /// microseconds. Bounded, so an idle worker stops using its core soon after its last job.
    static let spinNanoseconds: UInt64 = 100_000

    /// Waits on `semaphore`: polls it for ``spinNanoseconds``, yielding the core between polls, then
    /// blocks.
    static func waitBriefSpin(_ semaphore: DispatchSemaphore) {
        if semaphore.wait(timeout: .now()) == .success { return }
        let deadline = DispatchTime.now().uptimeNanoseconds + spinNanoseconds
        while DispatchTime.now().uptimeNanoseconds < deadline {
            sched_yield()
            if semaphore.wait(timeout: .now()) == .success { return }
        }
        semaphore.wait()
    }

    private let mailboxes: [Mailbox]

    /// The number of worker threads.
    package var threads: Int { mailboxes.count }

    package init(threads: Int) {
        mailboxes = (0..<max(0, threads)).map { _ in Mailbox() }
        for (index, mailbox) in mailboxes.enumerated() {
            let thread = Thread { Self.serve(mailbox, index: index) }
            thread.name = "ql-compute-\(index)"   // Linux keeps 15 bytes of a thread's name
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Runs `body` once on each worker in `workers` and, when `joining`, once on this thread too, at the
    /// same time; returns when every run has finished. With `optional` (only when joining), the workers'
    /// runs are the caller's helpers, not required: a worker that has not started when the caller's own
    /// run returns is skipped, and never runs the body (for bodies that share out parts of a job, all of
    /// which the caller's run has taken by the time it returns).
    package func run(on workers: some Collection<Int>, joining: Bool, optional: Bool = false, _ body: () -> Void) {
        guard !workers.isEmpty else {
            if joining { body() }
            return
        }
        // Each worker drops its reference to the body before it signals, and a withdrawn job drops it at
        // once, so `body` has not escaped when this returns.
        withoutActuallyEscaping(body) { body in
            let path = CPUKernelPath.forced
            let jobs = workers.map { index in
                let job = Job(body: body, path: path)
                mailboxes[index].post(job)
                return job
            }
            if joining { body() }
            // A caller that ran a share itself waits for peers that started with it: poll briefly. With
            // `optional`, a job that no worker has started yet is withdrawn instead (a parked worker took
            // 40-60 us to wake on the 2-core VM, milliseconds when the machine is loaded). One whose op
            // runs whole on a worker (contention) blocks at once: callers polling beside busy workers took
            // their cores (8 callers on 2 cores: 0.73x of one caller's throughput).
            for job in jobs {
                if joining {
                    if !(optional && job.withdraw()) { Self.waitBriefSpin(job.finished) }
                } else {
                    job.finished.wait()
                }
            }
        }
    }

    /// Runs `body` on worker `index` while this thread waits, and returns its result.
    package func perform<R>(on index: Int, _ body: () throws -> R) throws -> R {
        let outcome = Outcome<R>()
        withoutActuallyEscaping(body) { body in
            run(on: CollectionOfOne(index), joining: false) { outcome.result = Result { try body() } }
        }
        return try outcome.result!.get()
    }

    /// A result handed from a worker back to the waiting caller (the job's semaphore orders the two).
    private final class Outcome<R>: @unchecked Sendable {
        var result: Result<R, Error>?
    }

    /// The index of the worker this thread is, nil on any other thread.
    package static var currentWorker: Int? {
        pthread_getspecific(workerKey).map { Int(bitPattern: $0) - 1 }
    }

    private static let workerKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    private static func serve(_ mailbox: Mailbox, index: Int) {
        pthread_setspecific(workerKey, UnsafeRawPointer(bitPattern: index + 1))
        while true {
            let job = mailbox.next()
            // A withdrawn job has no body and no one waiting for it.
            guard var body = job.start() else { continue }
            CPUKernelPath.$forced.withValue(job.path) { body() }
            body = {}
            job.finished.signal()
        }
    }
}
