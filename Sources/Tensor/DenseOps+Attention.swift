extension DenseOps {
    /// Attention over batch x heads in one op:
    ///
    ///     y[i] = softmax(q[i] k[i]^T + mask[b]) v[i]     for every batch index i = (b, h, ...)
    ///
    /// exactly ``batchedMatmul(_:_:transposeB:)`` (`q k^T`), ``softmax(_:additiveMask:)`` and
    /// ``batchedMatmul(_:_:transposeB:)`` (`p v`) in a row, bit for bit, without the `(..., S_q, S_k)`
    /// score tensor: a backend may keep each product's scores in cache (the CPU does, for float32).
    /// Scale `q` first (BERT: by `1 / sqrt(d)`, e.g. with `scaled(inPlace:by:)`).
    /// - Parameters:
    ///   - q: `(B, ..., S_q, d)`; k: `(B, ..., S_k, d)`; v: `(B, ..., S_k, d_v)`: equal batch dimensions,
    ///     strided views allowed (heads of a `(B, S, H d)` projection).
    ///   - additiveMask: `(B, S_k)` float32 added to every score row of batch `b`, or `nil`.
    /// - Returns: `(B, ..., S_q, d_v)` in `q`'s dtype.
    /// - Throws: ``TensorError/Code/shapeMismatch`` for unequal batch dimensions, `d`, `S_k`, or a mask
    ///   that is not `(B, S_k)`; ``TensorError/Code/unsupportedDType`` for a mask that is not float32.
    public static func attention(query q: Tensor, key k: Tensor, value v: Tensor, additiveMask: Tensor?) throws
        -> Tensor {
        for (tensor, role) in [(q, "attention query"), (k, "attention key"), (v, "attention value")] {
            try checkDense(tensor, role)
        }
        let rank = q.rank
        guard rank >= 3, k.rank == rank, v.rank == rank, Array(q.shape.dropLast(2)) == Array(k.shape.dropLast(2)),
              Array(q.shape.dropLast(2)) == Array(v.shape.dropLast(2)) else {
            throw TensorError(.shapeMismatch, "attention: query \(q.shape), key \(k.shape) and value \(v.shape) need "
                + "rank >= 3 (B, ..., S, d) and equal batch dimensions")
        }
        guard q.shape[rank - 1] == k.shape[rank - 1], k.shape[rank - 2] == v.shape[rank - 2] else {
            throw TensorError(.shapeMismatch, "attention: query \(q.shape) and key \(k.shape) need the same d, key and "
                + "value \(v.shape) the same S_k")
        }
        try sameDevice([q, k, v] + [additiveMask].compactMap { $0 }, op: "attention")
        if let mask = additiveMask {
            try checkAdditiveMask(mask, op: "attention", rows: q.shape.dropLast() + [k.shape[rank - 2]], role: "scores")
        }
        return try DeviceBackends.backend(for: q.device).attention(query: q, key: k, value: v, additiveMask: additiveMask)
    }
}
