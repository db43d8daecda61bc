import Foundation

/// A one-line progress bar on stderr: count done, bytes, elapsed time and ETA, redrawn in place at
/// most ten times a second. Drawn only when stderr is a terminal, unless forced (`--progress`), so
/// logs and pipes stay clean.
final class ProgressBar {
    private let enabled: Bool
    private let start = DispatchTime.now().uptimeNanoseconds
    private var lastDraw: UInt64 = 0
    private var drewSomething = false

    init(forced: Bool) {
        enabled = forced || isatty(STDERR_FILENO) == 1
    }

    /// Redraws the bar: `done` of `total` items (`unit`), `bytesDone` of `bytesTotal`, `current` item.
    func update(done: Int, total: Int, unit: String, bytesDone: Int, bytesTotal: Int, current: String) {
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        guard done == total || now - lastDraw > 100_000_000 else { return }
        lastDraw = now
        let elapsed = Double(now - start) / 1e9
        let fraction = bytesTotal > 0 ? Double(bytesDone) / Double(bytesTotal) : Double(done) / Double(max(total, 1))
        let width = 24
        let filled = min(width, Int(fraction * Double(width)))
        let eta = fraction > 0 && done < total ? Self.clock(elapsed / fraction - elapsed) : "-"
        var line = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            + "\(done)/\(total) \(unit)  \(Self.bytes(bytesDone))/\(Self.bytes(bytesTotal))  "
            + "\(Self.clock(elapsed)) elapsed  ETA \(eta)  \(current)"
        if line.count > 150 { line = String(line.prefix(147)) + "..." }
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        drewSomething = true
    }

    /// Ends the bar's line.
    func finish() {
        if drewSomething { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    static func clock(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        return total >= 3600 ? String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
            : String(format: "%d:%02d", total / 60, total % 60)
    }

    static func bytes(_ count: Int) -> String {
        let value = Double(count)
        if value >= 1_073_741_824 { return String(format: "%.2f GiB", value / 1_073_741_824) }
        if value >= 1_048_576 { return String(format: "%.1f MiB", value / 1_048_576) }
        if value >= 1024 { return String(format: "%.1f KiB", value / 1024) }
        return "\(count) B"
    }
}
