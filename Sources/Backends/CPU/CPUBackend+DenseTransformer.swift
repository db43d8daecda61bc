import CQLKernels
import QLTensor

/// The transformer ops on the CPU (vectorised kernels of `dense_ops.c` on every core, OpenBLAS for the
/// batched matmul), on operands ``DenseOps`` has checked.
extension CPUBackend {
    package func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, epsilon: Float) throws -> Tensor {
        try CPUDenseKernels.layerNorm(x, weight: try weight?.floats(), bias: try bias?.floats(), epsilon: epsilon)
    }

    package func softmax(_ x: Tensor, additiveMask: Tensor?) throws -> Tensor {
        try CPUDenseKernels.softmax(x, mask: try additiveMask?.floats(), batches: x.shape[0])
    }

    package func softmaxInPlace(_ x: inout Tensor, additiveMask: Tensor?) throws {
        try CPUDenseKernels.softmax(inPlace: &x, mask: try additiveMask?.floats(), batches: x.shape[0])
    }

    package func scaleInPlace(_ x: inout Tensor, by factor: Float) throws {
        try CPUDenseKernels.elementwise(inPlace: &x, Int32(CK_ELEMENTWISE_SCALE), nil, factor: factor)
    }

    /// Float32 operands: each product's scores stay in a per-range buffer (``CPUDenseKernels/attention``);
    /// other dtypes, empty sizes, or batch counts for which `batchedMatmul` would split its two products
    /// differently run the three ops.
    package func attention(query q: Tensor, key k: Tensor, value v: Tensor, additiveMask: Tensor?) throws -> Tensor {
        let rank = q.rank
        let (sq, d, sk, dv) = (q.shape[rank - 2], q.shape[rank - 1], k.shape[rank - 2], v.shape[rank - 1])
        let batches = q.shape.dropLast(2).reduce(1, *)
        let splits = [sq * sk * d, sq * dv * sk].map { CPUDenseKernels.splitsBatches(batches, multiplyAdds: $0) }
        guard [q, k, v].allSatisfy({ $0.dtype == .float32 }), sq > 0, sk > 0, d > 0, dv > 0, batches > 0,
              splits[0] == splits[1] else {
            return try composedAttention(query: q, key: k, value: v, additiveMask: additiveMask)
        }
        return try CPUDenseKernels.attention(q, k, v, mask: try additiveMask?.floats(), overBatches: splits[0])
    }

    package func embedding(_ table: Tensor, indices: Tensor) throws -> Tensor {
        let ids = try indices.elements(as: Int32.self)
        let rows = table.shape[0]
        if let bad = ids.firstIndex(where: { $0 < 0 || Int($0) >= rows }) {
            throw TensorError(.invalidArgument, "embedding: index \(ids[bad]) at position \(bad) is outside the "
                + "table's \(rows) rows (0..<\(rows)); check the token ids against the vocabulary size")
        }
        return try CPUDenseKernels.embedding(table, indices: ids, shape: indices.shape)
    }

    package func multiply(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try CPUDenseKernels.elementwise(Int32(CK_ELEMENTWISE_MULTIPLY), a, b)
    }

    package func scaled(_ x: Tensor, by factor: Float) throws -> Tensor {
        try CPUDenseKernels.elementwise(Int32(CK_ELEMENTWISE_SCALE), x, nil, factor: factor)
    }

    package func batchedMatmul(_ a: Tensor, _ b: Tensor, transposeB: Bool) throws -> Tensor {
        let (m, k) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let n = transposeB ? b.shape[b.rank - 2] : b.shape[b.rank - 1]
        let batchShape = Array(a.shape.dropLast(2))
        return try CPUDenseKernels.batchedMatmul(a, b, transposeB: transposeB, batches: batchShape.reduce(1, *),
                                                 m: m, n: n, k: k, shape: batchShape + [m, n])
    }

    package func maskedMeanPool(_ x: Tensor, mask: Tensor) throws -> Tensor {
        try CPUDenseKernels.maskedMeanPool(x, mask: try mask.floats(), batches: x.shape[0], sequence: x.shape[1],
                                           width: x.shape[2])
    }

    package func l2Normalize(_ x: Tensor, epsilon: Float) throws -> Tensor {
        try CPUDenseKernels.l2Normalize(x, epsilon: epsilon)
    }
}
