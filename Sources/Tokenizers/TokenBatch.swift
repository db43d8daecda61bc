import QLTensor

/// Token ids of several texts, padded to the longest, with the attention mask BERT takes.
///
/// Row `b` holds `lengths[b]` ids of text `b` then padding ids; `attentionMask[b, s]` is 1 for
/// `s < lengths[b]` and 0 after.
public struct TokenBatch: Sendable {
    /// int32 `[B, S]`, `S` = the longest text's id count.
    public let ids: Tensor
    /// int32 `[B, S]`: 1 = token, 0 = padding.
    public let attentionMask: Tensor
    /// Each text's id count, `[CLS]` and `[SEP]` included.
    public let lengths: [Int]

    /// Pads `sequences` with `paddingID` to the longest.
    /// - Throws: ``TensorError/Code/invalidArgument`` for no sequences.
    public init(sequences: [[Int32]], paddingID: Int32) throws {
        guard !sequences.isEmpty else {
            throw TensorError(.invalidArgument, "a token batch needs at least one text; got none")
        }
        let width = sequences.map(\.count).max()!
        var ids = [Int32](repeating: paddingID, count: sequences.count * width)
        var mask = [Int32](repeating: 0, count: sequences.count * width)
        for (row, sequence) in sequences.enumerated() {
            let start = row * width
            ids.replaceSubrange(start..<(start + sequence.count), with: sequence)
            mask.replaceSubrange(start..<(start + sequence.count), with: repeatElement(1, count: sequence.count))
        }
        self.ids = try Tensor(elements: ids, shape: [sequences.count, width])
        self.attentionMask = try Tensor(elements: mask, shape: [sequences.count, width])
        self.lengths = sequences.map(\.count)
    }
}

extension WordPieceTokenizer {
    /// Every text encoded (``encode(_:)``), padded with `[PAD]` to the longest.
    /// - Throws: ``TensorError/Code/invalidArgument`` for an empty array of texts.
    public func batch(_ texts: [String]) throws -> TokenBatch {
        try TokenBatch(sequences: texts.map(encode), paddingID: paddingID)
    }
}
