import Foundation
import QuantizedLinear
import Testing

/// `WordPieceTokenizer` on a hand-written vocabulary and hand-written model directories (no model needed).
@Suite struct WordPieceTokenizerTests {
    static let vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[", "]", ",", "!", "the", "cat",
                             "sat", "mask", "hello", "world", "un", "##aff", "##able", "cafe", "中", "文", "Cat"]

    func tokenizer(maxSequenceLength: Int = 16, normalizer: BertNormalizer = BertNormalizer()) throws
        -> WordPieceTokenizer {
        try WordPieceTokenizer(vocabulary: Self.vocabulary, normalizer: normalizer,
                               maxSequenceLength: maxSequenceLength)
    }

    func tokens(_ ids: [Int32]) -> [String] { ids.map { Self.vocabulary[Int($0)] } }

    @Test func encodeFramesWithClassifierAndSeparator() throws {
        let tokenizer = try tokenizer()
        #expect(tokens(tokenizer.encode("Hello, WORLD!")) == ["[CLS]", "hello", ",", "world", "!", "[SEP]"])
        #expect(tokens(tokenizer.encode("Unaffable café 中文")) ==
                ["[CLS]", "un", "##aff", "##able", "cafe", "中", "文", "[SEP]"])
        #expect(tokens(tokenizer.encode("the dog")) == ["[CLS]", "the", "[UNK]", "[SEP]"])
    }

    @Test(arguments: ["", " ", "\t\n\r ", "\u{0}\u{200B}\u{FFFD}"])
    func textWithoutTokensIsClassifierAndSeparator(text: String) throws {
        #expect(tokens(try tokenizer().encode(text)) == ["[CLS]", "[SEP]"])
    }

    @Test func specialTokensInTheTextAreKept() throws {
        let tokenizer = try tokenizer()
        #expect(tokens(tokenizer.encode("the [MASK] sat")) == ["[CLS]", "the", "[MASK]", "sat", "[SEP]"])
        // Matched in the raw text, inside a word, before normalisation (so case sensitive).
        #expect(tokens(tokenizer.encode("cat[SEP]cat")) == ["[CLS]", "cat", "[SEP]", "cat", "[SEP]"])
        #expect(tokens(tokenizer.encode("[mask]")) == ["[CLS]", "[", "mask", "]", "[SEP]"])
        #expect(tokens(tokenizer.encode("[MASK")) == ["[CLS]", "[", "mask", "[SEP]"])
        #expect(tokens(tokenizer.encode("[UNK][PAD][CLS]")) == ["[CLS]", "[UNK]", "[PAD]", "[CLS]", "[SEP]"])
    }

    @Test func truncationKeepsSeparator() throws {
        let tokenizer = try tokenizer(maxSequenceLength: 5)
        #expect(tokens(tokenizer.encode("the cat sat the cat sat")) == ["[CLS]", "the", "cat", "sat", "[SEP]"])
        #expect(tokens(tokenizer.encode("the cat sat")) == ["[CLS]", "the", "cat", "sat", "[SEP]"])  // exact fit
        #expect(tokens(tokenizer.encode("the cat")) == ["[CLS]", "the", "cat", "[SEP]"])
        // A word's pieces are cut like any others; special tokens in the text count too.
        #expect(tokens(tokenizer.encode("the unaffable")) == ["[CLS]", "the", "un", "##aff", "[SEP]"])
        #expect(tokens(tokenizer.encode("[MASK] [MASK] [MASK] [MASK]")) ==
                ["[CLS]", "[MASK]", "[MASK]", "[MASK]", "[SEP]"])
        #expect(tokens(try self.tokenizer(maxSequenceLength: 2).encode("the cat")) == ["[CLS]", "[SEP]"])
    }

    @Test func truncatedLongTextHasMaxSequenceLength() throws {
        let tokenizer = try tokenizer(maxSequenceLength: 256)
        let ids = tokenizer.encode(String(repeating: "hello world, ", count: 1000))
        #expect(ids.count == 256)
        #expect(ids.first == tokenizer.classifierID && ids.last == tokenizer.separatorID)
    }

    @Test func casedTokenizerKeepsCase() throws {
        let cased = try tokenizer(normalizer: BertNormalizer(lowercase: false))
        #expect(tokens(cased.encode("Cat cat CAT")) == ["[CLS]", "Cat", "cat", "[UNK]", "[SEP]"])
    }

    @Test func batchPadsToTheLongestWithMask() throws {
        let tokenizer = try tokenizer()
        let batch = try tokenizer.batch(["the cat sat", "", "hello"])
        #expect(batch.lengths == [5, 2, 3])
        #expect(batch.ids.shape == [3, 5] && batch.ids.dtype == .int32)
        #expect(batch.attentionMask.shape == [3, 5] && batch.attentionMask.dtype == .int32)
        #expect(try batch.ids.elements(as: Int32.self) == [2, 9, 10, 11, 3,
                                                           2, 3, 0, 0, 0,
                                                           2, 13, 3, 0, 0])
        #expect(try batch.attentionMask.elements(as: Int32.self) == [1, 1, 1, 1, 1,
                                                                     1, 1, 0, 0, 0,
                                                                     1, 1, 1, 0, 0])
    }

    @Test func batchRowsEqualEncode() throws {
        let tokenizer = try tokenizer(maxSequenceLength: 6)
        let texts = ["the cat sat on the mat with the hat", "中文", "[MASK]!"]
        let batch = try tokenizer.batch(texts)
        let ids = try batch.ids.elements(as: Int32.self)
        let width = batch.ids.shape[1]
        for (row, text) in texts.enumerated() {
            let encoded = tokenizer.encode(text)
            #expect(batch.lengths[row] == encoded.count)
            #expect(Array(ids[(row * width)..<(row * width + encoded.count)]) == encoded)
            #expect(ids[(row * width + encoded.count)..<((row + 1) * width)].allSatisfy { $0 == tokenizer.paddingID })
        }
        #expect(width == 6)
    }

    @Test func emptyBatchThrows() throws {
        let error = #expect(throws: TensorError.self) { try tokenizer().batch([]) }
        #expect(error?.code == .invalidArgument)
    }

    @Test func invalidVocabularyOrLengthThrows() {
        let short = #expect(throws: TensorError.self) {
            try WordPieceTokenizer(vocabulary: Self.vocabulary, maxSequenceLength: 1)
        }
        #expect(short?.code == .invalidArgument)
        let noMask = #expect(throws: TensorError.self) {
            try WordPieceTokenizer(vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]"], maxSequenceLength: 8)
        }
        #expect(noMask?.code == .invalidArgument)
        #expect(noMask?.message.contains("[MASK]") == true)
    }
}

/// `WordPieceTokenizer(modelDirectory:)` on small directories written by the test.
@Suite struct WordPieceTokenizerDirectoryTests {
    /// A fresh directory with `vocab.txt` and the given files.
    func directory(vocabulary: String = WordPieceTokenizerTests.vocabulary.joined(separator: "\n") + "\n",
                   files: [String: String]) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qltok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        try vocabulary.write(to: url.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        for (name, text) in files {
            try text.write(to: url.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return url.path
    }

    func remove(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

    @Test func readsSequenceLengthAndCaseFromConfigs() throws {
        let path = try directory(files: [
            "sentence_bert_config.json": #"{"max_seq_length": 4, "do_lower_case": false}"#,
            "tokenizer_config.json": #"{"do_lower_case": false, "strip_accents": null, "model_max_length": 512}"#,
        ])
        defer { remove(path) }
        let tokenizer = try WordPieceTokenizer(modelDirectory: path)
        #expect(tokenizer.maxSequenceLength == 4)
        #expect(tokenizer.normalizer == BertNormalizer(lowercase: false))
        #expect(tokenizer.encode("Cat cat sat") == [2, 21, 10, 3])
    }

    @Test func sequenceLengthFallsBackToTheSmallerModelLimit() throws {
        let path = try directory(files: [
            "tokenizer_config.json": #"{"model_max_length": 1000000000000000019884624838656}"#,
            "config.json": #"{"max_position_embeddings": 512, "hidden_size": 384}"#,
        ])
        defer { remove(path) }
        #expect(try WordPieceTokenizer(modelDirectory: path).maxSequenceLength == 512)
    }

    @Test func specialTokenNamesFromConfig() throws {
        let vocabulary = ["<pad>", "<unk>", "<s>", "</s>", "<mask>", "hi"].joined(separator: "\r\n")
        let config = #"""
            {"cls_token": "<s>", "sep_token": {"content": "</s>", "lstrip": false}, "pad_token": "<pad>",
             "unk_token": "<unk>", "mask_token": "<mask>", "model_max_length": 8}
            """#
        let path = try directory(vocabulary: vocabulary, files: ["tokenizer_config.json": config])
        defer { remove(path) }
        let tokenizer = try WordPieceTokenizer(modelDirectory: path)
        #expect(tokenizer.encode("hi <mask> there") == [2, 5, 4, 1, 3])
        #expect(tokenizer.model.tokens.count == 6)   // CRLF line ends, no trailing empty token
    }

    @Test func missingDirectoryThrows() {
        let error = #expect(throws: TensorError.self) {
            try WordPieceTokenizer(modelDirectory: "/nonexistent/qlinear-minilm")
        }
        #expect(error?.code == .io)
        #expect(error?.message.contains("scripts/fetch-minilm") == true)
    }

    @Test func missingVocabularyThrows() throws {
        let path = try directory(files: [:])
        defer { remove(path) }
        try FileManager.default.removeItem(atPath: path + "/vocab.txt")
        let error = #expect(throws: TensorError.self) { try WordPieceTokenizer(modelDirectory: path) }
        #expect(error?.code == .io)
        #expect(error?.message.contains("vocab.txt") == true)
    }

    @Test(arguments: [
        ("tokenizer_config.json", #"{"do_lower_case": tru"#, "not the JSON expected"),
        ("tokenizer_config.json", #"{"do_lower_case": "yes"}"#, "do_lower_case"),
        ("sentence_bert_config.json", #"{"max_seq_length": "long"}"#, "max_seq_length"),
        ("sentence_bert_config.json", #"[256]"#, "sentence_bert_config.json"),
        ("config.json", #"{"max_position_embeddings": 1.5}"#, "max_position_embeddings"),
    ])
    func invalidConfigThrows(file: String, text: String, mentioned: String) throws {
        let path = try directory(files: [file: text])
        defer { remove(path) }
        let error = #expect(throws: TensorError.self) { try WordPieceTokenizer(modelDirectory: path) }
        #expect(error?.code == .checkpointFormat)
        #expect(error?.message.contains(mentioned) == true, "\(error?.message ?? "")")
    }

    @Test func noSequenceLengthThrows() throws {
        let path = try directory(files: [:])
        defer { remove(path) }
        let error = #expect(throws: TensorError.self) { try WordPieceTokenizer(modelDirectory: path) }
        #expect(error?.code == .checkpointFormat)
        #expect(error?.message.contains("max_seq_length") == true)
    }

    @Test func sentenceTransformersLowercasingIsRefused() throws {
        let config = #"{"max_seq_length": 8, "do_lower_case": true}"#
        let path = try directory(files: ["sentence_bert_config.json": config])
        defer { remove(path) }
        let error = #expect(throws: TensorError.self) { try WordPieceTokenizer(modelDirectory: path) }
        #expect(error?.code == .unsupportedOperation)
    }

    @Test func emptyVocabularyThrows() throws {
        let path = try directory(vocabulary: "", files: ["sentence_bert_config.json": #"{"max_seq_length": 8}"#])
        defer { remove(path) }
        let error = #expect(throws: TensorError.self) { try WordPieceTokenizer(modelDirectory: path) }
        #expect(error?.code == .checkpointFormat)
    }
}
