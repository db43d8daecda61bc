import Foundation
import QLTensor

extension WordPieceTokenizer {
    /// The tokenizer of a sentence-transformers / Hugging Face BERT model directory.
    ///
    /// Reads `vocab.txt` (one token per line, id = line number from 0), `tokenizer_config.json` if present
    /// (`do_lower_case`, default true; `strip_accents`, default: as `do_lower_case`; `tokenize_chinese_chars`,
    /// default true; the special token names) and the sequence length: `max_seq_length` of
    /// `sentence_bert_config.json`, else the smaller of `model_max_length` (tokenizer_config.json) and
    /// `max_position_embeddings` (config.json).
    /// - Throws: ``TensorError/Code/io`` for a missing directory or `vocab.txt`, an unreadable file;
    ///   ``TensorError/Code/checkpointFormat`` for a file that is not the JSON or vocabulary expected;
    ///   ``TensorError/Code/unsupportedOperation`` for `do_lower_case: true` in sentence_bert_config.json
    ///   (Python's context-dependent `str.lower()` before tokenizing, which this tokenizer does not imitate).
    public init(modelDirectory: String) throws {
        let directory = URL(fileURLWithPath: modelDirectory, isDirectory: true)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory),
              isDirectory.boolValue else {
            throw TensorError(.io, "model directory \(modelDirectory) does not exist or is not a directory; "
                + "fetch the model with scripts/fetch-minilm \(modelDirectory)")
        }
        let vocabulary = try Self.readVocabulary(directory.appendingPathComponent("vocab.txt"))
        let tokenizerConfig = try Self.readJSON(directory.appendingPathComponent("tokenizer_config.json"),
                                                as: TokenizerConfigFile.self)
        let sentenceConfig = try Self.readJSON(directory.appendingPathComponent("sentence_bert_config.json"),
                                               as: SentenceBertConfigFile.self)
        let modelConfig = try Self.readJSON(directory.appendingPathComponent("config.json"),
                                            as: ModelConfigFile.self)

        if sentenceConfig?.lowercase == true {
            throw TensorError(.unsupportedOperation, "sentence_bert_config.json of \(modelDirectory) sets "
                + "do_lower_case: true (Python str.lower() before tokenizing); only the tokenizer's own "
                + "lowercasing (tokenizer_config.json do_lower_case) is supported")
        }
        let normalizer = BertNormalizer(
            cleanText: true,
            handleChineseCharacters: tokenizerConfig?.handleChineseCharacters ?? true,
            stripAccents: tokenizerConfig?.stripAccents,
            lowercase: tokenizerConfig?.lowercase ?? true)
        let defaults = BertSpecialTokens()
        let specialTokens = BertSpecialTokens(
            classifier: tokenizerConfig?.classifier?.name ?? defaults.classifier,
            separator: tokenizerConfig?.separator?.name ?? defaults.separator,
            padding: tokenizerConfig?.padding?.name ?? defaults.padding,
            unknown: tokenizerConfig?.unknown?.name ?? defaults.unknown,
            mask: tokenizerConfig?.mask?.name ?? defaults.mask)

        // Lengths are read as numbers and checked here: JSONDecoder's own error for 1.5 names no key.
        func integer(_ value: Double?, _ key: String, _ file: String) throws -> Int? {
            guard let value else { return nil }
            // model_max_length is a huge float in some configs ("no limit"), hence the clamp.
            guard value.rounded() == value, value >= 0 else {
                throw TensorError(.checkpointFormat, "\(directory.appendingPathComponent(file).path): \"\(key)\" "
                    + "must be a non-negative integer, got \(value)")
            }
            return Int(min(value, Double(Int32.max)))
        }
        let length: Int
        if let configured = try integer(sentenceConfig?.maxSequenceLength, "max_seq_length",
                                       "sentence_bert_config.json") {
            length = configured
        } else {
            let limits = [try integer(tokenizerConfig?.modelMaxLength, "model_max_length", "tokenizer_config.json"),
                          try integer(modelConfig?.maxPositionEmbeddings, "max_position_embeddings", "config.json")]
            guard let smallest = limits.compactMap({ $0 }).min() else {
                throw TensorError(.checkpointFormat, "no sequence length in \(modelDirectory): add "
                    + "sentence_bert_config.json with max_seq_length, or model_max_length to tokenizer_config.json")
            }
            length = smallest
        }
        try self.init(vocabulary: vocabulary, normalizer: normalizer, maxSequenceLength: length,
                      specialTokens: specialTokens)
    }

    /// The lines of `vocab.txt`, without their line ends (`\n` or `\r\n`); a final empty line is no token.
    static func readVocabulary(_ url: URL) throws -> [String] {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TensorError(.io, "\(url.path) does not exist; the model directory needs the WordPiece vocabulary "
                + "vocab.txt (scripts/fetch-minilm DIR writes it)")
        }
        let data = try read(url)
        guard let text = String(data: data, encoding: .utf8) else {
            throw TensorError(.checkpointFormat, "\(url.path) is not UTF-8 text")
        }
        // Split on the byte, not the Character "\n": Swift reads "\r\n" as one Character.
        var lines = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
            String(decoding: line.last == UInt8(ascii: "\r") ? line.dropLast() : line, as: UTF8.self)
        }
        if lines.last == "" { lines.removeLast() }
        guard !lines.isEmpty else {
            throw TensorError(.checkpointFormat, "\(url.path) is empty; it must list one token per line")
        }
        return lines
    }

    /// The decoded JSON file `url`, or nil when it does not exist.
    static func readJSON<Config: Decodable>(_ url: URL, as type: Config.Type) throws -> Config? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let data = try read(url)
        do {
            return try JSONDecoder().decode(Config.self, from: data)
        } catch {
            throw TensorError(.checkpointFormat, "\(url.path) is not the JSON expected (\(describe(error))); "
                + "restore it from the model's package (scripts/fetch-minilm)")
        }
    }

    private static func describe(_ error: Error) -> String {
        switch error as? DecodingError {
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            return "\"\(key)\" must be \(type)"
        case .dataCorrupted(let context) where !context.codingPath.isEmpty:
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            return "\"\(key)\": \(context.debugDescription)"
        case .dataCorrupted(let context):
            let cause = context.underlyingError.map { ": \($0)" } ?? ""
            return "invalid JSON: \(context.debugDescription)\(cause)"
        default:
            return "\(error)"
        }
    }

    private static func read(_ url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            throw TensorError(.io, "cannot read \(url.path); check that it is a readable file",
                              underlying: "\(error)")
        }
    }
}

/// The keys of `tokenizer_config.json` the tokenizer follows (absent or `null`: the default).
struct TokenizerConfigFile: Decodable {
    var lowercase: Bool?
    var stripAccents: Bool?
    var handleChineseCharacters: Bool?
    var modelMaxLength: Double?
    var classifier: TokenName?
    var separator: TokenName?
    var padding: TokenName?
    var unknown: TokenName?
    var mask: TokenName?

    enum CodingKeys: String, CodingKey {
        case lowercase = "do_lower_case"
        case stripAccents = "strip_accents"
        case handleChineseCharacters = "tokenize_chinese_chars"
        case modelMaxLength = "model_max_length"
        case classifier = "cls_token"
        case separator = "sep_token"
        case padding = "pad_token"
        case unknown = "unk_token"
        case mask = "mask_token"
    }
}

/// `sentence_bert_config.json`.
struct SentenceBertConfigFile: Decodable {
    var maxSequenceLength: Double?
    var lowercase: Bool?

    enum CodingKeys: String, CodingKey {
        case maxSequenceLength = "max_seq_length"
        case lowercase = "do_lower_case"
    }
}

/// The key of the model's `config.json` that bounds the sequence length.
struct ModelConfigFile: Decodable {
    var maxPositionEmbeddings: Double?

    enum CodingKeys: String, CodingKey {
        case maxPositionEmbeddings = "max_position_embeddings"
    }
}

/// A special token's name: a string, or an added-token object `{"content": "[CLS]", ...}` (newer configs).
struct TokenName: Decodable {
    var name: String

    private struct AddedToken: Decodable { var content: String }

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let name = try? container.decode(String.self) {
            self.name = name
        } else {
            name = try container.decode(AddedToken.self).content
        }
    }
}
