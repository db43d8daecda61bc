import QuantizedLinear
import Testing
@testable import qlinear

/// A command with one option of every kind, declared the way the real subcommands are.
private let sample = Subcommand(
    name: "sample", summary: "a test command", arguments: ["IN", "OUT"], discussion: "For the parser tests.",
    options: [
        .integer("rows", placeholder: "M", default: 64, in: 1...16_384, "rows"),
        .integer("seed", in: 0...Int.max, "seed"),
        .number("strength", placeholder: "S", default: 1, in: -10...10, "strength"),
        .choice("format", ["int8_blockwise", "float8_e4m3fn"], aliases: ["fp8": "float8_e4m3fn"],
                default: "int8_blockwise", "format"),
        .text("exclude", placeholder: "P", repeatable: true, validate: { _ = try LayerPattern($0) }, "exclude"),
        .text("json", placeholder: "FILE", "json"),
        .flag("progress", "progress"),
    ],
    run: { _ in })

private func parsed(_ words: [String]) throws -> ParsedArguments {
    guard case .run(let arguments) = try ParsedArguments.parse(words, for: sample) else {
        throw TensorError(.invalidArgument, "expected arguments, got the help")
    }
    return arguments
}

private func message(_ words: [String]) -> String? {
    do {
        _ = try ParsedArguments.parse(words, for: sample)
        return nil
    } catch let error as TensorError {
        return error.message
    } catch {
        return "\(error)"
    }
}

@Suite("qlinear's option parser")
struct ParserTests {
    @Test("values in both forms, options and positionals in any order, defaults when absent")
    func values() throws {
        let arguments = try parsed(["--rows", "8", "in.st", "--format=fp8", "out.st", "--progress",
                                    "--exclude", "a.*", "--exclude=b.*", "--strength", "-2.5"])
        #expect(arguments.positional == ["in.st", "out.st"])
        #expect(arguments.int("rows") == 8)
        #expect(arguments.string("format") == "float8_e4m3fn")
        #expect(arguments.strings("exclude") == ["a.*", "b.*"])
        #expect(arguments.number("strength") == -2.5)
        #expect(arguments.flag("progress"))
        let defaults = try parsed(["a", "b"])
        #expect(defaults.int("rows") == 64 && defaults.int("seed", default: 7) == 7)
        #expect(defaults.string("format") == "int8_blockwise" && defaults.string("json") == nil)
        #expect(defaults.number("strength") == 1 && !defaults.flag("progress") && defaults.strings("exclude").isEmpty)
    }

    @Test("`--` ends the options: what follows is positional even if it starts with a dash")
    func doubleDash() throws {
        let arguments = try parsed(["--rows", "2", "--", "-in-", "--out"])
        #expect(arguments.positional == ["-in-", "--out"])
        #expect(arguments.int("rows") == 2)
    }

    @Test("-h or --help anywhere asks for the help, whatever else is wrong")
    func help() throws {
        for words in [["--help"], ["a", "-h"], ["--exlude", "x", "--help"], ["--rows", "-1", "--help"]] {
            guard case .help = try ParsedArguments.parse(words, for: sample) else {
                Issue.record("\(words) did not ask for the help")
                continue
            }
        }
        // After `--`, "--help" is a positional argument.
        #expect(try parsed(["a", "--", "--help"]).positional == ["a", "--help"])
    }

    @Test("an unknown option is refused, naming the nearest declared one",
          arguments: [("--exlude", "--exclude"), ("--row", "--rows"), ("--formt=fp8", "--format"),
                      ("--progres", "--progress"), ("--jsn", "--json"), ("-rows", "--rows")])
    func unknownOption(typed: String, nearest: String) {
        let text = message(["a", "b", typed, "x"])
        #expect(text?.contains("unknown option `\(typed)`") == true, "\(text ?? "accepted")")
        #expect(text?.contains("did you mean `\(nearest)`?") == true, "\(text ?? "accepted")")
    }

    @Test("an unknown option far from every declared one lists them all")
    func unknownFarOption() {
        let text = message(["a", "b", "--zzzzzzzz"]) ?? ""
        #expect(text.contains("unknown option `--zzzzzzzz`") && text.contains("--rows, --seed, --strength"))
    }

    @Test("a missing value is refused, not defaulted",
          arguments: [["a", "b", "--rows"], ["a", "b", "--rows", "--progress"], ["--json", "--rows", "3", "a", "b"],
                      ["a", "b", "--format", "--", "c"]])
    func missingValue(words: [String]) {
        #expect(message(words)?.contains("needs a value") == true, "\(words): \(message(words) ?? "accepted")")
    }

    @Test("an ill-typed value is refused",
          arguments: [("--rows", "abc", "expects a whole number"), ("--rows", "1.5", "expects a whole number"),
                      ("--rows", "99999999999999999999999", "expects a whole number"),
                      ("--strength", "nan", "finite number"), ("--strength", "inf", "finite number"),
                      ("--strength", "x", "finite number"), ("--format", "int4", "must be one of"),
                      ("--exclude", "re:(", "--exclude")])
    func illTyped(option: String, value: String, expected: String) {
        let text = message(["a", "b", "\(option)=\(value)"])
        #expect(text != nil, "\(option)=\(value) accepted")
        #expect(text?.contains(expected) == true, "\(text ?? "")")
    }

    @Test("numbers outside their range are refused, never trapped on",
          arguments: [("--rows", "-1"), ("--rows", "0"), ("--rows", "16385"), ("--rows", "\(Int.max)"),
                      ("--rows", "\(Int.min)"), ("--seed", "-1"), ("--strength", "10.5"), ("--strength", "-1e300")])
    func outOfRange(option: String, value: String) {
        let text = message(["a", "b", option, value])
        #expect(text?.contains("must be") == true, "\(option) \(value): \(text ?? "accepted")")
    }

    @Test("a switch takes no value, and an option given twice is refused unless repeatable")
    func switchesAndRepeats() {
        #expect(message(["a", "b", "--progress=yes"])?.contains("takes no value") == true)
        #expect(message(["a", "b", "--rows", "2", "--rows=3"])?.contains("given twice") == true)
        #expect(message(["a", "b", "--progress", "--progress"])?.contains("given twice") == true)
        #expect(message(["a", "b", "--exclude", "x", "--exclude", "y"]) == nil)
    }

    @Test("the positional count must match the declaration",
          arguments: [[String](), ["a"], ["a", "b", "c"]])
    func positionalCount(words: [String]) {
        #expect(message(words)?.contains("takes IN OUT (2), got \(words.count)") == true, "\(message(words) ?? "")")
    }

    @Test("every real subcommand's help lists each declared option with its range or choices")
    func realHelp() {
        for command in Subcommand.all {
            #expect(command.help.hasPrefix("usage: qlinear \(command.name)"))
            for option in command.options {
                #expect(command.help.contains(option.synopsis), "\(command.name) help lacks \(option.synopsis)")
            }
            #expect(command.help.contains("-h, --help"))
            #expect(command.help.split(separator: "\n").allSatisfy { $0.count <= 100 }, "\(command.name) help too wide")
            #expect(Subcommand.usage.contains("  \(command.name) "))
        }
        #expect(Subcommand.all.first(where: { $0.name == "convert" })!.help
            .contains("--block-size B          INT8 block (group) size (1 to 65536, default 128)"))
    }

    @Test("a mistyped command names the nearest one")
    func unknownCommand() {
        #expect(throws: TensorError.self) { try Subcommand.named("convrt") }
        do {
            _ = try Subcommand.named("convrt")
        } catch let error as TensorError {
            #expect(error.message == "unknown command `convrt`; did you mean `convert`?")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test("edit distance and nearest word",
          arguments: [("exlude", "exclude", 1), ("kitten", "sitting", 3), ("", "abc", 3), ("same", "same", 0)])
    func editDistance(a: String, b: String, distance: Int) {
        #expect(EditDistance.between(a, b) == distance)
        #expect(EditDistance.between(b, a) == distance)
    }
}
