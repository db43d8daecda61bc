import QLTensor

/// Layer norm, masked softmax and L2 normalization over the last dimension
/// (``NormalizationKernels``): one warp per row up to 256 vectors per row, one block per row above.
extension CUDABackend {
    /// `y = (x - mean) / sqrt(var + eps) * weight + bias` over the last dimension, biased variance,
    /// float32 arithmetic, `y` in x's dtype.
    /// - Parameters:
    ///   - x: `[..., D]`, float32, float16 or bfloat16, contiguous or strided.
    ///   - weight: `[D]` or `nil` (1); any of the three float dtypes.
    ///   - bias: `[D]` or `nil` (0).
    ///   - epsilon: added to the variance; finite, >= 0.
    /// - Throws: ``TensorError/Code/shapeMismatch`` when weight or bias is not `[D]`,
    ///   ``TensorError/Code/unsupportedDType``, ``TensorError/Code/deviceMismatch``.
    public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, epsilon: Float) throws -> Tensor {
        let op = "layerNorm"
        try OperandChecks.float(x, "x", op)
        try OperandChecks.rank(x, atLeast: 1, "x", op)
        try OperandChecks.epsilon(epsilon, op)
        let d = x.shape[x.rank - 1]
        for (role, parameter) in [("weight", weight), ("bias", bias)] {
            guard let parameter else { continue }
            try OperandChecks.float(parameter, role, op)
            guard parameter.shape == [d] else {
                throw TensorError(.shapeMismatch, "\(op): \(role) has shape \(parameter.shape), expected [\(d)] "
                    + "(the last dimension of x \(x.shape))")
            }
        }
        try OperandChecks.sameDevice([x] + [weight, bias].compactMap { $0 }, op)
        let input = try GPU(try x.contiguous())
        let result = try GPU.empty(x.shape, x.dtype, on: input.device)
        guard x.count > 0 else { return result }
        let w = try weight.map { try GPU(try $0.contiguous()) }
        let b = try bias.map { try GPU(try $0.contiguous()) }
        let output = try GPU(result)
        var operands = [(address: input.address, elementSize: x.dtype.byteSize)]
        if let w, let weight { operands.append((w.address, weight.dtype.byteSize)) }
        if let b, let bias { operands.append((b.address, bias.dtype.byteSize)) }
        let launch = try RowLaunch(device: input.device, rows: x.count / d, d: d, dtype: x.dtype, operands: operands,
                                   op: op)
        try launch.run(NormalizationKernels.source, entry: "layer_norm", defines: [
            "LAYER_NORM": 1, "W_DT": weight?.dtype.kernelCode ?? -1, "B_DT": bias?.dtype.kernelCode ?? -1,
        ], [input.argument, w?.argument ?? .null, b?.argument ?? .null, output.argument, .int(launch.rows),
            .int32(Int32(d)), .float(epsilon)])
        return result
    }

    /// Softmax over the last dimension of `x` (`[B, ..., C]`), with `additiveMask[b, :]` (`[B, C]`)
    /// added to every row of `x[b]` first: `y = exp(z - max z) / sum exp(z - max z)`, `z = x + mask`.
    /// A row whose `z` is all `-inf` gives zeros.
    /// - Throws: ``TensorError/Code/shapeMismatch`` when the mask is not `[B, C]` (or is given for a
    ///   1-D `x`), ``TensorError/Code/unsupportedDType``, ``TensorError/Code/deviceMismatch``.
    public func softmax(_ x: Tensor, additiveMask: Tensor?) throws -> Tensor {
        let op = "softmax"
        try OperandChecks.float(x, "x", op)
        try OperandChecks.rank(x, atLeast: 1, "x", op)
        let c = x.shape[x.rank - 1]
        if let mask = additiveMask {
            try OperandChecks.float(mask, "additiveMask", op)
            guard x.rank >= 2, mask.shape == [x.shape[0], c] else {
                throw TensorError(.shapeMismatch, "\(op): additiveMask has shape \(mask.shape); for x \(x.shape) "
                    + "it must be [B, C] = [\(x.shape[0]), \(c)] (and x needs rank >= 2)")
            }
            try OperandChecks.sameDevice([x, mask], op)
        }
        let input = try GPU(try x.contiguous())
        let result = try GPU.empty(x.shape, x.dtype, on: input.device)
        guard x.count > 0 else { return result }
        let mask = try additiveMask.map { try GPU(try $0.contiguous()) }
        let rows = x.count / c
        var operands = [(address: input.address, elementSize: x.dtype.byteSize)]
        if let mask, let additiveMask { operands.append((mask.address, additiveMask.dtype.byteSize)) }
        let launch = try RowLaunch(device: input.device, rows: rows, d: c, dtype: x.dtype, operands: operands, op: op)
        try launch.run(NormalizationKernels.source, entry: "softmax", defines: [
            "SOFTMAX": 1, "M_DT": additiveMask?.dtype.kernelCode ?? -1,
        ], [input.argument, mask?.argument ?? .null, try GPU(result).argument, .int(rows), .int32(Int32(c)),
            .int(additiveMask == nil ? rows : rows / x.shape[0])])
        return result
    }

    /// `y = x / max(||x||_2, eps)` over the last dimension, float32 arithmetic.
    /// - Throws: ``TensorError/Code/unsupportedDType``, ``TensorError/Code/invalidArgument`` for a
    ///   negative or non-finite epsilon.
    public func l2Normalize(_ x: Tensor, epsilon: Float) throws -> Tensor {
        let op = "l2Normalize"
        try OperandChecks.float(x, "x", op)
        try OperandChecks.rank(x, atLeast: 1, "x", op)
        try OperandChecks.epsilon(epsilon, op)
        let d = x.shape[x.rank - 1]
        let input = try GPU(try x.contiguous())
        let result = try GPU.empty(x.shape, x.dtype, on: input.device)
        guard x.count > 0 else { return result }
        let launch = try RowLaunch(device: input.device, rows: x.count / d, d: d, dtype: x.dtype,
                                   operands: [(input.address, x.dtype.byteSize)], op: op)
        try launch.run(NormalizationKernels.source, entry: "l2_normalize", defines: ["L2_NORMALIZE": 1],
                       [input.argument, try GPU(result).argument, .int(launch.rows), .int32(Int32(d)),
                        .float(epsilon)])
        return result
    }
}

/// The launch shape of a row kernel: vector width, threads per row, grid.
struct RowLaunch {
    let device: CUDADevice
    let rows: Int
    let dtype: DType
    /// Elements per access.
    let vector: Int
    /// Threads per row: 32 (a warp, eight rows per block) or 128 / 512 / 1024 (a block).
    let rowThreads: Int

    /// Output rows are freshly allocated (aligned); `operands` are the inputs' addresses and element sizes.
    init(device: CUDADevice, rows: Int, d: Int, dtype: DType,
         operands: [(address: CUDeviceAddress, elementSize: Int)], op: String) throws {
        try OperandChecks.fitsInt32(d, "the last dimension", op)
        self.device = device
        self.rows = rows
        self.dtype = dtype
        vector = VectorWidth.choose(length: d, elementSize: dtype.byteSize, operands: operands)
        let vectors = d / vector
        rowThreads = vectors <= 256 ? 32 : vectors <= 1024 ? 128 : vectors <= 4096 ? 512 : 1024
    }

    func run(_ source: KernelSource, entry: String, defines: [String: Int], _ arguments: [KernelArgument]) throws {
        var all = defines
        all["IN_DT"] = dtype.kernelCode
        all["VEC"] = vector
        all["RT"] = rowThreads
        let function = try device.function(source, entry: entry, defines: all)
        let rowsPerBlock = rowThreads == 32 ? 8 : 1
        let threads = rowThreads * rowsPerBlock
        let grid = device.gridSize(work: rows, perBlock: rowsPerBlock, blocksPerSM: 2048 / threads)
        try device.launch(function, grid: (grid, 1, 1), block: (rowThreads, rowsPerBlock, 1), arguments)
    }
}
