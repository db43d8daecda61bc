import Foundation
import QuantizedLinear

/// The top level of `qlinear`: picks the subcommand, handles `help`, `--help` and `--version`, and
/// maps the outcome to an exit status (sysexits.h): 0 success, 1 a failure while running,
/// 64 (`EX_USAGE`) a command line that does not fit, with the usage on stderr.
enum CommandLineTool {
    static let version = "0.1.0"

    static let usageError: Int32 = 64

    /// Runs `arguments` (without the program name) and returns the exit status.
    static func main(_ arguments: [String]) -> Int32 {
        let first = arguments.first
        switch first {
        case "--help", "-h":
            print(Subcommand.usage)
            return 0
        case "--version":
            guard arguments.count == 1 else {
                return usageFailure("--version takes no arguments", usage: Subcommand.usage)
            }
            print("qlinear \(version)")
            return 0
        case "help":
            return help(Array(arguments.dropFirst()))
        default:
            break
        }
        // No command, or options first: the default command (the demo).
        let command: Subcommand
        var rest = arguments
        if let first, !first.hasPrefix("-") {
            do {
                command = try Subcommand.named(first)
            } catch {
                return usageFailure(error, usage: Subcommand.usage)
            }
            rest.removeFirst()
        } else {
            command = Subcommand.all[0]
        }
        let parsed: ParsedArguments
        do {
            switch try ParsedArguments.parse(rest, for: command) {
            case .help:
                print(command.help)
                return 0
            case .run(let arguments):
                parsed = arguments
            }
        } catch {
            return usageFailure(error, usage: command.help)
        }
        do {
            try command.run(parsed)
            return 0
        } catch {
            FileHandle.standardError.write(Data("qlinear: \(error)\n".utf8))
            return 1
        }
    }

    /// `qlinear help [COMMAND]`.
    static func help(_ arguments: [String]) -> Int32 {
        guard let name = arguments.first else {
            print(Subcommand.usage)
            return 0
        }
        guard arguments.count == 1 else {
            return usageFailure("help takes at most one COMMAND, got \(arguments.count) words", usage: Subcommand.usage)
        }
        if name == "help" {
            print(Subcommand.usage)
            return 0
        }
        do {
            print(try Subcommand.named(name).help)
            return 0
        } catch {
            return usageFailure(error, usage: Subcommand.usage)
        }
    }

    /// Writes `qlinear: ` and the error's message, a blank line and `usage` to stderr; returns 64.
    static func usageFailure(_ error: any Error, usage: String) -> Int32 {
        usageFailure((error as? TensorError)?.message ?? "\(error)", usage: usage)
    }

    /// Writes `qlinear: message`, a blank line and `usage` to stderr; returns 64.
    static func usageFailure(_ message: String, usage: String) -> Int32 {
        FileHandle.standardError.write(Data("qlinear: \(message)\n\n\(usage)\n".utf8))
        return usageError
    }
}
