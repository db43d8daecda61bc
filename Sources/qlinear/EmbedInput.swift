import Foundation
import QuantizedLinear

/// The sentences `qlinear embed` reads: `.jsonl` (one JSON string per line, so a sentence may hold
/// newlines), `.txt` (one sentence per line), or standard input (`-`, text unless `--input-format jsonl`).
enum EmbedInput {
    enum Format: String {
        case jsonl
        case txt
    }

    /// The format of `path`: `--input-format` when given, else from the extension (`-` is text).
    static func format(of path: String, explicit: String?) throws -> Format {
        if let explicit {
            guard let format = Format(rawValue: explicit) else {
                throw TensorError(.invalidArgument, "embed: --input-format `\(explicit)` is not jsonl or txt")
            }
            return format
        }
        if path == "-" { return .txt }
        switch (path as NSString).pathExtension.lowercased() {
        case "jsonl": return .jsonl
        case "txt": return .txt
        default:
            throw TensorError(.invalidArgument, "embed: cannot tell the format of `\(path)` from its extension; name "
                + "it .jsonl (one JSON string per line) or .txt (one sentence per line), or pass --input-format")
        }
    }

    /// Every sentence of `path` (`-` for standard input).
    /// - Throws: ``TensorError/Code/io`` when the file cannot be read, ``TensorError/Code/invalidArgument``
    ///   for text that is not UTF-8, a JSONL line that is not a JSON string (with its line number), or
    ///   an input without sentences.
    static func read(_ path: String, format: Format) throws -> [String] {
        let data: Data
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                  let contents = FileManager.default.contents(atPath: path) else {
                throw TensorError(.io, "embed: cannot read the input file `\(path)` (missing, a directory, or not "
                    + "readable)")
            }
            data = contents
        }
        let name = path == "-" ? "standard input" : path
        guard let text = String(data: data, encoding: .utf8) else {
            throw TensorError(.invalidArgument, "embed: \(name) is not UTF-8 text")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.hasSuffix("\r") ? String($0.dropLast()) : String($0)
        }
        // A final newline ends the last line; it does not start an empty one.
        if lines.last == "" { lines.removeLast() }
        guard !lines.isEmpty else {
            throw TensorError(.invalidArgument, "embed: \(name) holds no sentences")
        }
        switch format {
        case .txt:
            return lines
        case .jsonl:
            return try lines.enumerated().map { number, line in
                guard let value = try? JSONSerialization.jsonObject(with: Data(line.utf8), options: .fragmentsAllowed),
                      let sentence = value as? String else {
                    let shown = line.count > 60 ? String(line.prefix(57)) + "..." : line
                    throw TensorError(.invalidArgument, "embed: \(name) line \(number + 1) is not a JSON string: "
                        + "`\(shown)`; a .jsonl input holds one quoted string per line, like \"Hello world\" "
                        + "(write \"\" for an empty sentence)")
                }
                return sentence
            }
        }
    }
}
