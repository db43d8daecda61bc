/// The names of BERT's special tokens (`tokenizer_config.json`'s `cls_token`, `sep_token`, ...).
///
/// Besides framing and padding, these are matched in the raw input text before any normalisation, as
/// Hugging Face `tokenizers` does with its non-normalised added tokens: "a [MASK] b" holds the mask token
/// itself, not the pieces of "[", "mask", "]". Matching is case sensitive, leftmost first, longest first.
public struct BertSpecialTokens: Sendable, Hashable {
    public var classifier: String
    public var separator: String
    public var padding: String
    public var unknown: String
    public var mask: String

    public init(classifier: String = "[CLS]", separator: String = "[SEP]", padding: String = "[PAD]",
                unknown: String = "[UNK]", mask: String = "[MASK]") {
        self.classifier = classifier
        self.separator = separator
        self.padding = padding
        self.unknown = unknown
        self.mask = mask
    }

    var all: [String] { [padding, unknown, classifier, separator, mask] }
}

/// A piece of the raw text: either text to normalise and split, or a special token's id.
enum TextSegment: Equatable {
    case text(ArraySlice<Unicode.Scalar>)
    case special(Int32)
}

/// Leftmost-longest matcher of the special tokens in raw text.
struct SpecialTokenMatcher: Sendable {
    /// (scalars, id), longest first so the first match at a position is the longest.
    private let patterns: [([Unicode.Scalar], Int32)]
    /// The scalars a pattern starts with: every other position is skipped at once.
    private let firstScalars: Set<Unicode.Scalar>

    init(tokens: [(String, Int32)]) {
        patterns = tokens.map { (Array($0.0.unicodeScalars), $0.1) }
            .filter { !$0.0.isEmpty }
            .sorted { $0.0.count > $1.0.count }
        firstScalars = Set(patterns.map { $0.0[0] })
    }

    func segments(of scalars: [Unicode.Scalar]) -> [TextSegment] {
        var segments: [TextSegment] = []
        var textStart = 0
        var index = 0
        while index < scalars.count {
            guard firstScalars.contains(scalars[index]),
                  let (pattern, id) = patterns.first(where: { matches($0.0, in: scalars, at: index) }) else {
                index += 1
                continue
            }
            if textStart < index { segments.append(.text(scalars[textStart..<index])) }
            segments.append(.special(id))
            index += pattern.count
            textStart = index
        }
        if textStart < scalars.count { segments.append(.text(scalars[textStart...])) }
        return segments
    }

    private func matches(_ pattern: [Unicode.Scalar], in scalars: [Unicode.Scalar], at index: Int) -> Bool {
        guard scalars.count - index >= pattern.count else { return false }
        return pattern.indices.allSatisfy { scalars[index + $0] == pattern[$0] }
    }
}
