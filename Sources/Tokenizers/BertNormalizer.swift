import Foundation

/// BERT's text normalisation, step for step as Hugging Face `tokenizers`' `BertNormalizer` does it.
///
/// In this order, each step optional:
/// 1. clean text: drop NUL, U+FFFD and control/format/unassigned/private-use scalars (`C*`, except tab,
///    newline and carriage return); every whitespace scalar becomes a space U+0020;
/// 2. CJK ideographs: a space before and after each (``Unicode/Scalar/isBertChineseCharacter``);
/// 3. strip accents: canonical decomposition (NFD), then drop nonspacing marks (`Mn`): "Ça" -> "Ca";
/// 4. lowercase: each scalar's full lowercase mapping, without context (so "Σ" is always "σ", never the
///    final "ς" that Python's `str.lower()` would give at the end of a word).
///
/// Everything works on Unicode scalars, never on `Character`s: a grapheme cluster (a letter with its
/// combining marks, an emoji ZWJ sequence) is several scalars here, as it is several `char`s in Rust.
public struct BertNormalizer: Sendable, Hashable {
    public var cleanText: Bool
    public var handleChineseCharacters: Bool
    public var stripAccents: Bool
    public var lowercase: Bool

    /// - Parameter stripAccents: `nil` follows `lowercase` (the `strip_accents: null` of a tokenizer config).
    public init(cleanText: Bool = true, handleChineseCharacters: Bool = true, stripAccents: Bool? = nil,
                lowercase: Bool = true) {
        self.cleanText = cleanText
        self.handleChineseCharacters = handleChineseCharacters
        self.stripAccents = stripAccents ?? lowercase
        self.lowercase = lowercase
    }

    /// The normalised text.
    public func normalize(_ text: String) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: normalize(scalars: Array(text.unicodeScalars)))
        return String(view)
    }

    func normalize(scalars input: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(input.count)
        for scalar in input {
            if cleanText {
                if scalar.isBertRemoved { continue }
                if scalar.isBertWhitespace {
                    scalars.append(" ")
                    continue
                }
            }
            if handleChineseCharacters && scalar.isBertChineseCharacter {
                scalars.append(contentsOf: [" ", scalar, " "])
            } else {
                scalars.append(scalar)
            }
        }
        if stripAccents { scalars = Self.strippingAccents(scalars) }
        if lowercase { scalars = Self.lowercased(scalars) }
        return scalars
    }

    /// NFD, then without `Mn` marks. Below U+00C0 no scalar has a canonical decomposition, so pure ASCII
    /// (and most Latin-1) text skips Foundation's decomposition. A scalar assigned after Unicode 8.0 is
    /// left as it is and bounds the runs decomposed around it: `tokenizers`' tables do not know it, so for
    /// them it has no decomposition and combining class 0.
    static func strippingAccents(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard scalars.contains(where: { $0.value >= 0xC0 }) else { return scalars }
        var result: [Unicode.Scalar] = []
        result.reserveCapacity(scalars.count + scalars.count / 2)
        var run = String.UnicodeScalarView()
        var runDecomposes = false
        func flush() {
            if runDecomposes {
                let decomposed = String(run).decomposedStringWithCanonicalMapping.unicodeScalars
                result.append(contentsOf: decomposed.lazy.filter { !$0.isBertNonspacingMark })
            } else {
                result.append(contentsOf: run)
            }
            run.removeAll(keepingCapacity: true)
            runDecomposes = false
        }
        for scalar in scalars {
            if scalar.value < 0xC0 {
                run.append(scalar)
            } else if scalar.isInUnicode8 {
                run.append(scalar)
                runDecomposes = true
            } else {
                flush()
                result.append(scalar)
            }
        }
        flush()
        return result
    }

    /// Each scalar replaced by its full lowercase mapping (Unicode `SpecialCasing` without conditions, as
    /// Rust's `char::to_lowercase`): "İ" -> "i̇" (two scalars), "ẞ" -> "ß".
    static func lowercased(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var result: [Unicode.Scalar] = []
        result.reserveCapacity(scalars.count)
        for scalar in scalars {
            if scalar.isASCII {
                let value = scalar.value
                result.append(value >= 65 && value <= 90 ? Unicode.Scalar(UInt8(value + 32)) : scalar)
            } else if scalar.properties.changesWhenLowercased {
                result.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            } else {
                result.append(scalar)
            }
        }
        return result
    }
}
