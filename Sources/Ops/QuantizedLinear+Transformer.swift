// The dense ops of a transformer, dispatched like the other ops: dense operands run the dense op
// of their device; a quantized operand (no layout registers handlers for these) falls back to
// dequantize-and-run under `FallbackPolicy`, counted and visible. Results are dense.

/// Layer norm over the last dimension: `y = (x - mean) / sqrt(var + epsilon) * weight + bias`
/// (biased variance), in the input's dtype.
/// - Parameters:
///   - x: `(..., D)`.
///   - weight: `(D)` or `nil`; bias: `(D)` or `nil`.
///   - epsilon: BERT uses 1e-12.
/// - Throws: ``TensorError`` for mismatched shapes, dtypes or devices, or a forbidden fallback.
public func layerNorm(_ x: some TensorOperand, weight: (any TensorOperand)?, bias: (any TensorOperand)?,
                      epsilon: Float) throws -> Tensor {
    var attributes = OpAttributes()
    attributes.epsilon = epsilon
    return try LayoutRegistry.shared.dispatch(
        OpCall(.layerNorm, [x.anyTensor, weight?.anyTensor, bias?.anyTensor], attributes)).requireDense()
}

/// Softmax over the last dimension of `x` `(B, ..., C)`, with `additiveMask` `(B, C)` (float32) added
/// to every row of `x[b]` first: BERT's attention mask, 0 for tokens and a large negative number for
/// padding. Rows that are all -inf give zeros.
public func softmax(_ x: some TensorOperand, additiveMask: (any TensorOperand)? = nil) throws -> Tensor {
    return try LayoutRegistry.shared.dispatch(OpCall(.softmax, [x.anyTensor, additiveMask?.anyTensor])).requireDense()
}

/// Rows of `table` `(V, D)` gathered by int32 `indices` of any shape: `indices.shape + [D]`.
/// - Throws: ``TensorError/Code/invalidArgument`` for an index outside `0..<V`.
public func embedding(_ table: some TensorOperand, indices: Tensor) throws -> Tensor {
    return try LayoutRegistry.shared.dispatch(OpCall(.embedding, [table.anyTensor, .dense(indices)])).requireDense()
}

/// Elementwise `a * b`; `b` has `a`'s shape or a suffix of it (broadcast over leading dimensions).
public func multiply(_ a: some TensorOperand, _ b: some TensorOperand) throws -> Tensor {
    return try LayoutRegistry.shared.dispatch(OpCall(.multiply, [a.anyTensor, b.anyTensor])).requireDense()
}

/// `x * factor`, elementwise.
public func scaled(_ x: some TensorOperand, by factor: Float) throws -> Tensor {
    var attributes = OpAttributes()
    attributes.factor = factor
    return try LayoutRegistry.shared.dispatch(OpCall(.scaled, [x.anyTensor], attributes)).requireDense()
}

/// `a (..., M, K) @ b (..., K, N)`, or `a @ b^T` with `b (..., N, K)` when `transposeB`; the batch
/// dimensions must be equal. Attention: `Q K^T` with `transposeB: true`, then `P V`.
public func batchedMatmul(_ a: some TensorOperand, _ b: some TensorOperand, transposeB: Bool = false) throws
    -> Tensor {
    var attributes = OpAttributes()
    attributes.transposeB = transposeB
    return try LayoutRegistry.shared.dispatch(OpCall(.batchedMatmul, [a.anyTensor, b.anyTensor], attributes))
        .requireDense()
}

/// Attention over batch x heads, `softmax(q k^T + mask) v` for every batch index, the bits of
/// `batchedMatmul(q, k, transposeB: true)`, `softmax(_:additiveMask:)` and `batchedMatmul(_, v)` in a row
/// without the score tensor (``DenseOps/attention(query:key:value:additiveMask:)``). Scale `q` first.
/// - Parameters: q `(B, ..., S_q, d)`, k `(B, ..., S_k, d)`, v `(B, ..., S_k, d_v)` (strided views allowed),
///   additiveMask `(B, S_k)` float32 or `nil`. Dense tensors only.
/// - Returns: `(B, ..., S_q, d_v)` in `q`'s dtype.
public func attention(query q: Tensor, key k: Tensor, value v: Tensor, additiveMask: Tensor? = nil) throws -> Tensor {
    try DenseOps.attention(query: q, key: k, value: v, additiveMask: additiveMask)
}

/// `y[b, d] = sum_s mask[b, s] x[b, s, d] / max(sum_s mask[b, s], 1e-9)` for `x` `(B, S, D)` and a
/// 0/1 mask `(B, S)` (int32 or float): the mean over the tokens, padding left out.
public func maskedMeanPool(_ x: some TensorOperand, mask: Tensor) throws -> Tensor {
    return try LayoutRegistry.shared.dispatch(OpCall(.maskedMeanPool, [x.anyTensor, .dense(mask)])).requireDense()
}

/// `x / max(||x||_2, epsilon)` over the last dimension (sentence-transformers: epsilon 1e-12).
public func l2Normalize(_ x: some TensorOperand, epsilon: Float = 1e-12) throws -> Tensor {
    var attributes = OpAttributes()
    attributes.epsilon = epsilon
    return try LayoutRegistry.shared.dispatch(OpCall(.l2Normalize, [x.anyTensor], attributes)).requireDense()
}

// In-place forms, for an activation whose old value is not needed again: `x` becomes the result (the same
// bits as the out-of-place op), written over its own buffer where `x` owns it alone (no new buffer to map
// and fault in, the data written where it was read), copied first when it shares its storage or is a
// strided view (no other tensor sees the change). Dense tensors only; a quantized activation uses the
// out-of-place op, which dispatches to its layout.

/// `x = gelu(x)`, exact (erf) or tanh form.
public func gelu(inPlace x: inout Tensor, approximation: GeluApproximation = .none) throws {
    try DenseOps.gelu(inPlace: &x, approximation: approximation)
}

/// `x = x + y`, `y` broadcast to `x`'s shape (a residual connection, a bias row).
/// - Throws: ``TensorError/Code/shapeMismatch`` when broadcasting would change `x`'s shape.
public func add(inPlace x: inout Tensor, _ y: Tensor) throws {
    try DenseOps.add(inPlace: &x, y)
}

/// `x = softmax(x + mask)` over the last dimension, as ``softmax(_:additiveMask:)``.
public func softmax(inPlace x: inout Tensor, additiveMask: Tensor? = nil) throws {
    try DenseOps.softmax(inPlace: &x, additiveMask: additiveMask)
}

/// `x = x * factor`, elementwise.
public func scaled(inPlace x: inout Tensor, by factor: Float) throws {
    try DenseOps.scaled(inPlace: &x, by: factor)
}
