import QuantizedLinear

/// A checkpoint's tensors, looked up by state-dict name to build a model.
///
/// Reads ComfyUI-quantized checkpoints (layers declared `int8_blockwise` or `float8_e4m3fn` load as
/// ``QuantizedTensor``s) and plain float ones (Hugging Face `model.safetensors`, say) alike. Tensors
/// of dtypes the library has no tensors of, such as BERT's `I64` `embeddings.position_ids`, are
/// skipped by default and listed in ``skipped``: positions are computed, not read. Data stays
/// memory-mapped until used.
///
/// ```swift
/// let weights = try ModelWeights(contentsOf: "model.safetensors")
/// let query = try Linear(weights, prefix: "encoder.layer.0.attention.self.query")
/// ```
public struct ModelWeights: Sendable {
    public let path: String
    public let checkpoint: ComfyCheckpoint

    /// - Throws: ``TensorError`` naming the file and the tensor for an unreadable or invalid checkpoint.
    public init(contentsOf path: String,
                options: ComfyLoadOptions = ComfyLoadOptions(skipUnsupportedDTypes: true)) throws {
        self.path = path
        checkpoint = try ComfyCheckpoint(contentsOf: path, options: options)
    }

    /// State-dict names, in file order.
    public var names: [String] { checkpoint.names }

    /// Tensors left out for their dtype (e.g. `embeddings.position_ids`, I64).
    public var skipped: [String] { checkpoint.skippedTensors }

    /// The tensor `name`, dense or quantized.
    /// - Throws: ``TensorError/Code/checkpointFormat`` naming the file when it is missing.
    public func tensor(_ name: String) throws -> AnyTensor {
        guard let tensor = checkpoint[name] else {
            let stem = name.split(separator: ".").dropLast().joined(separator: ".")
            let near = names.filter { !stem.isEmpty && $0.hasPrefix(stem) }.prefix(5)
            throw TensorError(.checkpointFormat, "\(path): no tensor `\(name)`"
                + (near.isEmpty ? "; is this the right checkpoint for the model?"
                    : "; the file has \(near.map { "`\($0)`" }.joined(separator: ", "))"))
        }
        return tensor
    }

    /// The tensor `name` as a dense tensor (a quantized one is dequantized once, here).
    public func dense(_ name: String) throws -> Tensor { try tensor(name).dequantized() }

    /// The tensor `name` if the file has it.
    public func optional(_ name: String) -> AnyTensor? { checkpoint[name] }
}

extension Linear {
    /// The layer stored under `prefix`: `prefix.weight` (dense, or quantized as the checkpoint declares
    /// it) and `prefix.bias` when present.
    public init(_ weights: ModelWeights, prefix: String,
                floatInput: LinearOptions.FloatInputMode = .quantizeInput) throws {
        let bias = try weights.optional(prefix + ".bias")?.dequantized()
        do {
            try self.init(weight: try weights.tensor(prefix + ".weight"), bias: bias, floatInput: floatInput)
        } catch let error as TensorError where error.code == .shapeMismatch {
            throw TensorError(.checkpointFormat, "\(weights.path): layer `\(prefix)`: \(error.message)")
        }
    }
}

extension LayerNorm {
    /// The layer norm stored under `prefix` (`prefix.weight`, `prefix.bias`).
    public init(_ weights: ModelWeights, prefix: String, epsilon: Float) throws {
        do {
            try self.init(weight: try weights.dense(prefix + ".weight"), bias: try weights.dense(prefix + ".bias"),
                          epsilon: epsilon)
        } catch let error as TensorError where error.code == .shapeMismatch {
            throw TensorError(.checkpointFormat, "\(weights.path): layer norm `\(prefix)`: \(error.message)")
        }
    }
}

extension Embedding {
    /// The table stored as `prefix.weight` (dense; a quantized table is dequantized on loading).
    public init(_ weights: ModelWeights, prefix: String) throws {
        do {
            try self.init(table: try weights.dense(prefix + ".weight"))
        } catch let error as TensorError where error.code == .shapeMismatch {
            throw TensorError(.checkpointFormat, "\(weights.path): embedding `\(prefix)`: \(error.message)")
        }
    }
}
