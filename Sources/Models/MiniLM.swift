import Foundation
import QuantizedLinear
import QLNN

/// all-MiniLM-L6-v2, the sentence-transformers encoder: a 6-layer BERT (hidden 384, 12 heads, FFN 1536)
/// followed by mean pooling over the tokens and L2 normalisation. Built only from the library's public
/// layers (``Linear``, ``LayerNorm``, ``Embedding``) and ops: this file is the example of writing a
/// model with QuantizedLinear.
///
/// ```swift
/// var model = try MiniLM(directory: ".models/all-MiniLM-L6-v2")
/// try model.quantizeLinears(layout: try BlockWiseINT8Layout.weight(blockSize: 128))   // 36 linears, W8A8
/// model = try model.moved(to: .cuda(0))                                                // optional
/// let embeddings = try model.embed(ids: batch.ids, attentionMask: batch.attentionMask) // (B, 384), CPU
/// ```
/// Activations stay on the model's device; only the embeddings come back.
public struct MiniLM: Module {
    public let configuration: MiniLMConfiguration
    public var embeddings: BertEmbeddings
    public var layers: [BertLayer]

    /// Loads `config.json` and `model.safetensors` from `directory` (BertModel names, no `bert.` prefix).
    /// The file may be ComfyUI-quantized: its declared layers load as quantized linears.
    /// - Throws: ``TensorError`` naming the file and the tensor for anything missing or malformed.
    public init(directory: String) throws {
        let configuration = try MiniLMConfiguration(directory: directory)
        let path = (directory as NSString).appendingPathComponent("model.safetensors")
        guard FileManager.default.fileExists(atPath: path) else {
            throw TensorError(.io, "\(path) does not exist; fetch the model with "
                + "`scripts/fetch-minilm .models/all-MiniLM-L6-v2`")
        }
        let weights = try ModelWeights(contentsOf: path)
        try self.init(configuration: configuration, weights: weights)
    }

    public init(configuration: MiniLMConfiguration, weights: ModelWeights) throws {
        self.configuration = configuration
        embeddings = try BertEmbeddings(weights, prefix: "embeddings", configuration: configuration)
        layers = try (0..<configuration.layerCount).map {
            try BertLayer(weights, prefix: "encoder.layer.\($0)", configuration: configuration)
        }
    }

    /// The device the parameters are on.
    public var device: Device { embeddings.word.device }

    /// Sentence embeddings: `(B, hidden)` float32, unit length, on the CPU.
    /// - Parameters:
    ///   - ids: token ids `(B, S)` int32, padded (a tokenizer's batch), on any device.
    ///   - attentionMask: `(B, S)` int32, 1 for tokens and 0 for padding.
    public func embed(ids: Tensor, attentionMask: Tensor) throws -> Tensor {
        try encode(ids: ids, attentionMask: attentionMask).to(.cpu)
    }

    /// Sentence embeddings `(B, hidden)` on the model's device.
    public func encode(ids: Tensor, attentionMask: Tensor) throws -> Tensor {
        guard ids.rank == 2, attentionMask.shape == ids.shape, ids.dtype == .int32, attentionMask.dtype == .int32 else {
            throw TensorError(.shapeMismatch, "MiniLM: ids and attentionMask must both be int32 (B, S), got "
                + "\(ids.dtype) \(ids.shape) and \(attentionMask.dtype) \(attentionMask.shape)")
        }
        let ids = try ids.to(device)
        let mask = try attentionMask.to(device)
        var hidden = try embeddings(ids)
        let additiveMask = try Self.additiveMask(attentionMask).to(device)
        for layer in layers { hidden = try layer(hidden, additiveMask: additiveMask) }
        return try l2Normalize(maskedMeanPool(hidden, mask: mask), epsilon: 1e-12)
    }

    /// BERT's extended attention mask: 0 where `mask` is 1, the most negative float where it is 0, so
    /// padding gets no attention weight.
    static func additiveMask(_ mask: Tensor) throws -> Tensor {
        let values = try mask.to(.cpu).elements(as: Int32.self)
        return try Tensor(values.map { $0 == 0 ? -Float.greatestFiniteMagnitude : 0 }, shape: mask.shape)
    }

    public mutating func updateLinears(_ body: (String, inout Linear) throws -> Void) rethrows {
        try ModuleChildren.linears(of: &layers, named: "encoder.layer", body)
    }

    public mutating func updateTensors(_ body: (String, inout Tensor) throws -> Void) rethrows {
        try ModuleChildren.tensors(of: &embeddings, named: "embeddings", body)
        try ModuleChildren.tensors(of: &layers, named: "encoder.layer", body)
    }

    public mutating func updateEmbeddings(_ body: (String, inout Embedding) throws -> Void) rethrows {
        try ModuleChildren.embeddings(of: &embeddings, named: "embeddings", body)
    }
}

/// Word + position + token-type embeddings, then layer norm.
public struct BertEmbeddings: Module {
    public var word: Embedding
    public var position: Embedding
    public var tokenType: Embedding
    public var norm: LayerNorm

    init(_ weights: ModelWeights, prefix: String, configuration: MiniLMConfiguration) throws {
        word = try Embedding(weights, prefix: prefix + ".word_embeddings")
        position = try Embedding(weights, prefix: prefix + ".position_embeddings")
        tokenType = try Embedding(weights, prefix: prefix + ".token_type_embeddings")
        norm = try LayerNorm(weights, prefix: prefix + ".LayerNorm", epsilon: configuration.layerNormEpsilon)
        let sizes = [word.dimension, position.dimension, tokenType.dimension]
        guard sizes.allSatisfy({ $0 == configuration.hiddenSize }), word.count == configuration.vocabularySize else {
            throw TensorError(.checkpointFormat, "\(weights.path): embedding tables have widths \(sizes) and "
                + "\(word.count) words; config.json says hidden_size \(configuration.hiddenSize), "
                + "vocab_size \(configuration.vocabularySize)")
        }
    }

    /// `(B, S)` ids -> `(B, S, hidden)`: positions `0..<S`, token type 0 for every token.
    func callAsFunction(_ ids: Tensor) throws -> Tensor {
        let length = ids.shape[1]
        guard length <= position.count else {
            throw TensorError(.invalidArgument, "MiniLM: sequences of \(length) tokens exceed the \(position.count) "
                + "positions of the model; truncate them (the tokenizer's maxSequenceLength)")
        }
        let positions = try Tensor(elements: (0..<Int32(length)).map { $0 }, shape: [length]).to(ids.device)
        let types = try Tensor(elements: [Int32](repeating: 0, count: length), shape: [length]).to(ids.device)
        // (S, hidden), broadcast over the batch.
        let perPosition = try add(position(positions), tokenType(types))
        return try norm(add(word(ids), perPosition))
    }

    public mutating func updateLinears(_ body: (String, inout Linear) throws -> Void) rethrows {}

    public mutating func updateTensors(_ body: (String, inout Tensor) throws -> Void) rethrows {
        try ModuleChildren.tensors(of: &word, named: "word_embeddings", body)
        try ModuleChildren.tensors(of: &position, named: "position_embeddings", body)
        try ModuleChildren.tensors(of: &tokenType, named: "token_type_embeddings", body)
        try ModuleChildren.tensors(of: &norm, named: "LayerNorm", body)
    }

    public mutating func updateEmbeddings(_ body: (String, inout Embedding) throws -> Void) rethrows {
        try ModuleChildren.embeddings(of: &word, named: "word_embeddings", body)
        try ModuleChildren.embeddings(of: &position, named: "position_embeddings", body)
        try ModuleChildren.embeddings(of: &tokenType, named: "token_type_embeddings", body)
    }
}

/// One encoder layer: self-attention, residual, layer norm; feed-forward (exact GELU), residual, layer norm.
public struct BertLayer: Module {
    public var query: Linear
    public var key: Linear
    public var value: Linear
    public var attentionOutput: Linear
    public var attentionNorm: LayerNorm
    public var intermediate: Linear
    public var output: Linear
    public var outputNorm: LayerNorm
    let headCount: Int

    init(_ weights: ModelWeights, prefix: String, configuration: MiniLMConfiguration) throws {
        query = try Linear(weights, prefix: prefix + ".attention.self.query")
        key = try Linear(weights, prefix: prefix + ".attention.self.key")
        value = try Linear(weights, prefix: prefix + ".attention.self.value")
        attentionOutput = try Linear(weights, prefix: prefix + ".attention.output.dense")
        attentionNorm = try LayerNorm(weights, prefix: prefix + ".attention.output.LayerNorm",
                                      epsilon: configuration.layerNormEpsilon)
        intermediate = try Linear(weights, prefix: prefix + ".intermediate.dense")
        output = try Linear(weights, prefix: prefix + ".output.dense")
        outputNorm = try LayerNorm(weights, prefix: prefix + ".output.LayerNorm",
                                   epsilon: configuration.layerNormEpsilon)
        headCount = configuration.headCount
        let (hidden, inner) = (configuration.hiddenSize, configuration.intermediateSize)
        let expected: [(Linear, [Int])] = [(query, [hidden, hidden]), (key, [hidden, hidden]),
                                           (value, [hidden, hidden]), (attentionOutput, [hidden, hidden]),
                                           (intermediate, [inner, hidden]), (output, [hidden, inner])]
        for (layer, shape) in expected where layer.weight.shape != shape {
            throw TensorError(.checkpointFormat, "\(weights.path): a linear of `\(prefix)` has weight "
                + "\(layer.weight.shape), config.json implies \(shape)")
        }
    }

    /// `(B, S, hidden)` -> `(B, S, hidden)`; `additiveMask` `(B, S)` is 0 for tokens, very negative for padding.
    func callAsFunction(_ x: Tensor, additiveMask: Tensor) throws -> Tensor {
        let (batch, length, hidden) = (x.shape[0], x.shape[1], x.shape[2])
        let headSize = hidden / headCount
        // (B, S, hidden) -> (B, heads, S, headSize), a view: batchedMatmul reads each head's rows in place
        // where its backend can (row stride = hidden) and copies otherwise.
        func heads(_ t: Tensor) throws -> Tensor {
            try t.reshaped([batch, length, headCount, headSize]).permuted([0, 2, 1, 3])
        }
        // Intermediate activations are updated in place (`scaled(inPlace:)`, `softmax(inPlace:)`, ...): each
        // is the only owner of its buffer, so no new buffer is allocated and faulted in per op.
        // W8A8 query, key and value quantize `x` once between them (the same codes each would make).
        let input = try Linear.sharedInput(x, for: [query, key, value])
        var scaledQuery = try query(input)
        try scaled(inPlace: &scaledQuery, by: 1 / Float(headSize).squareRoot())
        let q = try heads(scaledQuery)
        let k = try heads(key(input))
        let v = try heads(value(input))
        // softmax(q k^T + mask) v, the scores of each (sentence, head) kept in cache: (B, heads, S, headSize).
        let context = try attention(query: q, key: k, value: v, additiveMask: additiveMask)
        let merged = try context.permuted([0, 2, 1, 3]).reshaped([batch, length, hidden])
        var attentionSum = try attentionOutput(merged)
        try add(inPlace: &attentionSum, x)
        let attended = try attentionNorm(attentionSum)
        var expanded = try intermediate(attended)
        try gelu(inPlace: &expanded, approximation: .none)
        var outputSum = try output(expanded)
        try add(inPlace: &outputSum, attended)
        return try outputNorm(outputSum)
    }

    public mutating func updateLinears(_ body: (String, inout Linear) throws -> Void) rethrows {
        try ModuleChildren.linears(of: &query, named: "attention.self.query", body)
        try ModuleChildren.linears(of: &key, named: "attention.self.key", body)
        try ModuleChildren.linears(of: &value, named: "attention.self.value", body)
        try ModuleChildren.linears(of: &attentionOutput, named: "attention.output.dense", body)
        try ModuleChildren.linears(of: &intermediate, named: "intermediate.dense", body)
        try ModuleChildren.linears(of: &output, named: "output.dense", body)
    }

    public mutating func updateTensors(_ body: (String, inout Tensor) throws -> Void) rethrows {
        try ModuleChildren.tensors(of: &attentionNorm, named: "attention.output.LayerNorm", body)
        try ModuleChildren.tensors(of: &outputNorm, named: "output.LayerNorm", body)
    }
}
