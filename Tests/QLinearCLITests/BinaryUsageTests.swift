import Foundation
import Testing

@Suite("The qlinear binary: usage errors, help and version")
struct BinaryUsageTests {
    @Test("a command line that does not fit exits 64 with the message and the usage on stderr, nothing on stdout",
          arguments: [
              (["convert", "in.st", "out.st", "--exlude", "blocks.3.*"], "did you mean `--exclude`?",
               "usage: qlinear convert"),
              (["convert", "in.st", "out.st", "--format"], "--format needs a value", "usage: qlinear convert"),
              (["convert", "in.st", "out.st", "--block-size", "4611686018427387904"], "--block-size must be",
               "usage: qlinear convert"),
              (["convert", "in.st"], "convert takes IN OUT (2), got 1", "usage: qlinear convert"),
              (["demo", "--rows", "-1"], "--rows must be 1 to 16384, got -1", "usage: qlinear demo"),
              (["demo", "--rows", "99999999999999999999"], "expects a whole number", "usage: qlinear demo"),
              (["demo", "--rows", "abc"], "expects a whole number", "usage: qlinear demo"),
              (["--rows", "0"], "--rows must be", "usage: qlinear demo"),
              (["demo", "--repeats"], "--repeats needs a value", "usage: qlinear demo"),
              (["synthesize", "x.st", "--seed", "-1"], "--seed must be at least 0", "usage: qlinear synthesize"),
              (["synthesize", "x.st", "--rows", "1048576", "--columns", "1048576"], "at most 1073741824",
               "usage: qlinear synthesize"),
              (["export", "a", "b", "--dtype", "f8"], "--dtype must be one of", "usage: qlinear export"),
              (["bench", "--rows", "-5"], "--rows must be", "usage: qlinear bench"),
              (["bench", "--m", "64,0"], "expects positive integers separated by commas", "usage: qlinear bench"),
              (["bench", "--shapes", "3072x"], "expects N x K pairs separated by commas", "usage: qlinear bench"),
              (["bench-cuda", "--devce", "1"], "did you mean `--device`?", "usage: qlinear bench-cuda"),
              (["embed", "--model", "m", "--input", "s.txt", "--quantize-embeddings"],
               "--quantize-embeddings needs --format", "usage: qlinear embed"),
              (["inspect", "a", "--verbose"], "unknown option `--verbose`", "usage: qlinear inspect"),
              (["convrt", "a", "b"], "unknown command `convrt`; did you mean `convert`?", "commands:"),
              (["help", "convrt"], "unknown command `convrt`", "commands:"),
              (["--version", "extra"], "--version takes no arguments", "commands:"),
          ])
    func usageErrors(arguments: [String], message: String, usage: String) throws {
        guard QLinearBinary.isAvailable else { return }
        let directory = try QLinearBinary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try QLinearBinary.run(arguments, in: directory, timeout: 30)
        #expect(result.status == 64, "\(arguments): exit \(result.status), stderr \(result.stderr)")
        #expect(result.stderr.hasPrefix("qlinear: ") && result.stderr.contains(message), "\(result.stderr)")
        #expect(result.stderr.contains(usage), "\(result.stderr)")
        #expect(result.stdout.isEmpty, "\(result.stdout)")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("x.st").path))
    }

    @Test("--help, -h, help and `help help` list every subcommand on stdout and exit 0",
          arguments: [["--help"], ["-h"], ["help"], ["help", "help"]])
    func topHelp(arguments: [String]) throws {
        guard QLinearBinary.isAvailable else { return }
        let directory = try QLinearBinary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try QLinearBinary.run(arguments, in: directory, timeout: 30)
        #expect(result.status == 0 && result.stderr.isEmpty, "\(result.stderr)")
        for command in ["demo", "bench", "bench-cuda", "convert", "inspect", "export", "synthesize", "help"] {
            #expect(result.stdout.contains("\n  \(command) "), "\(arguments) does not list \(command)")
        }
        #expect(result.stdout.contains("--version"))
    }

    @Test("`help COMMAND` and `COMMAND --help` print that command's usage and options",
          arguments: [(["help", "convert"], "--exclude P"), (["convert", "--help"], "--exclude P"),
                      (["convert", "-h"], "--lora-strength S"), (["help", "export"], "--dtype bf16|f16|f32"),
                      (["inspect", "--help"], "usage: qlinear inspect FILE"), (["demo", "--help"], "--rows M"),
                      (["bench", "--help"], "--json FILE"), (["help", "bench-cuda"], "--device N"),
                      (["synthesize", "--help"], "--seed S")])
    func commandHelp(arguments: [String], expected: String) throws {
        guard QLinearBinary.isAvailable else { return }
        let directory = try QLinearBinary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try QLinearBinary.run(arguments, in: directory, timeout: 30)
        #expect(result.status == 0 && result.stderr.isEmpty, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("usage: qlinear ") && result.stdout.contains(expected), "\(result.stdout)")
        #expect(result.stdout.contains("-h, --help"))
    }

    @Test("--version prints the version and exits at once (it used to run the demo)")
    func version() throws {
        guard QLinearBinary.isAvailable else { return }
        let directory = try QLinearBinary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try QLinearBinary.run(["--version"], in: directory, timeout: 10)
        #expect(!result.timedOut)
        #expect(result.status == 0 && result.stdout == "qlinear 0.1.0\n" && result.stderr.isEmpty)
    }

    @Test("bench-concurrency runs every path with threads and tasks and prints each round's ratio to one caller")
    func benchConcurrencyRows() throws {
        guard QLinearBinary.isAvailable else { return }
        let directory = try QLinearBinary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try QLinearBinary.run(["bench-concurrency", "--rows", "2", "--n", "64", "--k", "256",
                                            "--calls", "4", "--repeats", "3", "--callers", "3"],
                                           in: directory, timeout: 120)
        #expect(result.status == 0 && result.stderr.isEmpty, "\(result.stderr)")
        let rows = result.stdout.split(separator: "\n").map(String.init)
        for path in ["float32 (OpenBLAS)", "INT8 W8A8", "INT8 weight-only"] {
            for callers in ["1 threads", "3 threads", "1 tasks", "3 tasks"] {
                let row = rows.first { $0.hasPrefix(path) && $0.contains(" \(callers) ") }
                #expect(row != nil, "no row for \(path), \(callers):\n\(result.stdout)")
                // One caller's own rounds are its base: every ratio is exactly 1.
                if callers.hasPrefix("1 "), let row { #expect(row.contains("1.00x [1.00, 1.00]"), "\(row)") }
                if let row { #expect(row.range(of: #"[0-9.]+x \[[0-9.]+, [0-9.]+\]"#, options: .regularExpression) != nil) }
            }
        }
    }
}
