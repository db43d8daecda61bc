import Foundation
@testable import QLCPU
import QuantizedLinear
import Testing

/// Many callers at once (issue 12, item 15): results identical to one caller's, and never more compute
/// threads than cores.
@Suite(.serialized, .timeLimit(.minutes(1))) struct ConcurrencyTests {
    /// Shared operands of every op (read by all callers at once).
    struct Operands: @unchecked Sendable {
        let x: [Tensor]            // decode-sized and GEMM-sized inputs
        let w: Tensor
        let int8: QuantizedTensor
        let fp8: QuantizedTensor
        let activations: [QuantizedTensor]
        let bias: Tensor
        let delta: Tensor

        init() throws {
            x = try [3, 40].map { try Tensor.randomNormal([$0, 256], dtype: .bfloat16, seed: UInt64($0)) }
            w = try Tensor.randomNormal([96, 256], standardDeviation: 0.06, seed: 5)
            int8 = try QuantizedTensor.fromFloat(w, layout: BlockWiseINT8Layout.weight(blockSize: 64))
            fp8 = try QuantizedTensor.fromFloat(w, layout: TensorCoreFP8Layout.dynamic)
            activations = try x.map { try QuantizedTensor.fromFloat($0, layout: BlockWiseINT8Layout.activation()) }
            bias = try Tensor.randomNormal([96], seed: 6)
            delta = try Tensor.randomNormal([96, 256], standardDeviation: 0.01, seed: 7)
        }
    }

    /// Every public op on the shared operands, as bit patterns.
    static func everyOp(_ o: Operands) throws -> [[UInt32]] {
        var results: [AnyTensor] = []
        let weightOnly = LinearOptions(floatInput: .dequantizeWeight)
        for (x, qx) in zip(o.x, o.activations) {
            results += [
                try linear(x, o.w, bias: o.bias), try linear(x, o.int8, bias: o.bias), try linear(qx, o.int8),
                try linear(x, o.int8, options: weightOnly), try linear(x, o.fp8, bias: o.bias),
                try linear(x, o.fp8, options: weightOnly), try gelu(qx), try gelu(x, approximation: .tanh),
                try add(x, x), try matmul(x, transpose(o.w)), try transpose(qx),
            ]
        }
        results += [
            try applyWeightUpdate(o.int8, delta: o.delta, strength: 0.5),
            try applyWeightUpdate(o.fp8, delta: o.delta), .dense(try dequantize(o.int8, to: .bfloat16)),
            .dense(try dequantize(o.fp8)), .quantized(try QuantizedTensor.fromFloat(o.w, layout: BlockWiseINT8Layout.weight())),
        ]
        return try results.map { try $0.dequantized().floats().map(\.bitPattern) }
    }

    @Test func concurrentTasksGetTheSingleCallerResults() async throws {
        let operands = try Operands()
        let expected = try Self.everyOp(operands)
        try await withThrowingTaskGroup(of: [[UInt32]].self) { group in
            for _ in 0..<8 { group.addTask { try Self.everyOp(operands) } }
            for try await result in group { #expect(result == expected) }
        }
    }

    @Test func concurrentThreadsGetTheSingleCallerResults() throws {
        let operands = try Operands()
        let expected = try Self.everyOp(operands)
        let results = ResultList()
        let group = DispatchGroup()
        for _ in 0..<6 {
            group.enter()
            Thread {
                results.append(Result { try Self.everyOp(operands) })
                group.leave()
            }.start()
        }
        group.wait()
        #expect(results.all.count == 6)
        for result in results.all { #expect(try result.get() == expected) }
    }

    /// However many callers, the kernels' regions never run more threads than ``ComputeSlots`` has slots.
    @Test func computeThreadsNeverExceedTheCores() {
        let meter = ConcurrencyMeter()
        let group = DispatchGroup()
        for _ in 0..<8 {
            group.enter()
            Thread {
                for _ in 0..<20 {
                    CPUKernels.parallelRanges(count: 64) { _ in meter.measure { usleep(200) } }
                }
                group.leave()
            }.start()
        }
        group.wait()
        #expect(meter.peak >= 1 && meter.peak <= ComputeSlots.shared.count, "peak \(meter.peak)")
        #expect(everySlotComesBack())
    }

    /// A region inside a region runs on its thread (no second acquisition, so no deadlock) and covers
    /// its range exactly once.
    @Test func nestedRegionsCoverTheirRangesWithoutDeadlock() {
        let covered = ResultList()
        CPUKernels.parallelRanges(count: 8) { outer in
            for _ in outer {
                CPUKernels.parallelRanges(count: 100, minimumPerThread: 1) { inner in covered.add(inner.count) }
            }
        }
        #expect(covered.total == 800)
    }

    @Test func aLoneRequestGetsWhatItCanUseUpToTheCores() {
        let slots = ComputeSlots(count: 3)
        let two = slots.acquire(upTo: 2)
        #expect(two.slots == 2)
        let small = slots.acquire(upTo: 0)
        #expect(small.slots == 1)
        #expect(slots.freeCount == 0)
        slots.release(two)
        slots.release(small)
        let all = slots.acquire(upTo: 5)
        #expect(all.slots == 3)
        slots.release(all)
        #expect(slots.freeCount == 3 && slots.waitingCount == 0)
    }

    /// Requests that want several slots share the cores: each is granted `count / c` (at least one) with
    /// `c` such requests in flight, itself included, and a lone request gets every core again.
    @Test func competingRequestsShareTheCores() {
        let slots = ComputeSlots(count: 4)
        let first = slots.acquire(upTo: 4)
        #expect(first.slots == 4)
        let second = QueuedRequest(slots, upTo: 4)
        slots.release(first)
        let secondGrant = second.granted()
        #expect(secondGrant.slots == 2, "two competitors on four cores: two each")
        let third = slots.acquire(upTo: 4)
        #expect(third.slots == 2 && slots.freeCount == 0)
        slots.release(secondGrant)
        slots.release(third)
        let alone = slots.acquire(upTo: 4)
        #expect(alone.slots == 4)
        slots.release(alone)
        #expect(slots.freeCount == 4 && slots.waitingCount == 0)
    }

    /// Idle slots are lent without waiting only while nobody waits, and lent slots do not compete.
    @Test func idleSlotsAreLentOnlyWhileNobodyWaits() {
        let slots = ComputeSlots(count: 3)
        let small = slots.acquire(upTo: 1)
        let lent = slots.borrowIdle(upTo: 5)
        #expect(lent.slots == 2 && slots.freeCount == 0)
        slots.release(lent)
        #expect(slots.borrowIdle(upTo: 0).slots == 0)
        slots.release(small)
        let all = slots.acquire(upTo: 3)
        let big = QueuedRequest(slots, upTo: 2)
        #expect(slots.borrowIdle(upTo: 1).slots == 0, "a request is waiting")
        slots.release(all)
        let bigGrant = big.granted()
        #expect(bigGrant.slots == 1, "two competitors on three cores: one each")
        slots.release(bigGrant)
        #expect(slots.freeCount == 3)
    }

    /// A region inside an op's hold of one slot widens onto a core that nobody else uses.
    @Test func aRegionInsideASmallHoldUsesIdleCores() throws {
        #expect(everySlotComesBack())
        let meter = ConcurrencyMeter()
        try ComputeSlots.holding(upTo: 1) {
            #expect(ComputeSlots.heldByThisThread == 1)
            CPUKernels.parallelRanges(count: 64) { _ in meter.measure { usleep(2_000) } }
        }
        let cores = ComputeSlots.shared.count
        #expect(meter.peak >= min(2, cores) && meter.peak <= cores, "peak \(meter.peak) on \(cores) cores")
        #expect(everySlotComesBack())
    }

    /// `run` runs its body once on each named worker (and once on the caller when joining), all at once,
    /// and returns only when every run has finished; `perform` runs on the named worker and hands back
    /// its result or error.
    /// An optional run (a region's helpers) does not wait for a worker that has not started its job: the
    /// caller's own run returns, the job is withdrawn, and the worker skips it when it gets to it.
    @Test func optionalRunsSkipAWorkerThatHasNotStarted() throws {
        let workers = ComputeWorkers(threads: 1)
        let busy = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = try? workers.perform(on: 0) {
                busy.signal()
                release.wait()
            }
            done.signal()
        }
        busy.wait()
        let runs = ResultList()
        let returned = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            workers.run(on: [0], joining: true, optional: true) { runs.add(1) }
            returned.signal()
        }
        // Waiting for the busy worker would take until `release` (never, without this timeout).
        let returnedAlone = returned.wait(timeout: .now() + 2) == .success
        #expect(returnedAlone && runs.total == 1, "the optional run waited for a busy worker")
        release.signal()
        done.wait()
        if !returnedAlone { returned.wait() }
        // The worker reaches this job only after the withdrawn one.
        #expect(try workers.perform(on: 0) { runs.total } == 1)
        // Not optional: the run waits for the worker's share.
        workers.run(on: [0], joining: true) { runs.add(1) }
        #expect(runs.total == 3)
    }

    @Test func workersRunJobsOnTheNamedWorkers() throws {
        let workers = ComputeWorkers(threads: 3)
        let meter = ConcurrencyMeter()
        let runs = ResultList()
        let caller = Thread.current
        let onCaller = ResultList()
        workers.run(on: [0, 1, 2], joining: true) {
            meter.measure { usleep(20_000) }
            runs.add(1)
            if Thread.current == caller { onCaller.add(1) }
        }
        #expect(runs.total == 4 && meter.peak == 4 && onCaller.total == 1)
        workers.run(on: [2], joining: false) {
            runs.add(1)
            if Thread.current == caller { onCaller.add(1) }
        }
        workers.run(on: [Int](), joining: true) { runs.add(1) }
        #expect(runs.total == 6 && onCaller.total == 1)
        #expect(try workers.perform(on: 1) { ComputeWorkers.currentWorker } == 1)
        #expect(ComputeWorkers.currentWorker == nil)
        #expect(throws: TensorError.self) {
            try workers.perform(on: 0) { throw TensorError(.invalidArgument, "from the worker") }
        }
    }

    /// An op granted its slots while another op competes runs on its first slot's worker thread (not on
    /// the caller's, so however many callers take turns only the workers run kernels), with the caller's
    /// forced kernel path.
    @Test func aContendedOpRunsOnItsSlotsWorkerWithTheCallersPath() throws {
        let cores = ComputeSlots.shared.count
        guard cores > 1 else {
            // One core: no request competes, every op runs on its caller.
            #expect(try ComputeSlots.holding(upTo: 2) { ComputeSlots.heldGrant?.contended } == false)
            return
        }
        let inFirst = DispatchSemaphore(value: 0)
        let releaseFirst = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        group.enter()
        Thread {
            _ = try? ComputeSlots.holding(upTo: cores) {
                inFirst.signal()
                releaseFirst.wait()
            }
            group.leave()
        }.start()
        inFirst.wait()
        let seen = ObservationBox()
        group.enter()
        Thread {
            let observed = try? CPUKernelPath.withPath(.portable) {
                try ComputeSlots.holding(upTo: 2) { (ComputeWorkers.currentWorker, CPUKernelPath.current) }
            }
            seen.setObservation(observed)
            group.leave()
        }.start()
        while ComputeSlots.shared.waitingCount < 1 { usleep(100) }
        releaseFirst.signal()
        group.wait()
        #expect(seen.observation != nil, "the second op did not run")
        #expect(seen.observation?.worker != nil, "the op ran on its caller's thread")
        #expect(seen.observation?.path == .portable)
        #expect(everySlotComesBack())
    }

    /// A region run from a Swift task gets all its helpers even while the other threads of the
    /// cooperative pool are blocked (here in a semaphore): the workers are threads of their own.
    @Test func workersComeWhileTasksBlockTheCooperativePool() async {
        let width = max(2, ComputeSlots.shared.count)
        let workers = ComputeWorkers(threads: width - 1)
        let blocked = DispatchSemaphore(value: 0)
        let started = ResultList()
        let meter = ConcurrencyMeter()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<(width - 1) {
                group.addTask {
                    started.add(1)
                    blocked.wait()
                }
            }
            group.addTask {
                while started.total < width - 1 { usleep(1_000) }
                workers.run(on: 0..<(width - 1), joining: true) { meter.measure { usleep(20_000) } }
                for _ in 0..<(width - 1) { blocked.signal() }
            }
        }
        #expect(meter.peak == width, "peak \(meter.peak) of \(width)")
    }

    /// The held-slot integral grows by the slots in use times the time they are held, and not at all
    /// while every slot is free.
    @Test func heldSlotSecondsIntegratesTheSlotsInUse() {
        let slots = ComputeSlots(count: 3)
        let start = slots.heldSlotSeconds
        let grant = slots.acquire(upTo: 2)
        #expect(grant.slots == 2)
        Thread.sleep(forTimeInterval: 0.05)
        slots.release(grant)
        let afterHold = slots.heldSlotSeconds
        #expect(afterHold - start >= 2 * 0.05)
        Thread.sleep(forTimeInterval: 0.02)
        #expect(slots.heldSlotSeconds == afterHold)
    }

    /// An op's hold covers every region it enters: they run on the held slots without queueing again
    /// (with every slot held, queueing would never return), a nested hold adds nothing, and the slots
    /// come back when the hold ends.
    @Test func regionsInsideAHoldUseItsSlots() throws {
        let slots = ComputeSlots.shared
        let covered = ResultList()
        try ComputeSlots.holding(upTo: slots.count) {
            // All the cores, or this op's fair share of them while another suite's kernels compete.
            let held = ComputeSlots.heldByThisThread
            #expect(held >= 1 && held <= slots.count)
            for _ in 0..<3 {
                CPUKernels.parallelRanges(count: 64) { range in covered.add(range.count) }
            }
            try ComputeSlots.holding(upTo: 1) { #expect(ComputeSlots.heldByThisThread == held) }
        }
        #expect(covered.total == 3 * 64)
        #expect(ComputeSlots.heldByThisThread == 0)
        #expect(everySlotComesBack())
    }

    /// Requests are granted in arrival order: a request for two slots (its share, being the only one
    /// that competes) waits for both rather than starting on one, and a later request for one slot does
    /// not overtake it.
    @Test func requestsAreGrantedInArrivalOrder() {
        let slots = ComputeSlots(count: 2)
        let small = slots.acquire(upTo: 1)
        #expect(small.slots == 1)
        let order = ResultList()
        let group = DispatchGroup()
        func request(_ wanted: Int) {
            group.enter()
            Thread {
                let grant = slots.acquire(upTo: wanted)
                order.add(wanted * 10 + grant.slots)
                order.record(wanted)
                slots.release(grant)
                group.leave()
            }.start()
        }
        request(2)
        while slots.waitingCount < 1 { usleep(100) }
        request(1)
        while slots.waitingCount < 2 { usleep(100) }
        usleep(20_000)
        #expect(order.recorded.isEmpty, "one slot was free, but the request for two arrived first")
        slots.release(small)
        group.wait()
        #expect(order.recorded == [2, 1])
        #expect(order.total == 22 + 11)
        #expect(slots.freeCount == 2 && slots.waitingCount == 0)
    }
}

/// Whether every slot of the shared ``ComputeSlots`` is free again within ten seconds (other suites'
/// kernels may hold some for a moment, and a request made now would only get its fair share beside
/// them: this waits until none is held; a leaked slot never comes back).
private func everySlotComesBack() -> Bool {
    let slots = ComputeSlots.shared
    let deadline = DispatchTime.now().uptimeNanoseconds + 10_000_000_000
    while slots.freeCount < slots.count {
        guard DispatchTime.now().uptimeNanoseconds < deadline else { return false }
        usleep(1_000)
    }
    return true
}

/// A request for slots made on another thread, returned once it waits in the queue.
private final class QueuedRequest: @unchecked Sendable {
    private var grant: ComputeSlots.Grant?
    private let done = DispatchGroup()

    init(_ slots: ComputeSlots, upTo wanted: Int) {
        let waitingBefore = slots.waitingCount
        done.enter()
        Thread {
            self.grant = slots.acquire(upTo: wanted)
            self.done.leave()
        }.start()
        while slots.waitingCount <= waitingBefore { usleep(100) }
    }

    /// Waits until the request is granted and returns its grant.
    func granted() -> ComputeSlots.Grant {
        done.wait()
        return grant!
    }
}

/// What an op run on another thread saw.
private final class ObservationBox: @unchecked Sendable {
    private let lock = NSLock()
    private var seen: (worker: Int?, path: CPUKernelPath)?
    func setObservation(_ observed: (Int?, CPUKernelPath)?) { lock.withLock { seen = observed.map { ($0.0, $0.1) } } }
    var observation: (worker: Int?, path: CPUKernelPath)? { lock.withLock { seen } }
}

private final class ConcurrencyMeter: @unchecked Sendable {
    private let lock = NSLock()
    private var active = 0
    private(set) var peak = 0

    func measure(_ body: () -> Void) {
        lock.withLock {
            active += 1
            peak = max(peak, active)
        }
        body()
        lock.withLock { active -= 1 }
    }
}

private final class ResultList: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Result<[[UInt32]], Error>] = []
    private var sum = 0
    private var sequence: [Int] = []
    func append(_ result: Result<[[UInt32]], Error>) { lock.withLock { results.append(result) } }
    func add(_ value: Int) { lock.withLock { sum += value } }
    func record(_ value: Int) { lock.withLock { sequence.append(value) } }
    var recorded: [Int] { lock.withLock { sequence } }
    var all: [Result<[[UInt32]], Error>] { lock.withLock { results } }
    var total: Int { lock.withLock { sum } }
}
