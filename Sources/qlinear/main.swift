import Foundation
import QuantizedLinear

// qlinear: the project's command-line tool. With no arguments it runs the demo on built-in data.

let arguments = Array(CommandLine.arguments.dropFirst())
let commandName = arguments.first.flatMap { $0.hasPrefix("-") ? nil : $0 } ?? "demo"
let commandArguments = arguments.first == commandName ? Array(arguments.dropFirst()) : arguments

do {
    guard let command = Subcommand.all.first(where: { $0.name == commandName }) else {
        throw TensorError(.invalidArgument, "unknown command `\(commandName)`\n\n" + Subcommand.usage)
    }
    if commandArguments.contains("--help") || commandArguments.contains("-h") {
        print(command.help)
    } else {
        try command.run(CommandArguments(commandArguments, command: command.name))
    }
} catch {
    FileHandle.standardError.write(Data("qlinear: \(error)\n".utf8))
    exit(1)
}
