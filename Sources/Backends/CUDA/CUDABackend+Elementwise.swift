import QLTensor

/// Elementwise products (``ElementwiseKernels``).
extension CUDABackend {
    /// `a * b` elementwise in float32, written in a's dtype; `b` has a's shape or a suffix of it
    /// (`[D]` for `a` `[B, S, D]`) and is repeated over a's leading dimensions.
    /// - Throws: ``TensorError/Code/shapeMismatch`` when b's shape is not a suffix of a's,
    ///   ``TensorError/Code/unsupportedDType``, ``TensorError/Code/deviceMismatch``.
    public func multiply(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        let op = "multiply"
        try OperandChecks.float(a, "a", op)
        try OperandChecks.float(b, "b", op)
        guard b.rank <= a.rank, Array(a.shape.suffix(b.rank)) == b.shape else {
            throw TensorError(.shapeMismatch, "\(op): b \(b.shape) must equal a's shape \(a.shape) or a suffix of it")
        }
        try OperandChecks.sameDevice([a, b], op)
        let left = try GPU(try a.contiguous())
        let right = try GPU(try b.contiguous())
        let result = try GPU.empty(a.shape, a.dtype, on: left.device)
        guard a.count > 0 else { return result }
        let vector = VectorWidth.choose(length: b.count, elementSize: a.dtype.byteSize,
                                        operands: [(left.address, a.dtype.byteSize), (right.address, b.dtype.byteSize)])
        try launch(left.device, "multiply", vectors: a.count / vector, defines: [
            "MULTIPLY": 1, "IN_DT": a.dtype.kernelCode, "B_DT": b.dtype.kernelCode, "VEC": vector,
        ], [left.argument, right.argument, try GPU(result).argument, .int(a.count / vector), .int(b.count / vector)])
        return result
    }

    /// `x * factor` elementwise in float32, written in x's dtype.
    /// - Throws: ``TensorError/Code/unsupportedDType`` for a non-float x.
    public func scaled(_ x: Tensor, by factor: Float) throws -> Tensor {
        try OperandChecks.float(x, "x", "scaled")
        let input = try GPU(try x.contiguous())
        let result = try GPU.empty(x.shape, x.dtype, on: input.device)
        guard x.count > 0 else { return result }
        let vector = VectorWidth.choose(length: x.count, elementSize: x.dtype.byteSize,
                                        operands: [(input.address, x.dtype.byteSize)])
        try launch(input.device, "scale", vectors: x.count / vector, defines: [
            "SCALE": 1, "IN_DT": x.dtype.kernelCode, "VEC": vector,
        ], [input.argument, try GPU(result).argument, .int(x.count / vector), .float(factor)])
        return result
    }

    private func launch(_ device: CUDADevice, _ entry: String, vectors: Int, defines: [String: Int],
                        _ arguments: [KernelArgument]) throws {
        let function = try device.function(ElementwiseKernels.source, entry: entry, defines: defines)
        try device.launch(function, grid: (device.gridSize(work: vectors, perBlock: 256), 1, 1), block: (256, 1, 1),
                          arguments)
    }
}
