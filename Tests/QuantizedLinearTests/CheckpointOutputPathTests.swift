import Foundation
@testable import QLCheckpoints
import QuantizedLinear
import Synchronization
import Testing

/// A file `name` in `scratch` of one F32 tensor `w` of `count` values.
private func oneTensorFile(_ scratch: CheckpointScratch, _ name: String, count: Int = 16) throws -> String {
    let path = scratch.path(name)
    try SafetensorsWriter.write([("w", try Tensor(Array(repeating: Float(1.5), count: count), shape: [count]))],
                                to: path)
    return path
}

/// FNV-1a of the host name, as the documented temporary name pattern says (an independent copy).
private func hostToken() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    _ = gethostname(&buffer, buffer.count - 1)
    var hash: UInt32 = 0x811c_9dc5
    for byte in buffer.prefix(while: { $0 != 0 }) { hash = (hash ^ UInt32(UInt8(bitPattern: byte))) &* 0x0100_0193 }
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 8 - hex.count) + hex
}

/// The pid of a process that has exited (and was reaped).
private func deadPID() throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", "exit 0"]
    try process.run()
    process.waitUntilExit()
    return process.processIdentifier
}

@Suite("Checkpoint inputs and outputs that are not regular files, temporaries, truncated inputs")
struct CheckpointOutputPathTests {
    @Test("opening a FIFO as a checkpoint is refused at once instead of blocking until a writer comes")
    func fifoInput() throws {
        let scratch = try CheckpointScratch()
        let fifo = scratch.path("pipe.safetensors")
        #expect(mkfifo(fifo, 0o600) == 0)
        let outcome = Mutex<String?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            do {
                _ = try SafetensorsFile(path: fifo)
                outcome.withLock { $0 = "opened" }
            } catch {
                outcome.withLock { $0 = "\(error)" }
            }
            done.signal()
        }
        let finished = done.wait(timeout: .now() + 10) == .success
        if !finished {
            // Unblock the reader so the thread ends: a writer opening the FIFO releases its open().
            let writer = open(fifo, O_WRONLY | O_NONBLOCK)
            if writer >= 0 { close(writer) }
            _ = done.wait(timeout: .now() + 10)
        }
        #expect(finished, "SafetensorsFile(path:) blocked on a FIFO")
        let text = outcome.withLock { $0 } ?? ""
        #expect(text.contains("a FIFO (named pipe), not a regular file"), "\(text)")
    }

    @Test("a writer refuses an output that is a device, FIFO, directory or a link to one, creating nothing")
    func specialOutputs() throws {
        let scratch = try CheckpointScratch()
        #expect(mkfifo(scratch.path("pipe"), 0o600) == 0)
        try FileManager.default.createDirectory(atPath: scratch.path("folder"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: scratch.path("to-pipe"), withDestinationPath: "pipe")
        try FileManager.default.createSymbolicLink(atPath: scratch.path("to-folder"), withDestinationPath: "folder")
        try FileManager.default.createSymbolicLink(atPath: scratch.path("to-null"), withDestinationPath: "/dev/null")
        let cases = [("/dev/null", "is a character device"), (scratch.path("pipe"), "is a FIFO (named pipe)"),
                     (scratch.path("folder"), "is a directory"),
                     (scratch.path("to-pipe"), "is a symbolic link to a FIFO (named pipe)"),
                     (scratch.path("to-folder"), "is a symbolic link to a directory"),
                     (scratch.path("to-null"), "is a symbolic link to a character device")]
        let before = try scratch.contents()
        for (path, problem) in cases {
            expectCheckpointError(.io, mentioning: [problem, "never replaced"]) {
                _ = try SafetensorsWriter(path: path, tensors: [])
            }
        }
        #expect(try scratch.contents() == before)
        var status = stat()
        #expect(stat("/dev/null", &status) == 0 && (status.st_mode & S_IFMT) == S_IFCHR)
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: "/dev").contains { $0.hasPrefix(".null.") }))
    }

    @Test("convert and export refuse an output that is the input or a LoRA, compared as files")
    func outputIsInput() throws {
        let scratch = try CheckpointScratch()
        let input = try oneTensorFile(scratch, "in.safetensors")
        let lora = try oneTensorFile(scratch, "lora.safetensors")
        try FileManager.default.linkItem(atPath: input, toPath: scratch.path("hard.safetensors"))
        let before = try readFile(input)
        for output in [input, scratch.path("./in.safetensors"), scratch.path("hard.safetensors")] {
            expectCheckpointError(.invalidArgument, mentioning: ["is the input", "pass a different output path"]) {
                try CheckpointConverter.convert(input: input, output: output)
            }
            expectCheckpointError(.invalidArgument, mentioning: ["is the input"]) {
                try CheckpointExporter.export(input: input, output: output)
            }
        }
        expectCheckpointError(.invalidArgument, mentioning: ["lora.safetensors"]) {
            try CheckpointConverter.convert(input: input, output: lora,
                                            options: ConversionOptions(loraPaths: [lora]))
        }
        #expect(try readFile(input) == before)
    }

    @Test("a writer removes temporaries of its output left by dead processes of this host, and nothing else")
    func staleTemporaries() throws {
        let scratch = try CheckpointScratch()
        let dead = try deadPID()
        let host = hostToken()
        let stale = ".out.safetensors.ql-\(dead)-\(host)-1x2y3z.tmp"
        let kept = [".out.safetensors.ql-\(getpid())-\(host)-abc.tmp",     // a live writer (this process)
                    ".out.safetensors.ql-\(dead)-0badc0de-abc.tmp",         // another host (shared file system)
                    ".out.safetensors.ql-\(dead)-\(host)-abc.tmp.keep",     // not the pattern
                    ".out.safetensors.ql-\(dead)-\(host)-ABC.tmp",          // not the pattern (upper case)
                    ".out.safetensors.3k9f2.tmp",                           // the old name: not ours to judge
                    ".other.safetensors.ql-\(dead)-\(host)-abc.tmp"]        // another output's
        for name in [stale] + kept { try Data("x".utf8).write(to: URL(fileURLWithPath: scratch.path(name))) }
        try FileManager.default.createDirectory(atPath: scratch.path(".out.safetensors.ql-\(dead)-\(host)-dir.tmp"),
                                                withIntermediateDirectories: true)
        let writer = try SafetensorsWriter(path: scratch.path("out.safetensors"), tensors: [])
        let temporaries = try scratch.contents().filter { $0.hasPrefix(".out.safetensors.ql-\(getpid())-") }
        #expect(temporaries.count == 2, "\(temporaries)")  // the kept one and the writer's own
        try writer.finish()
        let left = Set(try scratch.contents())
        #expect(!left.contains(stale))
        #expect(left.isSuperset(of: kept))
        #expect(left.contains(".out.safetensors.ql-\(dead)-\(host)-dir.tmp") && left.contains("out.safetensors"))
    }

    // What a signal handler does with the registered files is tested on the binary (BinarySignalTests):
    // removing every registered file here would also remove those of the tests running in parallel.
    @Test("a writer's temporary is registered for signal cleanup while it exists, and only then")
    func registeredForSignals() throws {
        let scratch = try CheckpointScratch()
        let writer = try SafetensorsWriter(path: scratch.path("a.safetensors"),
                                           tensors: [.init(name: "w", dtype: .float32, shape: [1])])
        let temporary = try #require(try scratch.contents().first { $0.hasPrefix(".a.safetensors.ql-") })
        #expect(TemporaryFileCleanup.registeredPaths.contains(scratch.path(temporary)))
        writer.abandon()
        #expect(try !scratch.contents().contains(temporary))
        #expect(!TemporaryFileCleanup.registeredPaths.contains(scratch.path(temporary)))
        let finished = try SafetensorsWriter(path: scratch.path("b.safetensors"), tensors: [])
        try finished.finish()
        #expect(!TemporaryFileCleanup.registeredPaths.contains { $0.hasPrefix(scratch.path(".b.safetensors")) })
        #expect(try scratch.contents() == ["b.safetensors"])
    }

    @Test("an input truncated while mapped is reported as truncated, not as a full disk")
    func truncatedInput() throws {
        let scratch = try CheckpointScratch()
        let input = try oneTensorFile(scratch, "in.safetensors", count: 1 << 16)  // 256 KiB of data
        let file = try SafetensorsFile(path: input)
        #expect(truncate(input, 4096) == 0)
        let writer = try SafetensorsWriter(path: scratch.path("out.safetensors"),
                                           tensors: [.init(name: "w", dtype: .float32, shape: [1 << 16])])
        do {
            try file.withRawBytes(of: "w") { try writer.write("w", bytes: $0) }
            Issue.record("writing bytes of a truncated mapping succeeded")
        } catch let error as TensorError {
            #expect(error.code == .io)
            #expect(error.message.contains("in.safetensors was truncated while being read"), "\(error.message)")
            #expect(error.message.contains("4096 bytes now"), "\(error.message)")
            #expect(!error.message.contains("disk full"), "\(error.message)")
        }
        #expect(try scratch.contents() == ["in.safetensors"])
    }
}
