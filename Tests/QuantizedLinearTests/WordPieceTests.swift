import QuantizedLinear
import Testing

/// Word splitting and greedy longest-match-first WordPiece on hand-written vocabularies.
@Suite struct WordPieceTests {
    @Test(arguments: [
        ("Hello, world!!", ["Hello", ",", "world", "!", "!"]),
        ("  spaced   out  ", ["spaced", "out"]),
        ("$5+3=8^2|x~y`z", ["$", "5", "+", "3", "=", "8", "^", "2", "|", "x", "~", "y", "`", "z"]), // ASCII symbols
        ("a_b-c¿d«e»f…g", ["a", "_", "b", "-", "c", "¿", "d", "«", "e", "»", "f", "…", "g"]),         // Unicode P*
        ("a€b×c©d", ["a€b×c©d"]),                   // Sc, Sm, So beyond ASCII are not punctuation
        ("x\u{166D}y", ["x", "\u{166D}", "y"]),     // Po in Unicode 8.0 (So now)
        ("x\u{2E43}y", ["x\u{2E43}y"]),             // Po since 9.0: unknown to tokenizers' tables
        ("", []),
    ])
    func preTokenizer(input: String, expected: [String]) {
        #expect(BertPreTokenizer.words(in: input) == expected)
    }

    let vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "aff", "able",
                      "a", "##a", "##b", "é", "e", "##\u{301}", "##e"]

    func model(maxCharacters: Int = 100) throws -> WordPiece {
        try WordPiece(tokens: vocabulary, maxInputCharactersPerWord: maxCharacters)
    }

    func pieces(_ word: String, _ model: WordPiece) -> [String] {
        model.tokenize(word: word).map { model.tokens[Int($0)] }
    }

    @Test func greedyLongestMatchFirst() throws {
        let model = try model()
        #expect(pieces("unaffable", model) == ["un", "##aff", "##able"])
        #expect(pieces("affable", model) == ["aff", "##able"])
        #expect(pieces("aab", model) == ["a", "##a", "##b"])
    }

    @Test func wordWithoutSplitIsOneUnknown() throws {
        let model = try model()
        // "un" and "##aff" match, then nothing for "x": the whole word is [UNK], not un ##aff [UNK].
        #expect(pieces("unaffx", model) == ["[UNK]"])
        #expect(pieces("zzz", model) == ["[UNK]"])
    }

    @Test func wordLengthLimitCountsScalars() throws {
        let model = try model()
        #expect(pieces(String(repeating: "a", count: 100), model) == ["a"] + Array(repeating: "##a", count: 99))
        #expect(pieces(String(repeating: "a", count: 101), model) == ["[UNK]"])
        // 50 Characters of two scalars each: 100 scalars fit, 51 of them (102 scalars) do not.
        let fifty = String(repeating: "e\u{301}", count: 50)
        #expect(fifty.count == 50)
        let continued = Array(repeating: ["##e", "##\u{301}"], count: 49).flatMap { $0 }
        #expect(pieces(fifty, model) == ["e", "##\u{301}"] + continued)
        #expect(pieces(fifty + "e\u{301}", model) == ["[UNK]"])
        #expect(pieces("aaa", try self.model(maxCharacters: 2)) == ["[UNK]"])
    }

    @Test func piecesMatchAsBytesNotCanonicallyEquivalentStrings() throws {
        let model = try model()
        // Swift's String == says "e\u{301}" == "é"; the vocabulary lookup must not.
        #expect("e\u{301}" == "é")
        #expect(model.id(of: "e\u{301}") == nil)
        #expect(model.id(of: "é") == 13)
        #expect(pieces("e\u{301}", model) == ["e", "##\u{301}"])
    }

    @Test func duplicateTokenGetsItsLastIndex() throws {
        let model = try WordPiece(tokens: ["[UNK]", "x", "x"])
        #expect(model.id(of: "x") == 2)
    }

    @Test func invalidModelsThrow() {
        let noUnknown = #expect(throws: TensorError.self) { try WordPiece(tokens: ["a", "b"]) }
        #expect(noUnknown?.code == .invalidArgument)
        #expect(noUnknown?.message.contains("[UNK]") == true)
        let noLength = #expect(throws: TensorError.self) {
            try WordPiece(tokens: ["[UNK]"], maxInputCharactersPerWord: 0)
        }
        #expect(noLength?.code == .invalidArgument)
    }
}
