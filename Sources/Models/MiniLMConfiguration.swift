import Foundation
import QuantizedLinear

/// The parts of a BERT `config.json` (and sentence-transformers' `sentence_bert_config.json`) that
/// all-MiniLM-L6-v2 needs, checked on reading.
public struct MiniLMConfiguration: Sendable, Equatable {
    public var hiddenSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var intermediateSize: Int
    public var vocabularySize: Int
    public var maxPositions: Int
    public var typeVocabularySize: Int
    public var layerNormEpsilon: Float
    /// Tokens per sentence the sentence-transformers model uses (256), at most ``maxPositions``.
    public var maxSequenceLength: Int

    /// The head size, `hiddenSize / headCount`.
    public var headSize: Int { hiddenSize / headCount }

    /// Reads `config.json` and, when present, `sentence_bert_config.json` from `directory`.
    /// - Throws: ``TensorError/Code/io`` for a missing file, ``TensorError/Code/checkpointFormat`` for
    ///   invalid JSON, a missing or non-positive size, a hidden size not divisible by the head count, an
    ///   activation other than exact GELU, or an absolute-position setting other than BERT's.
    public init(directory: String) throws {
        let path = (directory as NSString).appendingPathComponent("config.json")
        let object = try Self.readObject(path)
        func integer(_ key: String) throws -> Int {
            guard let value = object[key] as? Int, value > 0 else {
                throw TensorError(.checkpointFormat, "\(path): `\(key)` must be a positive integer, got "
                    + "\(object[key].map { "\($0)" } ?? "nothing"); is this a BERT config.json?")
            }
            return value
        }
        hiddenSize = try integer("hidden_size")
        layerCount = try integer("num_hidden_layers")
        headCount = try integer("num_attention_heads")
        intermediateSize = try integer("intermediate_size")
        vocabularySize = try integer("vocab_size")
        maxPositions = try integer("max_position_embeddings")
        typeVocabularySize = try integer("type_vocab_size")
        guard let epsilon = object["layer_norm_eps"] as? Double, epsilon >= 0, epsilon < 1 else {
            throw TensorError(.checkpointFormat, "\(path): `layer_norm_eps` must be a small non-negative number")
        }
        layerNormEpsilon = Float(epsilon)
        guard hiddenSize % headCount == 0 else {
            throw TensorError(.checkpointFormat, "\(path): hidden_size \(hiddenSize) is not divisible by "
                + "num_attention_heads \(headCount)")
        }
        let activation = object["hidden_act"] as? String ?? "gelu"
        guard activation == "gelu" else {
            throw TensorError(.checkpointFormat, "\(path): hidden_act `\(activation)` is not supported; this "
                + "encoder implements BERT's exact (erf) `gelu`")
        }
        let positions = object["position_embedding_type"] as? String ?? "absolute"
        guard positions == "absolute" else {
            throw TensorError(.checkpointFormat, "\(path): position_embedding_type `\(positions)` is not supported "
                + "(only `absolute`)")
        }
        let sentencePath = (directory as NSString).appendingPathComponent("sentence_bert_config.json")
        if FileManager.default.fileExists(atPath: sentencePath) {
            let sentence = try Self.readObject(sentencePath)
            guard let length = sentence["max_seq_length"] as? Int, length > 0 else {
                throw TensorError(.checkpointFormat, "\(sentencePath): `max_seq_length` must be a positive integer")
            }
            maxSequenceLength = min(length, maxPositions)
        } else {
            maxSequenceLength = maxPositions
        }
    }

    private static func readObject(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TensorError(.io, "cannot read \(path); the model directory needs config.json, model.safetensors "
                + "and vocab.txt (fetch them with `scripts/fetch-minilm .models/all-MiniLM-L6-v2`)")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw TensorError(.checkpointFormat, "\(path) is not a JSON object")
        }
        return object
    }
}
