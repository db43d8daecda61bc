/// What a conformance run checked and what failed; a test asserts ``failures`` is empty.
///
/// ```swift
/// let report = LayoutConformance(weightLayout: MyLayout(), device: .cpu).run()
/// #expect(report.failures.isEmpty, "\(report)")
/// ```
public struct ConformanceReport: Sendable, CustomStringConvertible {
    /// One line per check that ran, with its measured error where it has one.
    public private(set) var checks: [String] = []
    /// One line per check that failed, saying what was expected and what was measured.
    public private(set) var failures: [String] = []

    public var isPassing: Bool { failures.isEmpty }

    mutating func pass(_ check: String) { checks.append(check) }

    mutating func fail(_ check: String, _ why: String) {
        checks.append(check + ": FAILED")
        failures.append("\(check): \(why)")
    }

    /// Records `check` as passed when `condition` holds, else failed with `why`.
    mutating func expect(_ condition: Bool, _ check: String, _ why: @autoclosure () -> String) {
        if condition { pass(check) } else { fail(check, why()) }
    }

    public var description: String {
        (failures.isEmpty ? ["\(checks.count) checks passed"]
            : ["\(failures.count) of \(checks.count) checks failed:"] + failures.map { "  - " + $0 })
            .joined(separator: "\n")
    }
}
