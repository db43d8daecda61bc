import Foundation

/// A progress line on stderr: count done, bytes, elapsed time, ETA and the current item.
///
/// On a terminal it is one line redrawn in place (carriage return, erase to end of line) at most ten
/// times a second, never wider than the terminal (one column is left free, so the cursor never wraps
/// and scrolls). Into a file or pipe it is drawn only when forced (`--progress`), as plain text: one
/// line per second at most, each ending in a newline, no escape codes and no carriage returns.
final class ProgressBar {
    /// How the bar is drawn.
    enum Style: Equatable {
        /// Redrawn in place on a terminal `width` columns wide.
        case terminal(width: Int)
        /// Plain lines of at most `width` columns, for files and pipes.
        case plain(width: Int)
        /// Not drawn.
        case off
    }

    let style: Style
    private let write: (String) -> Void
    private let clock: () -> UInt64
    private let start: UInt64
    private var lastDraw: UInt64?
    private var drewInPlace = false

    /// The bar for stderr: in place on a terminal, plain lines into anything else when `forced`, else off.
    convenience init(forced: Bool) {
        self.init(style: Self.style(forced: forced, isTerminal: isatty(STDERR_FILENO) == 1,
                                    terminalWidth: Self.terminalWidth(),
                                    environmentColumns: ProcessInfo.processInfo.environment["COLUMNS"])) {
            FileHandle.standardError.write(Data($0.utf8))
        }
    }

    /// A bar drawn with `write`; `clock` gives nanoseconds (monotonic).
    init(style: Style, clock: @escaping () -> UInt64 = { DispatchTime.now().uptimeNanoseconds },
         write: @escaping (String) -> Void) {
        self.style = style
        self.write = write
        self.clock = clock
        start = clock()
    }

    /// The style for stderr. The width is the terminal's (`TIOCGWINSZ`), else `COLUMNS`, else 80.
    static func style(forced: Bool, isTerminal: Bool, terminalWidth: Int?, environmentColumns: String?) -> Style {
        let width = terminalWidth ?? environmentColumns.flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil } ?? 80
        if isTerminal { return .terminal(width: width) }
        return forced ? .plain(width: width) : .off
    }

    /// The width of the terminal on stderr, if it is one and says.
    static func terminalWidth() -> Int? {
        var size = winsize()
        guard ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
    }

    /// Draws the bar: `done` of `total` items (`unit`), `bytesDone` of `bytesTotal` (0 of 0 leaves bytes
    /// out), `current` item. Skipped when the last draw was too recent, except for the last item.
    func update(done: Int, total: Int, unit: String, bytesDone: Int, bytesTotal: Int, current: String) {
        let interval: UInt64
        let width: Int
        switch style {
        case .off: return
        case .terminal(let columns): (interval, width) = (100_000_000, columns)
        case .plain(let columns): (interval, width) = (1_000_000_000, columns)
        }
        let now = clock()
        if let lastDraw, done < total, now &- lastDraw < interval { return }
        lastDraw = now
        let line = Self.line(done: done, total: total, unit: unit, bytesDone: bytesDone, bytesTotal: bytesTotal,
                             elapsed: Double(now &- start) / 1e9, current: current, width: width - 1)
        if case .terminal = style {
            write("\r" + line + "\u{1B}[K")
            drewInPlace = true
        } else {
            write(line + "\n")
        }
    }

    /// Ends the in-place line (plain lines are already ended).
    func finish() {
        if drewInPlace { write("\n") }
        drewInPlace = false
    }

    /// The bar's text in at most `width` characters: counts, then as room allows a bar of `#` and `.`,
    /// bytes, elapsed and ETA, and the current item (shortened with `...`, control characters shown
    /// as `?` so a tensor name cannot carry escape codes).
    static func line(done: Int, total: Int, unit: String, bytesDone: Int, bytesTotal: Int, elapsed: Double,
                     current: String, width: Int) -> String {
        let current = String(String.UnicodeScalarView(current.unicodeScalars.map {
            $0.properties.generalCategory == .control ? "?" : $0
        }))
        let fraction = bytesTotal > 0 ? Double(bytesDone) / Double(bytesTotal)
            : Double(done) / Double(max(total, 1))
        let eta = fraction > 0 && done < total ? clock(elapsed / fraction - elapsed) : "-"
        var parts = ["\(done)/\(total) \(unit)"]
        if bytesTotal > 0 { parts.append("\(bytes(bytesDone))/\(bytes(bytesTotal))") }
        parts.append("\(clock(elapsed)) elapsed  ETA \(eta)")
        var text = ""
        for part in parts {
            let next = text.isEmpty ? part : text + "  " + part
            if next.count > width { break }
            text = next
        }
        if text.isEmpty { return String(parts[0].prefix(max(width, 0))) }
        let barWidth = min(24, width - text.count - 3 - 14)  // keep 14 columns for the current item
        if barWidth >= 8 {
            let filled = min(barWidth, max(0, Int(fraction * Double(barWidth))))
            text = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: barWidth - filled)
                + "] " + text
        }
        let room = width - text.count - 2
        if room >= 8 && !current.isEmpty {
            text += "  " + (current.count <= room ? current : String(current.prefix(room - 3)) + "...")
        }
        return text
    }

    static func clock(_ seconds: Double) -> String {
        let total = seconds.isFinite ? Int(min(max(seconds, 0), 1e9).rounded()) : 0
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
