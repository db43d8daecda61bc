import Foundation
import QuantizedLinear
import Testing

/// The built `qlinear` executable, run as a user would run it.
///
/// It is looked for next to the test bundle (SwiftPM puts both in the same build directory), or at
/// `QLINEAR_BINARY`. When it is missing the tests that need it fail under `CI=true`, and elsewhere
/// record a skip note saying to run `swift build`.
enum QLinearBinary {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
        let timedOut: Bool
    }

    static let path: String? = ProcessInfo.processInfo.environment["QLINEAR_BINARY"] ?? executable(named: "qlinear")

    /// The executable `name` this package builds, next to the test bundle, if it is there.
    static func executable(named name: String) -> String? {
        let runner = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: runner).deletingLastPathComponent()
        // On macOS the runner sits inside the .xctest bundle; the executables are next to the bundle.
        while directory.path.contains(".xctest") { directory = directory.deletingLastPathComponent() }
        let candidate = directory.appendingPathComponent(name).path
        return FileManager.default.isExecutableFile(atPath: candidate) ? candidate : nil
    }

    /// Whether the tests that run the binary can run; records a failure under CI when they cannot.
    static var isAvailable: Bool {
        if path != nil { return true }
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            Issue.record("the qlinear binary is missing next to the test bundle; run `swift build` first")
        }
        return false
    }

    /// Starts `qlinear arguments` (or the executable at `program`) in `directory`, stdout and stderr to
    /// files there.
    static func start(_ arguments: [String], in directory: URL, environment: [String: String] = [:],
                      program: String? = nil) throws -> (Process, stdout: URL, stderr: URL) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program ?? path!)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        var variables = ProcessInfo.processInfo.environment
        variables.removeValue(forKey: "COLUMNS")
        process.environment = variables.merging(environment) { $1 }
        let id = UUID().uuidString
        let stdout = directory.appendingPathComponent("stdout-\(id).txt")
        let stderr = directory.appendingPathComponent("stderr-\(id).txt")
        _ = FileManager.default.createFile(atPath: stdout.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderr.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: stdout)
        process.standardError = try FileHandle(forWritingTo: stderr)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return (process, stdout, stderr)
    }

    /// Runs `qlinear arguments` to the end (killed after `timeout` seconds).
    static func run(_ arguments: [String], in directory: URL, environment: [String: String] = [:],
                    timeout: Double = 120, program: String? = nil) throws -> Result {
        let (process, stdout, stderr) = try start(arguments, in: directory, environment: environment,
                                                  program: program)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(2_000) }
        let timedOut = process.isRunning
        if timedOut {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      stdout: (try? String(contentsOf: stdout, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOf: stderr, encoding: .utf8)) ?? "", timedOut: timedOut)
    }

    /// A fresh temporary directory.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qlinear-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A float checkpoint `name` in `directory`: `layers` blocks of an f32 `rows x columns` weight (values
    /// varying with the layer) and a bias, written with the library (fast in a debug build).
    static func checkpoint(_ name: String, in directory: URL, layers: Int = 2, rows: Int = 64, columns: Int = 64)
        throws -> URL {
        let path = directory.appendingPathComponent(name)
        var tensors: [(name: String, tensor: Tensor)] = []
        for layer in 0..<layers {
            let values = (0..<rows * columns).map { Float(($0 + layer) % 17 - 8) / 8 }
            tensors.append(("blocks.\(layer).linear.weight", try Tensor(values, shape: [rows, columns])))
            tensors.append(("blocks.\(layer).linear.bias", try Tensor(zeros: [rows])))
        }
        try SafetensorsWriter.write(tensors, to: path.path)
        return path
    }

    /// The checkpoint of ``checkpoint(_:in:layers:rows:columns:)`` with every weight quantized to
    /// block-wise INT8 (ComfyUI layout), for `export`.
    static func quantizedCheckpoint(_ name: String, in directory: URL, layers: Int, rows: Int, columns: Int)
        throws -> URL {
        let path = directory.appendingPathComponent(name)
        var checkpoint = ComfyCheckpoint()
        let layout = try BlockWiseINT8Layout.weight(blockSize: 128)
        for layer in 0..<layers {
            let values = (0..<rows * columns).map { Float(($0 + layer) % 17 - 8) / 8 }
            checkpoint["blocks.\(layer).linear.weight"] = .quantized(
                try QuantizedTensor.fromFloat(try Tensor(values, shape: [rows, columns]), layout: layout))
        }
        try checkpoint.write(to: path.path)
        return path
    }

    /// The hidden temporaries (`.NAME.*.tmp`) in `directory`.
    static func temporaries(in directory: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .filter { $0.hasPrefix(".") && $0.hasSuffix(".tmp") }
    }
}
