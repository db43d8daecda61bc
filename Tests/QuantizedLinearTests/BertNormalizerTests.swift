import QuantizedLinear
import Testing

/// Each normalisation step on its own, against what Hugging Face `tokenizers` does (see NOTES.md, Tokenizer).
@Suite struct BertNormalizerTests {
    let uncased = BertNormalizer()

    /// Scalars of a string, to compare without Swift's canonical equivalence ("é" == "e\u{301}" as Strings).
    func scalars(_ text: String) -> [UInt32] { text.unicodeScalars.map(\.value) }

    @Test(arguments: [
        ("a\u{0}b\u{FFFD}c", "abc"),                          // NUL and the replacement character
        ("bell\u{7}esc\u{1B}del\u{7F}", "bellescdel"),        // Cc
        ("zero\u{200B}width\u{200D}\u{FEFF}\u{AD}x", "zerowidthx"), // Cf: ZWSP, ZWJ, BOM, soft hyphen
        ("a\u{E000}b\u{F8FF}c", "abc"),                       // private use
        ("a\u{B}b\u{C}c\u{85}d", "abcd"),                     // whitespace but Cc: removed, not spaced
        ("a\tb\nc\r\nd", "a b c  d"),                         // tab, newline, CR are spaces
        ("a\u{A0}b\u{2003}c\u{3000}d\u{2028}e\u{2029}f", "a b c d e f"), // Unicode White_Space
        ("a\u{378}b", "a\u{378}b"),                           // unassigned (Cn) is kept
    ])
    func cleanText(input: String, expected: String) {
        #expect(scalars(uncased.normalize(input)) == scalars(expected))
    }

    @Test(arguments: [
        ("中文abc", " 中  文 abc"),
        ("a\u{3400}b\u{20000}c", "a \u{3400} b \u{20000} c"),
        ("a\u{2B81F}b", "a \u{2B81F} b"),          // last of extension D
        ("a\u{2B820}b", "a\u{2B820}b"),            // 2B820-2B91F are not in tokenizers' ranges
        // Not spaced; Hangul decomposes into jamo, and the dakuten of が (U+3099, Mn) is stripped.
        ("ひらがなカタカナ한글", "ひらかなカタカナ\u{1112}\u{1161}\u{11AB}\u{1100}\u{1173}\u{11AF}"),
    ])
    func chineseCharactersGetSpaces(input: String, expected: String) {
        #expect(scalars(uncased.normalize(input)) == scalars(expected))
    }

    @Test func chineseCharacterSpacingCanBeTurnedOff() {
        let normalizer = BertNormalizer(handleChineseCharacters: false)
        #expect(scalars(normalizer.normalize("中文")) == scalars("中文"))
    }

    @Test(arguments: [
        ("Café", "cafe"),
        ("e\u{301}", "e"),                         // already decomposed
        ("ÀÉÎÕÜ Ångström", "aeiou angstrom"),
        ("ǟ", "a"),                                // two marks
        ("≠", "="),                                // = + U+0338 (Mn)
        ("İ", "i"),                                // I + U+0307 before lowercasing
        ("ἀρχὴ", "αρχη"),
        ("Łódź Øre", "łodz øre"),                  // ł and ø have no decomposition
    ])
    func stripAccentsThenLowercase(input: String, expected: String) {
        #expect(scalars(uncased.normalize(input)) == scalars(expected))
    }

    @Test func accentsKeptWhenStripAccentsIsOff() {
        let normalizer = BertNormalizer(stripAccents: false, lowercase: true)
        #expect(scalars(normalizer.normalize("CAFÉ")) == scalars("caf\u{E9}"))
        // Full lowercase mapping of İ: i + combining dot above (two scalars), kept without accent stripping.
        #expect(scalars(normalizer.normalize("İ")) == [0x69, 0x307])
    }

    @Test func strippingAccentsFollowsLowercaseByDefault() {
        #expect(BertNormalizer(lowercase: false).stripAccents == false)
        #expect(BertNormalizer(lowercase: true).stripAccents == true)
        #expect(BertNormalizer(stripAccents: true, lowercase: false).normalize("Éa") == "Ea")
    }

    @Test(arguments: [
        ("HeLLo WORLD", "hello world"),
        ("ΟΔΟΣ", "οδοσ"),                          // no final sigma: per scalar, as Rust's to_lowercase
        ("ẞ", "ß"),
        ("ＡＢＣ", "ａｂｃ"),                       // fullwidth: lowercased, not folded to ASCII
        ("ПРИВЕТ", "привет"),
    ])
    func lowercase(input: String, expected: String) {
        #expect(scalars(uncased.normalize(input)) == scalars(expected))
    }

    @Test func casedNormalizerKeepsCase() {
        let cased = BertNormalizer(lowercase: false)
        #expect(cased.normalize("Café ΟΔΟΣ") == "Café ΟΔΟΣ")
    }

    /// `tokenizers` classifies with Unicode 8.0 tables: later scalars have no category there.
    @Test func unicode8Categories() {
        #expect(scalars(uncased.normalize("a\u{898}b")) == [0x61, 0x898, 0x62])   // Mn since 14.0: kept
        #expect(scalars(uncased.normalize("a\u{1734}b")) == [0x61, 0x62])         // Mn in 8.0, Mc now: dropped
        #expect(scalars(uncased.normalize("a\u{1885}b")) == [0x61, 0x1885, 0x62]) // Lo in 8.0, Mn now: kept
        #expect(scalars(uncased.normalize("a\u{890}b")) == [0x61, 0x890, 0x62])   // Cf since 14.0: kept
        // Dives Akuru vowel sign O (13.0) decomposes in current Unicode, not in tokenizers' tables.
        #expect(scalars(uncased.normalize("\u{11938}")) == [0x11938])
        // ...and bounds the decomposed runs around it.
        #expect(scalars(uncased.normalize("É\u{11938}é")) == [0x65, 0x11938, 0x65])
    }

    @Test func graphemeClustersAreSplitIntoScalars() {
        // One Character (family emoji), seven scalars; the ZWJs are Cf and removed.
        let family = "👨\u{200D}👩\u{200D}👧"
        #expect(family.count == 1)
        #expect(scalars(uncased.normalize(family)) == [0x1F468, 0x1F469, 0x1F467])
    }
}
