import QLTensor

/// Embedding lookup and masked mean pooling (``TokenKernels``).
extension CUDABackend {
    /// `out[i..., :] = table[indices[i...], :]`: rows of `table` (`[V, D]`) gathered by int32
    /// `indices` of any shape; the result has shape `indices.shape + [D]` and the table's dtype.
    ///
    /// The indices live on the device, so their range is checked there: the kernel records the first
    /// position of an index outside `[0, V)` in a device flag, and this call reads the flag back
    /// (an 8-byte copy that waits for the gather). Embedding is the first op of an encoder, so the
    /// wait costs one kernel's latency, not a pipeline of queued work.
    /// - Throws: ``TensorError/Code/invalidArgument`` naming the first out-of-range index and its
    ///   position; ``TensorError/Code/unsupportedDType`` for non-int32 indices or a non-float table;
    ///   ``TensorError/Code/shapeMismatch`` for a table that is not 2-D.
    public func embedding(_ table: Tensor, indices: Tensor) throws -> Tensor {
        let op = "embedding"
        // Any dtype: the kernel copies each row as words of the row's byte size.
        guard table.rank == 2 else {
            throw TensorError(.shapeMismatch, "\(op): table must be [V, D], got \(table.shape)")
        }
        guard indices.dtype == .int32 else {
            throw TensorError(.unsupportedDType, "\(op): indices have dtype \(indices.dtype); they must be int32 "
                + "(convert with `.converted(to: .int32)`)")
        }
        try OperandChecks.sameDevice([table, indices], op)
        let (vocabulary, d) = (table.shape[0], table.shape[1])
        let source = try GPU(try table.contiguous())
        let device = source.device
        let result = try GPU.empty(indices.shape + [d], table.dtype, on: device)
        let count = indices.count
        guard count > 0 else { return result }
        let ids = try GPU(try indices.contiguous())
        let rowBytes = d * table.dtype.byteSize
        let word = [16, 8, 4, 2, 1].first { rowBytes % $0 == 0 && source.address % UInt64($0) == 0 }!
        let flag = try GPU(try GPU.empty([2], .int32, on: device))
        try device.fill(flag.address, byte: 0xFF, byteCount: 8)
        let function = try device.function(TokenKernels.source, entry: "embedding",
                                           defines: ["EMBEDDING": 1, "WB": word])
        try device.launch(function, grid: (device.gridSize(work: count, perBlock: 8), 1, 1), block: (256, 1, 1), [
            source.argument, ids.argument, try GPU(result).argument, .int(count), .int(vocabulary),
            .int(rowBytes / word), flag.argument])
        var firstBad = UInt64.max
        try device.copyToHost(from: flag.address, byteCount: 8, into: &firstBad)
        guard firstBad == UInt64.max else {
            let position = Int(firstBad)
            var value: Int32 = 0
            try device.copyToHost(from: ids.address + UInt64(position * 4), byteCount: 4, into: &value)
            var index: [Int] = []
            var rest = position
            for extent in indices.shape.reversed() {
                index.insert(rest % extent, at: 0)
                rest /= extent
            }
            throw TensorError(.invalidArgument, "\(op): index \(value) at position \(index) is out of range for a "
                + "table of \(vocabulary) rows (valid: 0..<\(vocabulary))")
        }
        return result
    }

    /// `out[b, :] = sum_s mask[b, s] x[b, s, :] / max(sum_s mask[b, s], 1e-9)` in float32, in x's dtype.
    ///
    /// Positions whose mask is 0 are skipped, not multiplied by 0: padding is never read, so a
    /// non-finite value there does not reach the result.
    /// - Parameters:
    ///   - x: `[B, S, D]`, float32, float16 or bfloat16.
    ///   - mask: `[B, S]`, int32 or float (0/1, or any weights).
    /// - Throws: ``TensorError/Code/shapeMismatch``, ``TensorError/Code/unsupportedDType``,
    ///   ``TensorError/Code/deviceMismatch``.
    public func maskedMeanPool(_ x: Tensor, mask: Tensor) throws -> Tensor {
        let op = "maskedMeanPool"
        try OperandChecks.float(x, "x", op)
        guard x.rank == 3, mask.shape == [x.shape[0], x.shape[1]] else {
            throw TensorError(.shapeMismatch, "\(op): x must be [B, S, D] and mask [B, S]; got x \(x.shape), "
                + "mask \(mask.shape)")
        }
        guard mask.dtype == .int32 || OperandChecks.floatTypes.contains(mask.dtype) else {
            throw TensorError(.unsupportedDType, "\(op): mask has dtype \(mask.dtype); use int32 or a float dtype")
        }
        try OperandChecks.sameDevice([x, mask], op)
        let (batch, s, d) = (x.shape[0], x.shape[1], x.shape[2])
        try OperandChecks.fitsInt32(s, "the sequence length", op)
        try OperandChecks.fitsInt32(d, "the last dimension", op)
        let input = try GPU(try x.contiguous())
        let device = input.device
        let result = try GPU.empty([batch, d], x.dtype, on: device)
        guard batch > 0 && d > 0 else { return result }
        let weights = try GPU(try mask.contiguous())
        let vector = VectorWidth.choose(length: d, elementSize: x.dtype.byteSize,
                                        operands: [(input.address, x.dtype.byteSize)])
        // 32 vectors of D per block (threadIdx.x), 8 threads splitting S (threadIdx.y).
        let columnBlocks = min((d / vector + 31) / 32, 65535)
        let function = try device.function(TokenKernels.source, entry: "masked_mean_pool", defines: [
            "MEAN_POOL": 1, "IN_DT": x.dtype.kernelCode, "M_DT": mask.dtype.kernelCode, "VEC": vector])
        try device.launch(function, grid: (batch, columnBlocks, 1), block: (32, 8, 1), [
            input.argument, weights.argument, try GPU(result).argument, .int32(Int32(s)), .int32(Int32(d))])
        return result
    }
}
