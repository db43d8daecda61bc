import Foundation
import QuantizedLinear

/// One `--name` option a subcommand declares: its name, what value it takes (none for a switch),
/// the range or choices that value must be in, and its help line.
///
/// The parser accepts exactly the declared options: `--name value`, `--name=value` or a bare `--flag`.
/// Numbers are checked against their range when the command line is parsed, so a command's `run`
/// only ever sees values it can use.
///
/// ```swift
/// CommandOption.integer("rows", placeholder: "M", default: 64, in: 1...16_384, "rows of the activation")
/// ```
struct CommandOption: Sendable {
    /// What the option's value must be.
    enum Value: Sendable {
        /// A switch: present or not, takes no value.
        case flag
        /// A whole number in the range (written in decimal; no sign needed for positive numbers).
        case integer(ClosedRange<Int>)
        /// A finite number in the range.
        case number(ClosedRange<Double>)
        /// Any text; `validate` (if given) throws a ``TensorError`` for text the command cannot use.
        case text(validate: (@Sendable (String) throws -> Void)?)
        /// One of the listed words; `aliases` map other accepted spellings to one of them.
        case choice([String], aliases: [String: String])
    }

    let name: String
    let value: Value
    /// The value's name in the help text (`N`, `FILE`); empty for a flag.
    let placeholder: String
    /// Whether the option may be given more than once (every value is kept, in order).
    let repeatable: Bool
    /// The value used when the option is absent (already canonical), or `nil` when the command decides.
    let defaultValue: String?
    let help: String

    static func flag(_ name: String, _ help: String) -> CommandOption {
        CommandOption(name: name, value: .flag, placeholder: "", repeatable: false, defaultValue: nil, help: help)
    }

    static func integer(_ name: String, placeholder: String = "N", default value: Int? = nil,
                        in range: ClosedRange<Int>, _ help: String) -> CommandOption {
        CommandOption(name: name, value: .integer(range), placeholder: placeholder, repeatable: false,
                      defaultValue: value.map(String.init), help: help)
    }

    static func number(_ name: String, placeholder: String = "X", default value: Double? = nil,
                       in range: ClosedRange<Double>, _ help: String) -> CommandOption {
        CommandOption(name: name, value: .number(range), placeholder: placeholder, repeatable: false,
                      defaultValue: value.map(format), help: help)
    }

    static func text(_ name: String, placeholder: String, default value: String? = nil, repeatable: Bool = false,
                     validate: (@Sendable (String) throws -> Void)? = nil, _ help: String) -> CommandOption {
        CommandOption(name: name, value: .text(validate: validate), placeholder: placeholder, repeatable: repeatable,
                      defaultValue: value, help: help)
    }

    static func choice(_ name: String, _ choices: [String], aliases: [String: String] = [:], default value: String,
                       _ help: String) -> CommandOption {
        precondition(choices.contains(value), "default `\(value)` of --\(name) is not one of \(choices)")
        return CommandOption(name: name, value: .choice(choices, aliases: aliases),
                             placeholder: choices.joined(separator: "|"), repeatable: false, defaultValue: value,
                             help: help)
    }

    /// `--name PLACEHOLDER`, as the help text shows it.
    var synopsis: String { placeholder.isEmpty ? "--\(name)" : "--\(name) \(placeholder)" }

    /// The help line's text after the synopsis: the help, then the range and default where they say something.
    var helpDetail: String {
        var notes: [String] = []
        switch value {
        case .integer(let range): notes.append(Self.describe(range))
        case .number(let range): notes.append("\(Self.format(range.lowerBound)) to \(Self.format(range.upperBound))")
        case .flag, .text, .choice: break
        }
        if let defaultValue { notes.append("default \(defaultValue)") }
        if repeatable { notes.append("repeatable") }
        return notes.isEmpty ? help : help + " (" + notes.joined(separator: ", ") + ")"
    }

    /// The value of `text` given for this option, canonical (a choice's alias replaced by its word).
    /// - Throws: ``TensorError/Code/invalidArgument`` naming the option, the text and what it accepts.
    func parse(_ text: String, command: String) throws -> String {
        let prefix = "\(command): --\(name)"
        switch value {
        case .flag:
            throw TensorError(.invalidArgument, "\(prefix) is a switch and takes no value, got `\(text)`")
        case .integer(let range):
            guard let parsed = Int(text) else {
                throw TensorError(.invalidArgument, "\(prefix) expects a whole number "
                    + "(\(Self.describe(range))), got `\(text)`")
            }
            guard range.contains(parsed) else {
                throw TensorError(.invalidArgument, "\(prefix) must be \(Self.describe(range)), got \(text)")
            }
            return String(parsed)
        case .number(let range):
            guard let parsed = Double(text), parsed.isFinite else {
                throw TensorError(.invalidArgument, "\(prefix) expects a finite number, got `\(text)`")
            }
            guard range.contains(parsed) else {
                throw TensorError(.invalidArgument, "\(prefix) must be between \(Self.format(range.lowerBound)) "
                    + "and \(Self.format(range.upperBound)), got \(text)")
            }
            return String(parsed)
        case .text(let validate):
            if let validate {
                do {
                    try validate(text)
                } catch let error as TensorError {
                    throw TensorError(.invalidArgument, "\(prefix): \(error.message)", underlying: error.underlying)
                }
            }
            return text
        case .choice(let choices, let aliases):
            if choices.contains(text) { return text }
            if let word = aliases[text] { return word }
            let known = choices + aliases.keys.sorted()
            let hint = EditDistance.nearest(to: text, in: known).map { "; did you mean `\($0)`?" } ?? ""
            throw TensorError(.invalidArgument, "\(prefix) must be one of \(choices.joined(separator: ", ")), "
                + "got `\(text)`\(hint)")
        }
    }

    static func describe(_ range: ClosedRange<Int>) -> String {
        if range.upperBound == Int.max { return "at least \(range.lowerBound)" }
        return "\(range.lowerBound) to \(range.upperBound)"
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
