import Foundation
import QLTensor

/// A pattern on layer names: a glob by default, a regular expression when written `re:EXPR` or `/EXPR/`.
///
/// Globs match the whole name: `*` any run of characters (dots included), `?` one character,
/// `[abc]` one of a set; everything else literally. `blocks.*.attn.*` matches `blocks.0.attn.q`.
/// Regular expressions (NSRegularExpression syntax) match anywhere unless anchored:
/// `re:^blocks\.(0|1)\.` or `/ffn/`.
public struct LayerPattern: Sendable, CustomStringConvertible {
    public let text: String
    private let expression: NSRegularExpression

    /// - Throws: ``TensorError/Code/invalidArgument`` for a regular expression that does not compile.
    public init(_ text: String) throws {
        self.text = text
        let source: String
        if text.hasPrefix("re:") {
            source = String(text.dropFirst(3))
        } else if text.count >= 2, text.hasPrefix("/"), text.hasSuffix("/") {
            source = String(text.dropFirst().dropLast())
        } else {
            source = "^" + Self.globToRegex(text) + "$"
        }
        do {
            expression = try NSRegularExpression(pattern: source)
        } catch {
            throw TensorError(.invalidArgument, "layer pattern `\(text)` is not a valid regular expression; "
                + "write globs plainly (`blocks.*.attn.*`) and regexes as `re:EXPR` or `/EXPR/`")
        }
    }

    public func matches(_ name: String) -> Bool {
        expression.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil
    }

    public var description: String { text }

    static func globToRegex(_ glob: String) -> String {
        var result = ""
        var inSet = false
        for character in glob {
            switch character {
            case "*" where !inSet: result += ".*"
            case "?" where !inSet: result += "."
            case "[" where !inSet:
                inSet = true
                result += "["
            case "]" where inSet:
                inSet = false
                result += "]"
            default: result += inSet ? String(character) : NSRegularExpression.escapedPattern(for: String(character))
            }
        }
        return result
    }
}
