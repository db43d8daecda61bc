import Foundation
import QuantizedLinear

// qlinear: the project's command-line tool. With no arguments it runs the demo on built-in data.

// Ctrl-C, SIGTERM or SIGHUP during `convert`, `export` or `synthesize` remove the temporary output
// file before exiting with 128 + the signal number.
TemporaryFileCleanup.installSignalHandlers()
exit(CommandLineTool.main(Array(CommandLine.arguments.dropFirst())))
