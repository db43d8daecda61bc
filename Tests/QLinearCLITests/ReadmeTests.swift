import Foundation
import QuantizedLinear
import Testing
@testable import qlinear

/// The README's code, checked: every Swift block is one of the example programs verbatim (which the
/// build compiles and these tests run), and every `qlinear` command line it shows parses against the
/// commands' declared options.
@Suite("The README's code blocks compile, run and parse")
struct ReadmeTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// The example targets, in the order of the README's Swift blocks.
    static let examples = ["ReadmeUsage", "ReadmeLayout", "ReadmeCheckpoints"]

    static func readme() throws -> String {
        try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
    }

    /// The fenced code blocks of `text`: (language, body).
    static func codeBlocks(_ text: String) -> [(language: String, body: String)] {
        var blocks: [(String, String)] = []
        var current: (language: String, lines: [Substring])?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") {
                if let open = current {
                    blocks.append((open.language, open.lines.map { $0 + "\n" }.joined()))
                    current = nil
                } else {
                    current = (String(line.dropFirst(3)), [])
                }
            } else {
                current?.lines.append(line)
            }
        }
        return blocks
    }

    @Test("each Swift block of the README is an example target's main.swift, byte for byte")
    func swiftBlocksAreExamples() throws {
        let swift = Self.codeBlocks(try Self.readme()).filter { $0.language == "swift" }.map(\.body)
        #expect(swift.count == Self.examples.count, """
            README has \(swift.count) Swift blocks; add or remove an example target (Package.swift, Examples/) \
            and list it in ReadmeTests.examples
            """)
        for (block, example) in zip(swift, Self.examples) {
            let file = Self.root.appendingPathComponent("Examples/\(example)/main.swift")
            #expect(try String(contentsOf: file, encoding: .utf8) == block,
                    "Examples/\(example)/main.swift differs from the README's block; copy the block into it")
        }
    }

    @Test("each example program runs to the end", arguments: examples)
    func examplesRun(example: String) throws {
        guard let program = QLinearBinary.executable(named: example) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                Issue.record("the \(example) executable is missing next to the test bundle; run `swift build`")
            }
            return
        }
        let directory = try QLinearBinary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try QLinearBinary.run([], in: directory, timeout: 300, program: program)
        #expect(!result.timedOut && result.status == 0, "\(example) exit \(result.status): \(result.stderr)")
        if example == "ReadmeCheckpoints" {
            let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            for name in ["model.safetensors", "model-int8.safetensors", "mine.safetensors"] {
                #expect(files.contains(name), "\(name) was not written: \(files)")
            }
        }
    }

    /// Every `qlinear ...` command in the README: lines of code blocks (after `$ ` or `swift run ... `,
    /// with `\` continuations) and inline code spans, as words.
    static func commandLines(_ text: String) -> [[String]] {
        var commands: [String] = []
        for block in codeBlocks(text) where block.language != "swift" {
            let joined = block.body.replacingOccurrences(of: "\\\n", with: " ")
            for line in joined.split(separator: "\n") {
                let code = line.split(separator: "#", maxSplits: 1).first.map(String.init) ?? ""
                if let range = code.range(of: "qlinear"), code.hasPrefix("$ qlinear") || code.hasPrefix("swift run") {
                    commands.append(String(code[range.lowerBound...]))
                }
            }
        }
        let prose = text.components(separatedBy: "```").enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
        for part in prose {
            let spans = part.replacingOccurrences(of: "\n", with: " ").components(separatedBy: "`")
            for (index, span) in spans.enumerated() where index % 2 == 1 && span.hasPrefix("qlinear ") {
                commands.append(span)
            }
        }
        return commands.map(words)
    }

    /// `line` split into words as a shell would for these commands (spaces, single and double quotes).
    static func words(_ line: String) -> [String] {
        var words: [String] = []
        var word = ""
        var quote: Character?
        var inWord = false
        for character in line {
            if let open = quote {
                if character == open { quote = nil } else { word.append(character) }
            } else if character == "'" || character == "\"" {
                quote = character
                inWord = true
            } else if character == " " {
                if inWord { words.append(word) }
                word = ""
                inWord = false
            } else {
                word.append(character)
                inWord = true
            }
        }
        if inWord { words.append(word) }
        return words
    }

    @Test("every qlinear command line in the README parses against the declared options")
    func commandLinesParse() throws {
        let commands = Self.commandLines(try Self.readme())
        #expect(commands.count >= 8, "found only \(commands)")
        for words in commands {
            #expect(words.first == "qlinear")
            let rest = Array(words.dropFirst())
            // `qlinear COMMAND --help`, `qlinear ARGS`: a placeholder, not a command line.
            if let first = rest.first, first.allSatisfy(\.isUppercase) { continue }
            if rest.first == "help" {
                #expect(rest.count <= 2 && (rest.count == 1 || rest[1] == "COMMAND"
                    || Subcommand.all.contains { $0.name == rest[1] }), "\(words)")
                continue
            }
            let command = rest.first.map { $0.hasPrefix("-") } == false ? try Subcommand.named(rest[0])
                : Subcommand.all[0]
            let arguments = command.name == rest.first ? Array(rest.dropFirst()) : rest
            if rest == ["--version"] { continue }
            do {
                _ = try ParsedArguments.parse(arguments, for: command)  // the arguments, or the help (`--help`)
            } catch {
                Issue.record("README command `\(words.joined(separator: " "))` does not parse: \(error)")
            }
        }
    }

    @Test("the shell word splitter and command finder")
    func finder() {
        #expect(Self.words("qlinear convert a b --exclude 'blocks.3.*' --x=\"a b\"")
            == ["qlinear", "convert", "a", "b", "--exclude", "blocks.3.*", "--x=a b"])
        let text = "Run `qlinear inspect m.st` or:\n\n```\n$ qlinear convert a b \\\n      --lora l.st\nout\n```\n"
            + "```sh\nswift run -c release qlinear bench --quick   # comment\n```\n"
        #expect(Self.commandLines(text) == [["qlinear", "convert", "a", "b", "--lora", "l.st"],
                                            ["qlinear", "bench", "--quick"], ["qlinear", "inspect", "m.st"]])
    }
}
