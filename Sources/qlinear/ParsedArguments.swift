import Foundation
import QuantizedLinear

/// A subcommand's command line, parsed against its declaration: the positional arguments and the
/// value of every declared option, each already checked (type, range, choices).
///
/// Reading an option the subcommand did not declare, or with the wrong accessor, is a programming
/// error in the subcommand and stops the program; nothing a user types can reach it.
struct ParsedArguments: Sendable {
    let command: Subcommand
    let positional: [String]
    private let values: [String: [String]]
    private let flags: Set<String>

    /// The outcome of parsing: the arguments to run with, or a request for the command's help.
    enum Outcome: Sendable {
        case run(ParsedArguments)
        case help
    }

    /// Parses `arguments` (what follows the subcommand's name).
    ///
    /// Options and positional arguments may come in any order; `--` ends the options. A value is
    /// `--name value` or `--name=value`; a value that starts with `-` (other than a number such as
    /// `-1`) must use the `=` form. `-h` or `--help` anywhere before `--` asks for the help.
    /// - Throws: ``TensorError/Code/invalidArgument`` for an unknown option (naming the nearest known
    ///   one), a missing or ill-typed value, a number out of range, a non-repeatable option given
    ///   twice, the wrong number of positional arguments, or what the command's `validate` refuses.
    static func parse(_ arguments: [String], for command: Subcommand) throws -> Outcome {
        let optionEnd = arguments.firstIndex(of: "--") ?? arguments.count
        if arguments[..<optionEnd].contains(where: { $0 == "--help" || $0 == "-h" }) { return .help }
        var positional: [String] = []
        var values: [String: [String]] = [:]
        var flags: Set<String> = []
        var index = 0
        while index < optionEnd {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("-"), argument != "-" else {
                positional.append(argument)
                continue
            }
            guard argument.hasPrefix("--") else {
                // Only long options exist (and -h, handled above): `-rows` is a typo of `--rows`.
                throw command.unknownOption(String(argument.dropFirst().prefix { $0 != "=" }), writtenAs: argument)
            }
            let body = argument.dropFirst(2)
            let name = String(body.prefix { $0 != "=" })
            let inlineValue = body.firstIndex(of: "=").map { String(body[body.index(after: $0)...]) }
            guard let option = command.options.first(where: { $0.name == name }) else {
                throw command.unknownOption(name, writtenAs: argument)
            }
            if case .flag = option.value {
                if let inlineValue { _ = try option.parse(inlineValue, command: command.name) }
                guard flags.insert(name).inserted else {
                    throw TensorError(.invalidArgument, "\(command.name): --\(name) is given twice")
                }
                continue
            }
            let text: String
            if let inlineValue {
                text = inlineValue
            } else if index < optionEnd, !looksLikeOption(arguments[index]) {
                text = arguments[index]
                index += 1
            } else {
                throw TensorError(.invalidArgument, "\(command.name): --\(name) needs a value (\(option.synopsis))")
            }
            guard option.repeatable || values[name] == nil else {
                throw TensorError(.invalidArgument, "\(command.name): --\(name) is given twice; give it once")
            }
            values[name, default: []].append(try option.parse(text, command: command.name))
        }
        if optionEnd < arguments.count { positional += arguments[(optionEnd + 1)...] }
        guard positional.count == command.arguments.count else {
            let expected = command.arguments.isEmpty ? "no arguments"
                : command.arguments.joined(separator: " ") + " (\(command.arguments.count))"
            throw TensorError(.invalidArgument, "\(command.name) takes \(expected), got \(positional.count)"
                + (positional.isEmpty ? "" : ": " + positional.map { "`\($0)`" }.joined(separator: " ")))
        }
        let parsed = ParsedArguments(command: command, positional: positional, values: values, flags: flags)
        try command.validate?(parsed)
        return .run(parsed)
    }

    /// Whether `word` is an option rather than a value: it starts with `-` and is not a number.
    static func looksLikeOption(_ word: String) -> Bool {
        word.hasPrefix("-") && word != "-" && Double(word) == nil
    }

    /// Whether the switch `name` was given.
    func flag(_ name: String) -> Bool {
        guard case .flag = declared(name).value else { preconditionFailure("--\(name) is not a switch") }
        return flags.contains(name)
    }

    /// The value of `--name`, or its declared default, or `nil`.
    func string(_ name: String) -> String? {
        let option = declared(name)
        return values[name]?.last ?? option.defaultValue
    }

    /// Every value given for the repeatable `--name`, in order.
    func strings(_ name: String) -> [String] {
        precondition(declared(name).repeatable, "--\(name) is not repeatable")
        return values[name] ?? []
    }

    /// The integer option `--name`: its value, else its declared default, else `fallback`.
    func int(_ name: String, default fallback: Int? = nil) -> Int {
        guard case .integer = declared(name).value else { preconditionFailure("--\(name) is not an integer") }
        guard let value = string(name).flatMap({ Int($0) }) ?? fallback else {
            preconditionFailure("--\(name) has no default and none was passed")
        }
        return value
    }

    /// The number option `--name`: its value, else its declared default, else `fallback`.
    func number(_ name: String, default fallback: Double? = nil) -> Double {
        guard case .number = declared(name).value else { preconditionFailure("--\(name) is not a number") }
        guard let value = string(name).flatMap({ Double($0) }) ?? fallback else {
            preconditionFailure("--\(name) has no default and none was passed")
        }
        return value
    }

    private func declared(_ name: String) -> CommandOption {
        guard let option = command.options.first(where: { $0.name == name }) else {
            preconditionFailure("\(command.name) reads --\(name), which it does not declare")
        }
        return option
    }
}
