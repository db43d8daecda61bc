import Testing
@testable import qlinear

/// A progress bar drawn into an array, on a clock the test moves.
private final class Recorder {
    var output: [String] = []
    var now: UInt64 = 0

    func bar(_ style: ProgressBar.Style) -> ProgressBar {
        ProgressBar(style: style, clock: { [unowned self] in now }, write: { [unowned self] in output.append($0) })
    }
}

@Suite("qlinear's progress bar")
struct ProgressBarTests {
    static let longName = "model.diffusion_model.blocks.29.cross_attn.k_img.weight_with_a_very_long_suffix"

    @Test("a line never exceeds its width, whatever the counts and names",
          arguments: [20, 40, 60, 79, 119, 200])
    func fitsWidth(width: Int) {
        for (done, total) in [(0, 1), (3, 16), (999_999, 1_000_000), (16, 16)] {
            for current in ["", "blocks.0", Self.longName] {
                let line = ProgressBar.line(done: done, total: total, unit: "tensors", bytesDone: done * 3 << 20,
                                            bytesTotal: total * 3 << 20, elapsed: 12.5, current: current, width: width)
                #expect(line.count <= width, "\(line.count) > \(width): \(line)")
                #expect(line.hasPrefix("[") || line.hasPrefix("\(done)/\(total)") || width < 40, "\(line)")
            }
        }
    }

    @Test("on 80 columns every piece fits with the name shortened; on a wide terminal the name is whole")
    func pieces() {
        let narrow = ProgressBar.line(done: 3, total: 16, unit: "tensors", bytesDone: 3 << 20, bytesTotal: 16 << 20,
                                      elapsed: 5, current: Self.longName, width: 79)
        #expect(narrow.contains("3/16 tensors") && narrow.contains("3.0 MiB/16.0 MiB") && narrow.contains("ETA"))
        #expect(narrow.hasSuffix("...") && narrow.hasPrefix("[#") && narrow.contains(".] 3/16 tensors"))
        let wide = ProgressBar.line(done: 3, total: 16, unit: "tensors", bytesDone: 3 << 20, bytesTotal: 16 << 20,
                                    elapsed: 5, current: Self.longName, width: 199)
        #expect(wide.hasSuffix(Self.longName))
        let noBytes = ProgressBar.line(done: 1, total: 2, unit: "tensors", bytesDone: 0, bytesTotal: 0, elapsed: 1,
                                       current: "x", width: 79)
        #expect(!noBytes.contains(" B/") && noBytes.contains("1/2 tensors"))
    }

    @Test("control characters in a name are shown as ?, so no escape code gets through")
    func controlCharacters() {
        let line = ProgressBar.line(done: 1, total: 2, unit: "tensors", bytesDone: 0, bytesTotal: 0, elapsed: 1,
                                    current: "bad\u{1B}[2Jname\r\n", width: 79)
        #expect(!line.contains("\u{1B}") && !line.contains("\r") && !line.contains("\n"))
        #expect(line.hasSuffix("bad?[2Jname??"))
    }

    @Test("on a terminal: redrawn in place, at most ten times a second, one newline at the end")
    func terminal() {
        let recorder = Recorder()
        let bar = recorder.bar(.terminal(width: 80))
        for step in 1...10 {
            recorder.now += 30_000_000  // 30 ms apart: only every fourth draw is due
            bar.update(done: step, total: 10, unit: "tensors", bytesDone: step, bytesTotal: 10, current: "t\(step)")
        }
        bar.finish()
        #expect(recorder.output.count == 4 + 1)  // steps 1, 5, 9 and the last (10), then the newline
        for draw in recorder.output.dropLast() {
            #expect(draw.hasPrefix("\r") && draw.hasSuffix("\u{1B}[K") && !draw.contains("\n"))
            #expect(draw.count - 4 <= 79)
        }
        #expect(recorder.output.last == "\n")
        #expect(recorder.output[recorder.output.count - 2].contains("10/10 tensors"))
    }

    @Test("into a file: plain lines at most once a second, no escape codes or carriage returns")
    func plain() {
        let recorder = Recorder()
        let bar = recorder.bar(.plain(width: 80))
        for step in 1...30 {
            recorder.now += 100_000_000
            bar.update(done: step, total: 30, unit: "tensors", bytesDone: 0, bytesTotal: 0,
                       current: Self.longName)
        }
        bar.finish()
        #expect(recorder.output.count == 4)  // 0.1 s, 1.1 s, 2.1 s, and the last at 3.0 s
        for line in recorder.output {
            #expect(line.hasSuffix("\n") && line.filter { $0 == "\n" }.count == 1)
            #expect(!line.contains("\u{1B}") && !line.contains("\r"))
            #expect(line.count - 1 <= 79)
        }
        #expect(recorder.output.last!.hasPrefix("[########################] 30/30 tensors"))
    }

    @Test("the style: in place on a terminal, plain lines when forced into a file, else nothing")
    func style() {
        #expect(ProgressBar.style(forced: false, isTerminal: true, terminalWidth: 132, environmentColumns: nil)
            == .terminal(width: 132))
        #expect(ProgressBar.style(forced: true, isTerminal: false, terminalWidth: nil, environmentColumns: "100")
            == .plain(width: 100))
        #expect(ProgressBar.style(forced: true, isTerminal: false, terminalWidth: nil, environmentColumns: "junk")
            == .plain(width: 80))
        #expect(ProgressBar.style(forced: false, isTerminal: false, terminalWidth: nil, environmentColumns: nil)
            == .off)
        let recorder = Recorder()
        let bar = recorder.bar(.off)
        bar.update(done: 1, total: 1, unit: "x", bytesDone: 0, bytesTotal: 0, current: "")
        bar.finish()
        #expect(recorder.output.isEmpty)
    }
}
