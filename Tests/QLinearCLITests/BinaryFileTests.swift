import Foundation
import Testing

@Suite("The qlinear binary: input and output paths, progress into a file")
struct BinaryFileTests {
    /// How `OUT` is made to name the input `in.st`.
    enum SameFile: String, CaseIterable, CustomTestStringConvertible {
        case samePath, otherSpelling, symbolicLink, hardLink
        var testDescription: String { rawValue }
    }

    @Test("convert and export refuse an output that is the input, however it is spelled",
          arguments: ["convert", "export"], SameFile.allCases)
    func outputIsInput(command: String, how: SameFile) throws {
        guard QLinearBinary.isAvailable else { return }
        let directory = try QLinearBinary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = try QLinearBinary.checkpoint("in.st", in: directory)
        let before = try Data(contentsOf: input)
        let output: String
        switch how {
        case .samePath: output = "in.st"
        case .otherSpelling: output = "./sub/../in.st"
        case .symbolicLink: output = "link.st"
        case .hardLink: output = "hard.st"
        }
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("sub"),
                                                withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: directory.appendingPathComponent("link.st").path,
                                                   withDestinationPath: "in.st")
        try FileManager.default.linkItem(at: input, to: directory.appendingPathComponent("hard.st"))
        let result = try QLinearBinary.run([command, "in.st", output], in: directory)
        #expect(result.status == 1, "exit \(result.status): \(result.stderr)")
        #expect(result.stderr.contains("is the input") && result.stderr.contains("pass a different output path"),
                "\(result.stderr)")
        #expect(try Data(contentsOf: input) == before)
        #expect(QLinearBinary.temporaries(in: directory).isEmpty)
    }

    @Test("inspect of a FIFO is refused at once instead of waiting for a writer")
    func inspectFIFO() throws {
        guard QLinearBinary.isAvailable else { return }
        let directory = try QLinearBinary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let fifo = directory.appendingPathComponent("pipe.st").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let result = try QLinearBinary.run(["inspect", "pipe.st"], in: directory, timeout: 20)
        #expect(!result.timedOut, "inspect blocked on the FIFO")
        #expect(result.status == 1 && result.stderr.contains("a FIFO (named pipe), not a regular file"),
                "\(result.stderr)")
    }

    /// What `OUT` is when it must not be replaced.
    enum SpecialOutput: String, CaseIterable, CustomTestStringConvertible {
        case fifo, directory, linkToFIFO, linkToDirectory, danglingLink
        var testDescription: String { rawValue }
    }

    @Test("an output that is a FIFO, a directory or a link to one is refused and left as it was",
          arguments: ["convert", "synthesize"], SpecialOutput.allCases)
    func specialOutput(command: String, kind: SpecialOutput) throws {
        guard QLinearBinary.isAvailable else { return }
        let directory = try QLinearBinary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try QLinearBinary.checkpoint("in.st", in: directory)
        let fifo = directory.appendingPathComponent("pipe").path
        let folder = directory.appendingPathComponent("folder").path
        #expect(mkfifo(fifo, 0o600) == 0)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let output = directory.appendingPathComponent("out.st").path
        let expected: String
        switch kind {
        case .fifo:
            #expect(mkfifo(output, 0o600) == 0)
            expected = "is a FIFO (named pipe), not a regular file"
        case .directory:
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            expected = "is a directory, not a regular file"
        case .linkToFIFO:
            try FileManager.default.createSymbolicLink(atPath: output, withDestinationPath: "pipe")
            expected = "is a symbolic link to a FIFO (named pipe)"
        case .linkToDirectory:
            try FileManager.default.createSymbolicLink(atPath: output, withDestinationPath: "folder")
            expected = "is a symbolic link to a directory"
        case .danglingLink:
            try FileManager.default.createSymbolicLink(atPath: output, withDestinationPath: "nothing-here")
            expected = "is a symbolic link to nothing"
        }
        let arguments = command == "convert" ? ["convert", "in.st", "out.st"]
            : ["synthesize", "out.st", "--layers", "1", "--rows", "8", "--columns", "8"]
        let result = try QLinearBinary.run(arguments, in: directory, timeout: 60)
        #expect(!result.timedOut)
        #expect(result.status == 1 && result.stderr.contains(expected), "exit \(result.status): \(result.stderr)")
        var status = stat()
        #expect(lstat(output, &status) == 0)
        let type = status.st_mode & S_IFMT
        switch kind {
        case .fifo: #expect(type == S_IFIFO)
        case .directory: #expect(type == S_IFDIR)
        case .linkToFIFO, .linkToDirectory, .danglingLink: #expect(type == S_IFLNK)
        }
        #expect(stat(fifo, &status) == 0 && (status.st_mode & S_IFMT) == S_IFIFO)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
        #expect(QLinearBinary.temporaries(in: directory).isEmpty)
    }

    @Test("an output that is a link to a regular file is written through: the target is replaced, the link kept")
    func linkToRegularFile() throws {
        guard QLinearBinary.isAvailable else { return }
        let directory = try QLinearBinary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try QLinearBinary.checkpoint("in.st", in: directory)
        let target = directory.appendingPathComponent("target.st")
        try Data("old".utf8).write(to: target)
        try FileManager.default.createSymbolicLink(atPath: directory.appendingPathComponent("out.st").path,
                                                   withDestinationPath: "target.st")
        let result = try QLinearBinary.run(["convert", "in.st", "out.st"], in: directory)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: directory.appendingPathComponent("out.st")
            .path) == "target.st")
        let inspected = try QLinearBinary.run(["inspect", "target.st"], in: directory)
        #expect(inspected.status == 0 && inspected.stdout.contains("quantized layers: 2 (2 int8_blockwise"),
                "\(inspected.stdout)\(inspected.stderr)")
    }

    @Test("--progress into a file writes plain lines that fit 80 columns, no escape codes or carriage returns",
          arguments: ["convert", "export", "synthesize"])
    func progressIntoFile(command: String) throws {
        guard QLinearBinary.isAvailable else { return }
        let directory = try QLinearBinary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try QLinearBinary.checkpoint("in.st", in: directory, layers: 3)
        if command == "export" {
            #expect(try QLinearBinary.run(["convert", "in.st", "q.st"], in: directory).status == 0)
        }
        let arguments = switch command {
        case "convert": ["convert", "in.st", "out.st", "--progress"]
        case "export": ["export", "q.st", "out.st", "--progress"]
        default: ["synthesize", "out.st", "--layers", "3", "--rows", "64", "--columns", "64", "--progress"]
        }
        let result = try QLinearBinary.run(arguments, in: directory)
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count >= 2 && lines.last == "", "\(result.stderr)")
        #expect(!result.stderr.contains("\u{1B}") && !result.stderr.contains("\r"))
        #expect(lines.allSatisfy { $0.count <= 79 }, "\(lines.map(\.count))")
        #expect(lines.dropLast().last?.contains(command == "synthesize" ? "3/3 layers" : "tensors") == true,
                "\(result.stderr)")
    }
}
