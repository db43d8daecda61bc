import QLTensor

/// Greedy longest-match-first subword splitting of one word (Hugging Face `tokenizers`' `WordPiece` model).
///
/// From the start of the word, the longest prefix in the vocabulary is the first piece; then the longest
/// `##`-prefixed continuation from where it ended, and so on: "unaffable" -> ["un", "##aff", "##able"].
/// A word with no split into vocabulary pieces, or longer than ``maxInputCharactersPerWord`` scalars,
/// is the one unknown token. Pieces are compared as UTF-8 bytes, never as Swift `String`s (which compare
/// canonically equivalent text as equal: a decomposed Hangul syllable would match its precomposed entry).
public struct WordPiece: Sendable {
    /// Token strings by id (the lines of `vocab.txt`).
    public let tokens: [String]
    public let unknownTokenID: Int32
    public let continuingSubwordPrefix: String
    public let maxInputCharactersPerWord: Int
    private let table: VocabularyTable

    /// - Parameters:
    ///   - tokens: the vocabulary; a token's id is its index. A token listed twice gets its last index.
    ///   - unknownToken: what a word with no split becomes; must be in `tokens`.
    /// - Throws: ``TensorError/Code/invalidArgument`` when `unknownToken` is not in the vocabulary or
    ///   `maxInputCharactersPerWord` is not positive.
    public init(tokens: [String], unknownToken: String = "[UNK]", continuingSubwordPrefix: String = "##",
                maxInputCharactersPerWord: Int = 100) throws {
        guard tokens.count <= Int(Int32.max) else {
            throw TensorError(.invalidArgument, "a vocabulary of \(tokens.count) tokens does not fit int32 ids")
        }
        let table = VocabularyTable(tokens: tokens)
        guard let unknown = table.id(of: Array(unknownToken.utf8)[...]) else {
            throw TensorError(.invalidArgument, "the unknown token \"\(unknownToken)\" is not in the vocabulary; "
                + "add it to vocab.txt or name the vocabulary's unknown token in tokenizer_config.json (unk_token)")
        }
        guard maxInputCharactersPerWord > 0 else {
            throw TensorError(.invalidArgument,
                              "maxInputCharactersPerWord must be positive, got \(maxInputCharactersPerWord)")
        }
        self.tokens = tokens
        self.table = table
        self.unknownTokenID = unknown
        self.continuingSubwordPrefix = continuingSubwordPrefix
        self.maxInputCharactersPerWord = maxInputCharactersPerWord
    }

    /// The id of `token` (exactly these UTF-8 bytes), if it is in the vocabulary.
    public func id(of token: String) -> Int32? {
        table.id(of: Array(token.utf8)[...])
    }

    /// The piece ids of one word (no whitespace, already normalised).
    public func tokenize(word: String) -> [Int32] {
        var pieces: [Int32] = []
        tokenize(word: Array(word.unicodeScalars)[...], into: &pieces)
        return pieces
    }

    func tokenize(word: ArraySlice<Unicode.Scalar>, into pieces: inout [Int32]) {
        guard word.count <= maxInputCharactersPerWord else {
            pieces.append(unknownTokenID)
            return
        }
        // UTF-8 offsets of each scalar boundary, so candidates are byte ranges of one encoded buffer.
        var bytes: [UInt8] = []
        var boundaries = [0]
        for scalar in word {
            bytes.append(contentsOf: UTF8.encode(scalar)!)
            boundaries.append(bytes.count)
        }
        let prefix = Array(continuingSubwordPrefix.utf8)[...]
        let firstPiece = pieces.count
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int32?
            while end > start {
                let piece = bytes[boundaries[start]..<boundaries[end]]
                if let id = start == 0 ? table.id(of: piece) : table.id(of: piece, after: prefix) {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else {
                pieces.removeSubrange(firstPiece...)
                pieces.append(unknownTokenID)
                return
            }
            pieces.append(id)
            start = end
        }
    }
}

/// Token ids by UTF-8 bytes, looked up from byte slices without building a key: a 64-bit FNV-1a hash of
/// the bytes finds the candidate ids (one, unless two tokens share a hash), whose bytes are then compared.
struct VocabularyTable: Sendable {
    private var byHash: [UInt64: [Int32]] = [:]
    private var bytes: [[UInt8]] = []

    init(tokens: [String]) {
        byHash.reserveCapacity(tokens.count)
        bytes = tokens.map { Array($0.utf8) }
        for (index, token) in bytes.enumerated() {
            let hash = Self.hash(token[...])
            var ids = byHash[hash, default: []]
            ids.removeAll { bytes[Int($0)] == token }   // a repeated token keeps its last index
            ids.append(Int32(index))
            byHash[hash] = ids
        }
    }

    /// The id of the token `head + tail` (`head` empty unless given).
    func id(of tail: ArraySlice<UInt8>, after head: ArraySlice<UInt8> = []) -> Int32? {
        byHash[Self.hash(tail, from: Self.hash(head))]?.first { id in
            let token = bytes[Int(id)]
            return token.count == head.count + tail.count && token.starts(with: head)
                && token[head.count...].elementsEqual(tail)
        }
    }

    private static func hash(_ bytes: ArraySlice<UInt8>, from start: UInt64 = 0xCBF2_9CE4_8422_2325) -> UInt64 {
        var hash = start
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return hash
    }
}
