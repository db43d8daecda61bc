import QLTensor

/// Batched matrix products for attention (`Q K^T`, `P V` over batch x heads): one strided-batched
/// cuBLASLt call, float32 accumulation (`CUBLAS_COMPUTE_32F`: no TF32 for float32 operands).
extension CUDABackend {
    /// `a [..., M, K] x b [..., K, N] -> [..., M, N]`, or with `transposeB` `b [..., N, K]`, giving
    /// `a b^T`; the batch dimensions of a and b must be equal.
    ///
    /// Strided views are read in place where cuBLASLt can address them: each matrix row- or
    /// column-major (a transposed view needs no copy), the batch dimensions merging into one stride
    /// (a contiguous slice of heads). Other views, such as heads permuted out of `[B, S, H, Dh]`, are
    /// made contiguous first. Mixed dtypes run in float32; the result has a's dtype.
    /// - Throws: ``TensorError/Code/shapeMismatch`` when ranks, batch dimensions or K differ,
    ///   ``TensorError/Code/unsupportedDType``, ``TensorError/Code/deviceMismatch``.
    public func batchedMatmul(_ a: Tensor, _ b: Tensor, transposeB: Bool) throws -> Tensor {
        let op = "batchedMatmul"
        try OperandChecks.float(a, "a", op)
        try OperandChecks.float(b, "b", op)
        guard a.rank >= 2, b.rank == a.rank, a.shape.dropLast(2) == b.shape.dropLast(2) else {
            throw TensorError(.shapeMismatch, "\(op): a \(a.shape) and b \(b.shape) need the same rank (>= 2) and "
                + "equal batch dimensions")
        }
        try OperandChecks.sameDevice([a, b], op)
        // The right operand as the logical K x N matrix (a transposed view when transposeB).
        let right = transposeB ? try b.transposed() : b
        let (m, k) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (kb, n) = (right.shape[right.rank - 2], right.shape[right.rank - 1])
        guard k == kb else {
            throw TensorError(.shapeMismatch, "\(op): a \(a.shape) has K = \(k) but b \(b.shape) has K = \(kb)"
                + (transposeB ? " (b is [..., N, K] with transposeB)" : " (b is [..., K, N])"))
        }
        let batchShape = Array(a.shape.dropLast(2))
        let batches = batchShape.reduce(1, *)
        for (what, value) in [("M", m), ("N", n), ("K", k), ("the batch count", batches)] {
            try OperandChecks.fitsInt32(value, what, op)
        }
        let computeType = GPU.gemmType(a.dtype, b.dtype)
        let left = try MatrixOperand(try a.converted(to: computeType))
        let rightOperand = try MatrixOperand(try right.converted(to: computeType))
        let product = try GPU.empty(batchShape + [m, n], computeType, on: left.pointer.device)
        let out = try GPU(product)
        if k == 0 {
            try out.device.fill(out.address, byte: 0, byteCount: batches * m * n * computeType.byteSize)
        } else if batches > 0 && m > 0 && n > 0 {
            // Column-major D^T (N x M) = B^T (N x K) * A^T (K x M): a row-major matrix is its own
            // transpose read column-major (op N); a column-major one needs op T.
            let type = BLASLt.DataType(computeType)!
            var description = GEMMDescription(m: n, n: m, k: k, transposeA: !rightOperand.rowMajor,
                                              transposeB: !left.rowMajor, lda: rightOperand.leading,
                                              ldb: left.leading, ldd: n, typeA: type, typeB: type, typeD: type,
                                              biasType: nil, scaled: false)
            description.batchCount = batches
            description.strideA = rightOperand.batchStride
            description.strideB = left.batchStride
            description.strideD = m * n
            try out.device.blas().run(description, a: rightOperand.pointer, b: left.pointer, d: out)
        }
        return try product.converted(to: a.dtype)
    }
}

/// One operand of a strided-batched GEMM: a `[..., R, C]` tensor as cuBLASLt addresses it.
struct MatrixOperand {
    let pointer: GPU
    /// Whether element `(r, c)` is at `r * leading + c` (else at `r + c * leading`).
    let rowMajor: Bool
    let leading: Int
    /// Elements between consecutive matrices of the batch.
    let batchStride: Int

    /// Reads `tensor` in place when its matrices are row- or column-major with a valid leading
    /// dimension and its batch dimensions merge into one stride; else from a contiguous copy.
    init(_ tensor: Tensor) throws {
        if let layout = MatrixOperand.layout(tensor) {
            (rowMajor, leading, batchStride) = layout
            pointer = try GPU(tensor)
        } else {
            let dense = try tensor.contiguous()
            let (rows, columns) = (tensor.shape[tensor.rank - 2], tensor.shape[tensor.rank - 1])
            (rowMajor, leading, batchStride) = (true, max(columns, 1), rows * columns)
            pointer = try GPU(dense)
        }
    }

    static func layout(_ tensor: Tensor) -> (rowMajor: Bool, leading: Int, batchStride: Int)? {
        let rank = tensor.rank
        let (rows, columns) = (tensor.shape[rank - 2], tensor.shape[rank - 1])
        let (rowStride, columnStride) = (tensor.strides[rank - 2], tensor.strides[rank - 1])
        let batch = StridedLayout.collapsed(shape: Array(tensor.shape.dropLast(2)),
                                            strides: Array(tensor.strides.dropLast(2)))
        guard batch.shape.count <= 1 else { return nil }
        let batchStride = batch.strides.first ?? rows * columns
        // cuBLASLt needs a leading dimension >= the column-major matrix's row count.
        if (columnStride == 1 || columns == 1) && (rows == 1 || rowStride >= columns) {
            return (true, rows == 1 ? max(columns, 1) : rowStride, batchStride)
        }
        if (rowStride == 1 || rows == 1) && (columns == 1 || columnStride >= rows) {
            return (false, columns == 1 ? max(rows, 1) : columnStride, batchStride)
        }
        return nil
    }
}
