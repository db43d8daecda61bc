import QLQuantized
import QLTensor

extension BlockWiseINT8Layout: KernelQuantizedLayout {
    /// The shared kernel handlers (``KernelQuantizedLayout``) and dequantize with these blocks.
    public static func registerHandlers(in registry: LayoutRegistry) {
        registerKernelHandlers(in: registry)
        registry.register(.dequantize, for: Self.self, OpHandler { call in
            try HandlerResult.attempt {
                let (q, layout) = try UnaryOperand.quantized(call, as: Self.self)
                return .dense(try DeviceBackends.kernels(for: q.device).dequantizeINT8(
                    codes: q.data, scales: q.scale, blocks: layout.blocks,
                    to: call.attributes.outputDType ?? q.originalDType).orDecline())
            }
        })
        registry.register(.embedding, for: Self.self, OpHandler { call in
            try HandlerResult.attempt { .dense(try embedding(call)) }
        })
    }

    /// Rows of a table quantized with 1 x B blocks (``BlockWiseINT8Layout/activation(blockSize:rounding:)``):
    /// the rows' codes and scales are gathered, then only they are dequantized,
    /// `y[i..., k] = q[id, k] * s[id, k / B]` in the table's original dtype: bit-identical to
    /// dequantizing the table and gathering, without the float copy of the table. Tables with blocks
    /// over several rows are declined (the fallback dequantizes the whole table).
    static func embedding(_ call: OpCall) throws -> Tensor {
        let (table, layout, indices) = try UnaryOperand.table(call, as: Self.self)
        guard layout.isActivationBlocking else {
            throw Declined("table blocks \(layout.blockRows)x\(layout.blockColumns) span several rows; quantize "
                + "embedding tables with 1 x B blocks (BlockWiseINT8Layout.activation(blockSize:))")
        }
        let width = table.shape[1]
        let codes = try DenseOps.embedding(table.data, indices: indices)
        let scales = try DenseOps.embedding(table.scale, indices: indices)
        let rows = indices.count
        let dense = try DeviceBackends.kernels(for: table.device).dequantizeINT8(
            codes: codes.reshaped([rows, width]), scales: scales.reshaped([rows, table.scale.shape[1]]),
            blocks: layout.blocks, to: table.originalDType).orDecline()
        return try dense.reshaped(indices.shape + [width])
    }

    func quantized(_ source: QuantizationSource, shape: [Int], originalDType: DType,
                   transform: QuantizationTransform = .none, checkFinite: Bool) throws -> QuantizedTensor {
        guard !shape.isEmpty else { throw Declined("a scalar has no blocks") }
        let parts = try DeviceBackends.kernels(for: source.primary.device).quantizeINT8(
            source, shape: shape, blocks: blocks, transform: transform, roundTo: originalDType,
            checkFinite: checkFinite).orDecline()
        return QuantizedTensor(unchecked: self, data: parts.codes, scale: parts.scales, shape: shape,
                               originalDType: originalDType)
    }

    static func source(of q: QuantizedTensor) -> QuantizationSource {
        .int8(INT8Parts(codes: q.data, scales: q.scale))
    }

    /// Gelu re-quantizes with the input's own blocks.
    var geluLayout: Self { self }

    /// 1 x Bk activation blocks, Bk the weight's own, with the weight's rounding.
    var w8a8InputLayout: any KernelQuantizedLayout {
        get throws { try Self.activation(blockSize: blockColumns, rounding: rounding) }
    }

    /// `q` if it can be this weight's W8A8 input: block-wise INT8 with 1 x Bk blocks along K, Bk
    /// the weight's own; declined otherwise (the fallback then handles it).
    func checkedGEMMInput(_ q: QuantizedTensor) throws -> QuantizedTensor {
        guard let inputLayout = q.layout as? Self else { throw Declined("the input is \(q.layout.name)") }
        guard inputLayout.isActivationBlocking && inputLayout.blockColumns == blockColumns else {
            throw Declined("input blocks \(inputLayout.blockRows)x\(inputLayout.blockColumns) are not "
                + "1x\(blockColumns) along K")
        }
        return q
    }

    /// Linear with a block-wise INT8 weight: W8A8 when the input is (or is made) INT8 with 1 x Bk
    /// blocks, or weight-only (float input, dequantized weight) when the user asks for it. A dense
    /// input quantized here need not be checked for NaN/infinity: such rows come out non-finite,
    /// as in a float linear.
    static func linear(_ call: OpCall) throws -> AnyTensor {
        let operands = try LinearOperands<Self>(call)
        let layout = operands.weightLayout
        let kernels = try DeviceBackends.kernels(for: operands.weight.device)
        return try kernels.runningOp(multiplyAdds: operands.multiplyAdds) {
            let weight = INT8Parts(codes: operands.weight.data, scales: operands.weight.scale)
            let (m, k) = (operands.m, operands.k)
            let quantizedInput: QuantizedTensor
            switch operands.input {
            case .quantized(let q):
                quantizedInput = try layout.checkedGEMMInput(q)
            case .dense(let x):
                if operands.options.floatInput == .dequantizeWeight {
                    let y = try kernels.linearINT8WeightOnly(input: x.reshaped([m, k]), weight: weight,
                                                             weightBlocks: layout.blocks, bias: operands.bias)
                    return try operands.output(y.orDecline().reshaped(operands.outputShape))
                }
                if let y = try kernels.linearINT8QuantizingInput(input: x.reshaped([m, k]), weight: weight,
                                                                 weightBlocks: layout.blocks, bias: operands.bias,
                                                                 outputDType: operands.input.floatDType) {
                    return try operands.output(y.reshaped(operands.outputShape))
                }
                quantizedInput = try SharedLinearInput.quantize(x, with: layout.w8a8InputLayout)
            }
            let kBlocks = (k + layout.blockColumns - 1) / layout.blockColumns
            let y = try kernels.linearINT8(
                inputCodes: quantizedInput.data.reshaped([m, k]),
                inputScales: quantizedInput.scale.reshaped([m, kBlocks]), weight: weight,
                weightBlocks: layout.blocks, bias: operands.bias, outputDType: operands.input.floatDType,
                fallback: FallbackStatistics.shared.kernelFallback(op: .linear, layout: name))
            return try operands.output(y.orDecline().reshaped(operands.outputShape))
        }
    }

    /// Exact transpose: codes and the scale grid swap the same axes; swapping the last two axes
    /// also swaps the block shape. Swapping one of the last two with a batch axis would cut
    /// blocks, so it is declined.
    static func transpose(_ call: OpCall) throws -> QuantizedTensor {
        let (q, layout) = try UnaryOperand.quantized(call, as: Self.self)
        let rank = q.rank
        guard rank >= 2 else { throw TensorError(.invalidArgument, "transpose needs a tensor of rank >= 2") }
        let (a0, b0) = call.attributes.transposeAxes
        let a = a0 < 0 ? a0 + rank : a0
        let b = b0 < 0 ? b0 + rank : b0
        guard (0..<rank).contains(a), (0..<rank).contains(b) else {
            throw TensorError(.invalidArgument, "transpose axes (\(a0), \(b0)) are out of range for rank \(rank)")
        }
        if a == b { return q }
        let lastTwo: Set = [rank - 2, rank - 1]
        let swapsMatrix = lastTwo == Set([a, b])
        guard swapsMatrix || (!lastTwo.contains(a) && !lastTwo.contains(b)) else {
            throw Declined("swapping a batch axis with a blocked axis would cut blocks")
        }
        var shape = q.shape
        shape.swapAt(a, b)
        return QuantizedTensor(unchecked: swapsMatrix ? layout.transposed : layout,
                               data: try q.data.transposed(a, b), scale: try q.scale.transposed(a, b),
                               shape: shape, originalDType: q.originalDType)
    }
}
