/// The character classes of BERT's basic tokenizer, as Hugging Face `tokenizers` defines them
/// (`normalizers/bert.rs`, `pre_tokenizers/bert.rs`).
///
/// `tokenizers` takes general categories from the `unicode_categories` crate, whose tables are Unicode 8.0,
/// and decomposes with tables that know no later decomposition:
/// to give its ids, ``bertCategory`` sees what that table sees, not this Swift's newer Unicode. A scalar
/// assigned after 8.0 has no category there (it is neither removed, nor punctuation, nor a mark that accent
/// stripping drops), and seven scalars had another category in 8.0. Whitespace and lowercasing come from
/// Rust's standard library, which is current, and so are taken from Swift's tables as they are.
extension Unicode.Scalar {
    /// The general category in Unicode 8.0, nil for a scalar unassigned then.
    var bertCategory: Unicode.GeneralCategory? {
        // The scalars whose category changed after Unicode 8.0, with their 8.0 category.
        switch value {
        case 0x1734, 0x1171E: return .nonspacingMark    // Mc now
        case 0x166D, 0x111C9: return .otherPunctuation  // So and Mn now
        case 0x1885, 0x1886: return .otherLetter        // Mn now
        case 0xA9BD: return .spacingMark                // Mn now
        default: break
        }
        guard isInUnicode8 else { return nil }
        return properties.generalCategory
    }

    /// Assigned in Unicode 8.0 or before: the scalars `tokenizers`' category and decomposition tables know.
    var isInUnicode8: Bool {
        guard let age = properties.age else { return false }
        return age.major < 8 || (age.major == 8 && age.minor == 0)
    }

    /// Whitespace: tab, newline, carriage return, or any scalar with the Unicode `White_Space` property
    /// (Rust's `char::is_whitespace`): U+0009-000D, U+0020, U+0085, U+00A0, U+1680, U+2000-200A, U+2028,
    /// U+2029, U+202F, U+205F, U+3000. Zero-width characters (U+200B, U+2060, U+FEFF) are not whitespace.
    var isBertWhitespace: Bool {
        // ASCII first: Unicode property lookups cost far more than the rest of the tokenizer per scalar.
        if value < 0x80 { return value == 0x20 || (value >= 0x09 && value <= 0x0D) }
        return properties.isWhitespace
    }

    /// Removed by text cleaning: NUL, U+FFFD, and every scalar of general category control `Cc`, format `Cf`
    /// or private use `Co` except tab, newline and carriage return, which are whitespace. So U+000B, U+000C
    /// and U+0085 are removed although they are whitespace; unassigned scalars (`Cn`) are kept.
    var isBertRemoved: Bool {
        if value < 0x80 { return value < 0x20 ? !(value == 0x09 || value == 0x0A || value == 0x0D) : value == 0x7F }
        if value == 0xFFFD { return true }
        switch bertCategory {
        case .control, .format, .privateUse: return true
        default: return false
        }
    }

    /// A CJK ideograph that gets a space on each side: the blocks CJK Unified Ideographs and its extensions
    /// A-E, CJK Compatibility Ideographs and their supplement, with the exact ranges `tokenizers` uses
    /// (Hiragana, Katakana and Hangul are not in them: those scripts separate words with spaces).
    var isBertChineseCharacter: Bool {
        switch value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    /// Punctuation that becomes a word of its own: ASCII 33-47, 58-64, 91-96, 123-126 (which includes the
    /// symbols `$ + < = > ^ \` | ~`), or any scalar of general category `P*` (`Pc Pd Ps Pe Pi Pf Po`).
    var isBertPunctuation: Bool {
        switch value {
        case 33...47, 58...64, 91...96, 123...126: return true
        case 0..<128: return false
        default: break
        }
        switch bertCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// A nonspacing combining mark (general category `Mn`): what accent stripping drops after NFD.
    var isBertNonspacingMark: Bool {
        value >= 0x300 && bertCategory == .nonspacingMark   // U+0300 is the first Mn
    }
}
