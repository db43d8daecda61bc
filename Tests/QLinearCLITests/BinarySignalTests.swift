import Foundation
import Testing

@Suite("The qlinear binary: SIGINT and SIGTERM while writing remove the temporary file", .serialized)
struct BinarySignalTests {
    @Test("a signal while the output is being written: exit 128 + signal, no temporary left, no output",
          arguments: [("convert", SIGINT), ("convert", SIGTERM), ("export", SIGTERM), ("export", SIGINT),
                      ("synthesize", SIGINT)])
    func signalDuringWrite(command: String, signal: Int32) throws {
        guard QLinearBinary.isAvailable else { return }
        let directory = try QLinearBinary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // Big enough that writing takes a good fraction of a second even in a release build.
        switch command {
        case "convert": _ = try QLinearBinary.checkpoint("in.st", in: directory, layers: 8, rows: 512, columns: 512)
        case "export": _ = try QLinearBinary.quantizedCheckpoint("q.st", in: directory, layers: 16, rows: 512,
                                                                  columns: 512)
        default: break
        }
        let arguments = switch command {
        case "convert": ["convert", "in.st", "out.st"]
        case "export": ["export", "q.st", "out.st", "--dtype", "f32"]
        default: ["synthesize", "out.st", "--layers", "16", "--rows", "1024", "--columns", "1024"]
        }
        let (process, _, stderr) = try QLinearBinary.start(arguments, in: directory)
        // Wait until the temporary output exists, then signal.
        let deadline = Date().addingTimeInterval(60)
        var sawTemporary = false
        while process.isRunning && Date() < deadline {
            if QLinearBinary.temporaries(in: directory).contains(where: { $0.hasPrefix(".out.st.ql-") }) {
                sawTemporary = true
                break
            }
            usleep(1_000)
        }
        #expect(sawTemporary, "the temporary never appeared before \(command) ended")
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 128 + signal,
                "exit \(process.terminationStatus): \((try? String(contentsOf: stderr, encoding: .utf8)) ?? "")")
        #expect(QLinearBinary.temporaries(in: directory).filter { $0.hasPrefix(".out.st") }.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("out.st").path))
    }

    @Test("a temporary left by a killed run (SIGKILL) is removed by the next run writing the same output")
    func staleTemporaryAfterKill() throws {
        guard QLinearBinary.isAvailable else { return }
        let directory = try QLinearBinary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try QLinearBinary.checkpoint("in.st", in: directory, layers: 8, rows: 512, columns: 512)
        let (process, _, _) = try QLinearBinary.start(["convert", "in.st", "out.st"], in: directory)
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline
            && !QLinearBinary.temporaries(in: directory).contains(where: { $0.hasPrefix(".out.st.ql-") }) {
            usleep(1_000)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let left = QLinearBinary.temporaries(in: directory).filter { $0.hasPrefix(".out.st.ql-") }
        #expect(left.count == 1, "SIGKILL cannot be caught, so the temporary stays: \(left)")
        // Someone else's file of a similar name is not ours and stays.
        let foreign = directory.appendingPathComponent(".out.st.abc123.tmp")
        try Data("not ours".utf8).write(to: foreign)
        let result = try QLinearBinary.run(["synthesize", "out.st", "--layers", "1", "--rows", "8", "--columns", "8"],
                                           in: directory)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(QLinearBinary.temporaries(in: directory).sorted() == [".out.st.abc123.tmp"])
    }
}
