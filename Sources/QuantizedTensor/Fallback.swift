import Foundation
import QLTensor

/// What happens when an op on a quantized tensor has no native handler that accepts it.
public enum FallbackPolicy: String, Sendable, CaseIterable {
    /// Dequantize every quantized operand and run the dense op, silently (still counted).
    case dequantize
    /// Like `dequantize`, and print one line on standard error the first time each
    /// (op, layout, reason) happens.
    case warnOnce
    /// Throw ``TensorError/Code/fallbackForbidden`` instead: for tests and for users who must know
    /// that the quantized path ran.
    case fail

    /// The policy for the current task: the innermost ``withPolicy(_:_:)``, else ``default``.
    public static var current: FallbackPolicy { override ?? FallbackStatistics.shared.defaultPolicy }

    /// The process-wide default (initially `warnOnce`).
    public static var `default`: FallbackPolicy {
        get { FallbackStatistics.shared.defaultPolicy }
        set { FallbackStatistics.shared.defaultPolicy = newValue }
    }

    @TaskLocal static var override: FallbackPolicy?

    /// Runs `body` with `policy` in force for this task and the tasks it creates.
    public static func withPolicy<R>(_ policy: FallbackPolicy, _ body: () throws -> R) rethrows -> R {
        try $override.withValue(policy, operation: body)
    }
}

/// One fallback: which op, for which layout, and why: no handler took it (the operands are then
/// dequantized and the dense op runs), or a backend kernel ran a fallback path of its own.
public struct FallbackEvent: Hashable, Sendable, CustomStringConvertible {
    public let op: Op
    public let layout: String
    public let reason: String

    public init(op: Op, layout: String, reason: String) {
        self.op = op
        self.layout = layout
        self.reason = reason
    }

    public var description: String { "\(op.rawValue) on \(layout): \(reason)" }
}

/// Counters of fallbacks, per (op, layout, reason), for the whole process, plus recorders that
/// collect the events of one task.
public final class FallbackStatistics: @unchecked Sendable {
    public static let shared = FallbackStatistics()

    private let lock = NSLock()
    private var counts: [FallbackEvent: Int] = [:]
    private var warned: Set<FallbackEvent> = []
    private var policy = FallbackPolicy.warnOnce

    final class Recorder: @unchecked Sendable {
        let lock = NSLock()
        var events: [FallbackEvent] = []
    }

    @TaskLocal static var recorder: Recorder?

    var defaultPolicy: FallbackPolicy {
        get { lock.withLock { policy } }
        set { lock.withLock { policy = newValue } }
    }

    /// How many times each fallback has happened in this process.
    public func snapshot() -> [FallbackEvent: Int] { lock.withLock { counts } }

    /// Total fallbacks of `op` (for any layout and reason) in this process.
    public func count(op: Op, layout: String? = nil) -> Int {
        snapshot().filter { $0.key.op == op && (layout == nil || $0.key.layout == layout) }.values.reduce(0, +)
    }

    /// Clears the counters (not the warn-once memory).
    public func reset() { lock.withLock { counts.removeAll() } }

    /// Runs `body` and returns its result with the fallbacks that happened inside it, in this task,
    /// whatever other tasks do meanwhile.
    public static func recording<R>(_ body: () throws -> R) rethrows -> (R, [FallbackEvent]) {
        let recorder = Recorder()
        let result = try $recorder.withValue(recorder, operation: body)
        return (result, recorder.lock.withLock { recorder.events })
    }

    /// Applies the policy to a fallback that is about to happen: counts it, warns, or throws.
    /// The dispatcher calls it for its dequantize-and-run fallback; a handler calls it before running
    /// a fallback path of its own.
    /// - Throws: ``TensorError/Code/fallbackForbidden`` under the `fail` policy.
    public func record(_ event: FallbackEvent) throws {
        let policy = FallbackPolicy.current
        if policy == .fail {
            throw TensorError(.fallbackForbidden, "\(event.op.rawValue) on \(event.layout) would fall back "
                + "(\(event.reason)); the fallback policy is `fail`. Use a supported "
                + "combination, or allow the fallback with FallbackPolicy.withPolicy(.dequantize)")
        }
        let firstTime = lock.withLock { () -> Bool in
            counts[event, default: 0] += 1
            return warned.insert(event).inserted
        }
        if let recorder = Self.recorder { recorder.lock.withLock { recorder.events.append(event) } }
        if policy == .warnOnce && firstTime {
            FileHandle.standardError.write(Data("warning: fallback: \(event)\n".utf8))
        }
    }
}

extension FallbackStatistics {
    /// The reporter handed to backend kernels for one call of `op` on `layout`: each report is
    /// recorded as a fallback event with the kernel's reason.
    package func kernelFallback(op: Op, layout: String) -> KernelFallback {
        KernelFallback { [self] reason in try record(FallbackEvent(op: op, layout: layout, reason: reason)) }
    }
}
