extension Tensor {
    /// The tensor with its axes reordered, sharing storage (no copy): axis `i` of the result is axis
    /// `axes[i]` of this tensor, so `shape[i] = self.shape[axes[i]]` and the strides follow.
    ///
    /// ```swift
    /// // (batch, sequence, heads, headSize) -> (batch, heads, sequence, headSize)
    /// let heads = try x.reshaped([b, s, 12, 32]).permuted([0, 2, 1, 3]).contiguous()
    /// ```
    /// Works on any device; call ``contiguous()`` to materialise the new order.
    /// - Throws: ``TensorError/Code/invalidArgument`` when `axes` is not a permutation of `0..<rank`
    ///   (negative axes count from the end).
    public func permuted(_ axes: [Int]) throws -> Tensor {
        guard axes.count == rank else {
            throw TensorError(.invalidArgument, "permuted: \(axes) names \(axes.count) axes but the tensor "
                + "\(shape) has \(rank); list every axis once")
        }
        let resolved = try axes.map { try normalizedAxis($0) }
        guard Set(resolved).count == rank else {
            throw TensorError(.invalidArgument, "permuted: \(axes) repeats an axis; list every axis of the "
                + "rank-\(rank) tensor exactly once")
        }
        return try Tensor(storage: storage, dtype: dtype, shape: resolved.map { shape[$0] },
                      strides: resolved.map { strides[$0] }, offset: offset)
    }
}
