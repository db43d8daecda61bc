import Foundation
import QuantizedLinear

/// One subcommand of `qlinear`.
struct Subcommand: Sendable {
    let name: String
    let summary: String
    let help: String
    let run: @Sendable (CommandArguments) throws -> Void

    /// Every subcommand; the first is the default.
    static let all: [Subcommand] = [Demo.command, Benchmark.command, BenchmarkCUDA.command, Convert.command,
                                    Inspect.command, Export.command, Synthesize.command]

    static var usage: String {
        "usage: qlinear [COMMAND] [OPTIONS]\n\ncommands:\n"
            + all.map { "  \($0.name.padding(toLength: 10, withPad: " ", startingAt: 0)) \($0.summary)" }
            .joined(separator: "\n")
            + "\n\n`qlinear COMMAND --help` describes a command's options."
    }
}

/// `--name value` and `--flag` options, with typed accessors that throw clear errors.
///
/// Names in ``booleanFlags`` never take a value, so `convert --progress IN OUT` keeps IN as a
/// positional argument; any other `--name` takes the next word unless that word is an option.
struct CommandArguments: Sendable {
    /// Options of every subcommand that are switches, not `--name value` pairs.
    static let booleanFlags: Set<String> = ["progress", "quick", "help"]

    private var options: [String: [String]] = [:]
    private var flags: Set<String> = []
    private(set) var positional: [String] = []
    let command: String

    init(_ arguments: [String], command: String) {
        self.command = command
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument.hasPrefix("--") {
                let name = String(argument.dropFirst(2))
                if let equals = name.firstIndex(of: "=") {
                    options[String(name[..<equals]), default: []].append(String(name[name.index(after: equals)...]))
                } else if !Self.booleanFlags.contains(name) && index + 1 < arguments.count
                    && !arguments[index + 1].hasPrefix("--") {
                    options[name, default: []].append(arguments[index + 1])
                    index += 1
                } else {
                    flags.insert(name)
                }
            } else {
                positional.append(argument)
            }
            index += 1
        }
    }

    func flag(_ name: String) -> Bool { flags.contains(name) }

    func string(_ name: String) -> String? { options[name]?.last }

    func strings(_ name: String) -> [String] { options[name] ?? [] }

    func int(_ name: String, default value: Int) throws -> Int {
        guard let text = string(name) else { return value }
        guard let parsed = Int(text) else {
            throw TensorError(.invalidArgument, "\(command): --\(name) expects an integer, got `\(text)`")
        }
        return parsed
    }

    func float(_ name: String, default value: Float) throws -> Float {
        guard let text = string(name) else { return value }
        guard let parsed = Float(text) else {
            throw TensorError(.invalidArgument, "\(command): --\(name) expects a number, got `\(text)`")
        }
        return parsed
    }
}
