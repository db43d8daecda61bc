/// The dense ops a transformer needs besides linear, matmul, gelu and add.
///
/// Each takes float32, float16 or bfloat16 tensors, contiguous or strided views, computes in float32
/// and returns the first operand's dtype. Operands must be on one device, whose ``DeviceBackend`` runs
/// the op once it is checked (the CPU backend: vectorised kernels on every core).
extension DenseOps {
    /// Layer norm over the last dimension:
    ///
    ///     y = (x - mean) / sqrt(var + epsilon) * weight + bias     (var the biased variance)
    ///
    /// - Parameters:
    ///   - x: `(..., D)`.
    ///   - weight: `(D)` or `nil` (ones).
    ///   - bias: `(D)` or `nil` (zeros).
    ///   - epsilon: added to the variance; BERT uses 1e-12.
    /// - Throws: ``TensorError/Code/shapeMismatch`` when weight or bias is not `(D)`,
    ///   ``TensorError/Code/invalidArgument`` for a negative or non-finite epsilon.
    public static func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, epsilon: Float) throws -> Tensor {
        try checkDense(x, "layerNorm input")
        guard x.rank >= 1 else {
            throw TensorError(.shapeMismatch, "layerNorm needs a tensor of rank >= 1, got a scalar")
        }
        let width = x.shape[x.rank - 1]
        for (tensor, role) in [(weight, "weight"), (bias, "bias")] {
            guard let tensor else { continue }
            try checkDense(tensor, "layerNorm \(role)")
            guard tensor.shape == [width] else {
                throw TensorError(.shapeMismatch, "layerNorm: \(role) has shape \(tensor.shape), expected [\(width)] "
                    + "(the size of the input's last dimension, \(x.shape))")
            }
        }
        guard epsilon >= 0 && epsilon.isFinite else {
            throw TensorError(.invalidArgument, "layerNorm: epsilon \(epsilon) must be finite and >= 0 (BERT: 1e-12)")
        }
        try sameDevice([x] + [weight, bias].compactMap { $0 }, op: "layerNorm")
        return try DeviceBackends.backend(for: x.device).layerNorm(x, weight: weight, bias: bias, epsilon: epsilon)
    }

    /// Softmax over the last dimension, with an optional additive mask per batch:
    ///
    ///     y[b, ..., i] = exp(v_i - max v) / sum_j exp(v_j - max v),   v = x[b, ..., :] + mask[b, :]
    ///
    /// A row whose values are all -inf gives zeros (instead of 0/0).
    /// - Parameters:
    ///   - x: `(B, ..., C)`, e.g. attention scores `(B, heads, S, S)`.
    ///   - additiveMask: `(B, C)` float32, added to every row of `x[b]` (BERT: 0 for tokens, a large
    ///     negative number for padding), or `nil`.
    /// - Throws: ``TensorError/Code/shapeMismatch`` when the mask is not `(B, C)`.
    public static func softmax(_ x: Tensor, additiveMask: Tensor?) throws -> Tensor {
        try checkSoftmax(x, additiveMask: additiveMask)
        return try DeviceBackends.backend(for: x.device).softmax(x, additiveMask: additiveMask)
    }

    /// The operand checks of ``softmax(_:additiveMask:)``.
    static func checkSoftmax(_ x: Tensor, additiveMask: Tensor?) throws {
        try checkDense(x, "softmax input")
        guard x.rank >= 1 else { throw TensorError(.shapeMismatch, "softmax needs a tensor of rank >= 1") }
        if let mask = additiveMask { try checkAdditiveMask(mask, op: "softmax", rows: x.shape, role: "an input") }
        try sameDevice([x] + [additiveMask].compactMap { $0 }, op: "softmax")
    }

    /// An additive mask for softmax rows of shape `rows` `(B, ..., C)`: float32 `(B, C)`.
    /// - Parameter role: what `rows` is, for the message ("an input", "scores").
    static func checkAdditiveMask(_ mask: Tensor, op: String, rows: [Int], role: String) throws {
        guard mask.dtype == .float32 else {
            throw TensorError(.unsupportedDType, "\(op): the additive mask must be float32, got \(mask.dtype); "
                + "convert it with `.converted(to: .float32)`")
        }
        guard rows.count >= 2, mask.shape == [rows[0], rows[rows.count - 1]] else {
            throw TensorError(.shapeMismatch, "\(op): the additive mask has shape \(mask.shape); for \(role) "
                + "\(rows) it must be [B, C] = [\(rows.first ?? 0), \(rows.last ?? 0)] and \(role) must have rank >= 2")
        }
    }

    /// Rows of `table` gathered by `indices`: `y[i..., :] = table[indices[i...], :]`.
    /// - Parameters:
    ///   - table: `(V, D)`, any dtype (rows are copied as they are; the output has the table's dtype):
    ///     float tables, and the int8 codes and float32 scales of a row-wise quantized table.
    ///   - indices: int32, any shape.
    /// - Returns: `indices.shape + [D]`.
    /// - Throws: ``TensorError/Code/invalidArgument`` for an index outside `0..<V`,
    ///   ``TensorError/Code/unsupportedDType`` for indices that are not int32.
    public static func embedding(_ table: Tensor, indices: Tensor) throws -> Tensor {
        guard table.rank == 2 else {
            throw TensorError(.shapeMismatch, "embedding: the table must be 2-D (V, D), got \(table.shape)")
        }
        guard indices.dtype == .int32 else {
            throw TensorError(.unsupportedDType, "embedding: indices must be int32, got \(indices.dtype)")
        }
        try sameDevice([table, indices], op: "embedding")
        return try DeviceBackends.backend(for: table.device).embedding(table, indices: indices)
    }

    /// Elementwise `a * b`, `b` broadcast over `a`'s leading dimensions.
    /// - Parameters:
    ///   - a: any shape.
    ///   - b: `a`'s shape or a suffix of it (`(D)` for `(..., D)`).
    /// - Throws: ``TensorError/Code/shapeMismatch`` when `b`'s shape is not a suffix of `a`'s.
    public static func multiply(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try checkDense(a, "multiply lhs")
        try checkFloat(b, "multiply rhs")
        guard isSuffix(b.shape, of: a.shape) else {
            throw TensorError(.shapeMismatch, "multiply: \(b.shape) is not \(a.shape) or a suffix of it; the right "
                + "operand is broadcast over the left one's leading dimensions only")
        }
        try sameDevice([a, b], op: "multiply")
        return try DeviceBackends.backend(for: a.device).multiply(a, b)
    }

    /// `x * factor`, elementwise.
    public static func scaled(_ x: Tensor, by factor: Float) throws -> Tensor {
        try checkDense(x, "scaled input")
        return try DeviceBackends.backend(for: x.device).scaled(x, by: factor)
    }

    /// Batched matrix product over equal batch dimensions:
    /// `a (..., M, K) @ b (..., K, N)`, or `a @ b^T` with `b (..., N, K)` when `transposeB`
    /// (attention: `Q K^T` then `P V` over batch x heads).
    /// - Returns: `(..., M, N)`.
    /// - Throws: ``TensorError/Code/shapeMismatch`` for unequal batch dimensions or inner sizes.
    public static func batchedMatmul(_ a: Tensor, _ b: Tensor, transposeB: Bool) throws -> Tensor {
        try checkDense(a, "batchedMatmul lhs")
        try checkDense(b, "batchedMatmul rhs")
        guard a.rank >= 2, b.rank == a.rank, Array(a.shape.dropLast(2)) == Array(b.shape.dropLast(2)) else {
            throw TensorError(.shapeMismatch, "batchedMatmul: \(a.shape) and \(b.shape) need rank >= 2 and equal "
                + "batch dimensions (everything but the last two)")
        }
        let k = a.shape[a.rank - 1]
        let kb = transposeB ? b.shape[b.rank - 1] : b.shape[b.rank - 2]
        guard k == kb else {
            throw TensorError(.shapeMismatch, "batchedMatmul: inner sizes differ, \(a.shape) @ \(b.shape)"
                + (transposeB ? "^T" : "") + " (K = \(k) vs \(kb))")
        }
        try sameDevice([a, b], op: "batchedMatmul")
        return try DeviceBackends.backend(for: a.device).batchedMatmul(a, b, transposeB: transposeB)
    }

    /// Mean over the sequence of the positions the mask keeps:
    ///
    ///     y[b, d] = sum_s mask[b, s] x[b, s, d] / max(sum_s mask[b, s], 1e-9)
    ///
    /// - Parameters:
    ///   - x: `(B, S, D)`.
    ///   - mask: `(B, S)`, int32 0/1 or float 0/1 (a tokenizer's attention mask).
    /// - Returns: `(B, D)`.
    public static func maskedMeanPool(_ x: Tensor, mask: Tensor) throws -> Tensor {
        try checkDense(x, "maskedMeanPool input")
        guard x.rank == 3, mask.shape == [x.shape[0], x.shape[1]] else {
            throw TensorError(.shapeMismatch, "maskedMeanPool needs x (B, S, D) and mask (B, S), got \(x.shape) and "
                + "\(mask.shape)")
        }
        guard mask.dtype == .int32 || mask.dtype.isFloatingPoint else {
            throw TensorError(.unsupportedDType, "maskedMeanPool: the mask must be int32 or float, got \(mask.dtype)")
        }
        try sameDevice([x, mask], op: "maskedMeanPool")
        return try DeviceBackends.backend(for: x.device).maskedMeanPool(x, mask: mask)
    }

    /// `x / max(||x||_2, epsilon)` over the last dimension (sentence-transformers: epsilon 1e-12).
    /// - Throws: ``TensorError/Code/invalidArgument`` for a negative or non-finite epsilon.
    public static func l2Normalize(_ x: Tensor, epsilon: Float) throws -> Tensor {
        try checkDense(x, "l2Normalize input")
        guard x.rank >= 1 else { throw TensorError(.shapeMismatch, "l2Normalize needs a tensor of rank >= 1") }
        guard epsilon >= 0 && epsilon.isFinite else {
            throw TensorError(.invalidArgument, "l2Normalize: epsilon \(epsilon) must be finite and >= 0")
        }
        return try DeviceBackends.backend(for: x.device).l2Normalize(x, epsilon: epsilon)
    }

    /// Whether `suffix` equals the last dimensions of `shape` (leading 1s of `suffix` ignored).
    package static func isSuffix(_ suffix: [Int], of shape: [Int]) -> Bool {
        let trimmed = Array(suffix.drop(while: { $0 == 1 }))
        return trimmed.count <= shape.count && Array(shape.suffix(trimmed.count)) == trimmed
    }

    /// The dtypes the transformer ops compute on.
    static func checkDense(_ tensor: Tensor, _ role: String) throws {
        guard [.float32, .float16, .bfloat16].contains(tensor.dtype) else {
            throw TensorError(.unsupportedDType, "\(role) has dtype \(tensor.dtype); this op takes float32, float16 "
                + "or bfloat16 (convert with `.converted(to: .float32)`, dequantize quantized data first)")
        }
    }
}
