import QLTensor

/// BERT's uncased WordPiece tokenizer: the token ids Hugging Face `tokenizers` gives for a model's
/// `tokenizer.json` (`BertNormalizer` + `BertPreTokenizer` + `WordPiece` + `[CLS] ... [SEP]`), id for id.
///
/// `encode(text)`:
/// 1. special tokens (`[CLS]`, `[SEP]`, `[PAD]`, `[UNK]`, `[MASK]`) written in the text are kept as themselves;
/// 2. the rest is normalised (``BertNormalizer``), split into words (``BertPreTokenizer``) and each word
///    into pieces (``WordPiece``);
/// 3. the first `maxSequenceLength - 2` pieces are framed as `[CLS] pieces [SEP]`.
///
/// ```swift
/// let tokenizer = try WordPieceTokenizer(modelDirectory: ".models/all-MiniLM-L6-v2")
/// tokenizer.encode("Hello, world!")   // [101, 7592, 1010, 2088, 999, 102]
/// let batch = try tokenizer.batch(["a", "b c"])   // ids and attention mask [2, 4]
/// ```
public struct WordPieceTokenizer: Sendable {
    public let normalizer: BertNormalizer
    public let model: WordPiece
    public let specialTokens: BertSpecialTokens
    /// The most ids ``encode(_:)`` returns, `[CLS]` and `[SEP]` included.
    public let maxSequenceLength: Int
    public let classifierID: Int32
    public let separatorID: Int32
    public let paddingID: Int32
    private let matcher: SpecialTokenMatcher

    /// A tokenizer over an in-memory vocabulary.
    /// - Parameters:
    ///   - vocabulary: token strings; a token's id is its index (the lines of `vocab.txt`).
    ///   - maxSequenceLength: at least 2 (room for `[CLS]` and `[SEP]`).
    /// - Throws: ``TensorError/Code/invalidArgument`` when a special token is not in the vocabulary or
    ///   `maxSequenceLength` is below 2.
    public init(vocabulary: [String], normalizer: BertNormalizer = BertNormalizer(), maxSequenceLength: Int,
                specialTokens: BertSpecialTokens = BertSpecialTokens(), maxInputCharactersPerWord: Int = 100) throws {
        guard maxSequenceLength >= 2 else {
            throw TensorError(.invalidArgument, "maxSequenceLength must be at least 2 (room for [CLS] and [SEP]), "
                + "got \(maxSequenceLength); fix max_seq_length in sentence_bert_config.json")
        }
        let model = try WordPiece(tokens: vocabulary, unknownToken: specialTokens.unknown,
                                  maxInputCharactersPerWord: maxInputCharactersPerWord)
        func id(_ name: String, _ key: String) throws -> Int32 {
            guard let id = model.id(of: name) else {
                throw TensorError(.invalidArgument, "the special token \"\(name)\" (\(key)) is not in the vocabulary; "
                    + "add it to vocab.txt or name the vocabulary's own token in tokenizer_config.json (\(key))")
            }
            return id
        }
        self.normalizer = normalizer
        self.model = model
        self.specialTokens = specialTokens
        self.maxSequenceLength = maxSequenceLength
        classifierID = try id(specialTokens.classifier, "cls_token")
        separatorID = try id(specialTokens.separator, "sep_token")
        paddingID = try id(specialTokens.padding, "pad_token")
        let maskID = try id(specialTokens.mask, "mask_token")
        matcher = SpecialTokenMatcher(tokens: [
            (specialTokens.padding, paddingID), (specialTokens.unknown, model.unknownTokenID),
            (specialTokens.classifier, classifierID), (specialTokens.separator, separatorID),
            (specialTokens.mask, maskID),
        ])
    }

    /// `[CLS]`, the text's first `maxSequenceLength - 2` token ids, `[SEP]`.
    public func encode(_ text: String) -> [Int32] {
        let limit = maxSequenceLength - 2
        var ids: [Int32] = [classifierID]
        ids.reserveCapacity(min(limit, text.utf8.count) + 2)
        var pieces: [Int32] = []
        segments: for segment in matcher.segments(of: Array(text.unicodeScalars)) {
            switch segment {
            case .special(let id):
                ids.append(id)
            case .text(let scalars):
                for word in BertPreTokenizer.words(in: normalizer.normalize(scalars: Array(scalars))) {
                    pieces.removeAll(keepingCapacity: true)
                    model.tokenize(word: word, into: &pieces)
                    ids.append(contentsOf: pieces)
                    if ids.count > limit { break segments }
                }
            }
            if ids.count > limit { break }
        }
        if ids.count > limit + 1 { ids.removeSubrange((limit + 1)...) }
        ids.append(separatorID)
        return ids
    }
}
