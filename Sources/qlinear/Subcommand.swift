import Foundation
import QuantizedLinear

/// One subcommand of `qlinear`: its name, positional arguments, declared options and what it runs.
///
/// The options are the whole interface: the parser accepts nothing else, and the help text's option
/// list is made from them. Adding a subcommand is one `static let command = Subcommand(...)` and
/// one entry in ``all`` (NOTES.md, "The qlinear command line").
struct Subcommand: Sendable {
    let name: String
    /// One line for the command list.
    let summary: String
    /// The positional arguments' names, in order; all are required.
    let arguments: [String]
    /// What the command does, in a few paragraphs (the help text between usage and options).
    let discussion: String
    let options: [CommandOption]
    /// Checks between options that each option's own range cannot express; what it throws is a usage error.
    let validate: (@Sendable (ParsedArguments) throws -> Void)?
    let run: @Sendable (ParsedArguments) throws -> Void

    init(name: String, summary: String, arguments: [String] = [], discussion: String, options: [CommandOption],
         validate: (@Sendable (ParsedArguments) throws -> Void)? = nil,
         run: @escaping @Sendable (ParsedArguments) throws -> Void) {
        precondition(Set(options.map(\.name)).count == options.count, "\(name) declares an option twice")
        precondition(!options.contains { $0.name == "help" }, "--help is every command's own")
        self.name = name
        self.summary = summary
        self.arguments = arguments
        self.discussion = discussion
        self.options = options
        self.validate = validate
        self.run = run
    }

    /// Every subcommand, in the order `qlinear --help` lists them; the first is the default.
    static let all: [Subcommand] = [Demo.command, Benchmark.command, BenchmarkConcurrency.command,
                                    BenchmarkCUDA.command, Convert.command, Inspect.command, Export.command,
                                    Synthesize.command, Embed.command, BenchmarkEmbed.command]

    /// The subcommand called `name`.
    /// - Throws: ``TensorError/Code/invalidArgument`` naming the nearest known command.
    static func named(_ name: String) throws -> Subcommand {
        if let command = all.first(where: { $0.name == name }) { return command }
        let names = all.map(\.name) + ["help"]
        let hint = EditDistance.nearest(to: name, in: names).map { "; did you mean `\($0)`?" } ?? ""
        throw TensorError(.invalidArgument, "unknown command `\(name)`\(hint)")
    }

    /// The error for an option `name` this command does not declare (`word` as typed): it names the
    /// nearest declared option, or lists them all when none is near.
    func unknownOption(_ name: String, writtenAs word: String) -> TensorError {
        let known = options.map(\.name) + ["help"]
        if let nearest = EditDistance.nearest(to: name, in: known) {
            return TensorError(.invalidArgument, "\(self.name): unknown option `\(word)`; did you mean `--\(nearest)`?")
        }
        return TensorError(.invalidArgument, "\(self.name): unknown option `\(word)`; its options are "
            + known.map { "--\($0)" }.joined(separator: ", "))
    }

    /// `usage: qlinear NAME [options] ARGS`.
    var usageLine: String {
        (["usage: qlinear", name] + (options.isEmpty ? [] : ["[options]"]) + arguments).joined(separator: " ")
    }

    /// The full help: usage line, discussion, and one line per option.
    var help: String {
        let rows = options.map { ($0.synopsis, $0.helpDetail) } + [("-h, --help", "show this help")]
        return usageLine + "\n\n" + discussion + "\n\noptions:\n" + Self.table(rows)
    }

    /// `qlinear --help`: the commands, and how to get a command's help.
    static var usage: String {
        let commands = all.map { ($0.name, $0.summary) }
            + [("help", "show this help, or `help COMMAND` for one command")]
        return """
            usage: qlinear [COMMAND] [OPTIONS] [ARGUMENTS]

            With no command, qlinear runs `demo`.

            commands:
            \(table(commands))

            options:
            \(table([("-h, --help", "show this help"), ("--version", "print the version and exit")]))

            `qlinear help COMMAND` or `qlinear COMMAND --help` describes a command's options.
            """
    }

    /// Two columns, the second aligned and wrapped to fit 100 columns.
    static func table(_ rows: [(String, String)]) -> String {
        let width = min(24, (rows.map(\.0.count).max() ?? 0) + 2)
        return rows.map { left, right in
            let lines = wrap(right, width: 100 - 2 - width)
            let first = "  " + left + String(repeating: " ", count: max(1, width - left.count))
            let indent = "\n" + String(repeating: " ", count: 2 + width)
            return left.count >= width ? "  " + left + indent + lines.joined(separator: indent)
                : first + lines.joined(separator: indent)
        }.joined(separator: "\n")
    }

    /// `text` broken at spaces into lines of at most `width` characters (a longer word gets its own line).
    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty && line.count + 1 + word.count > width {
                lines.append(line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        return lines + (line.isEmpty && !lines.isEmpty ? [] : [line])
    }
}
