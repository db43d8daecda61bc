import QLQuantized
import QLTensor

extension BlockWiseINT8Layout {
    public static func registerHandlers(in registry: LayoutRegistry) {
        registerCUDAHandlers(in: registry)
        registry.registerQuantizer(for: Self.self, LayoutRegistry.QuantizeKernel(backend: .cpu) { tensor, layout in
            guard let layout = layout as? Self else { return nil }
            return try BlockWiseINT8CPU.quantize(tensor, layout: layout)
        })
        registry.register(.linear, for: Self.self, OpHandler(backend: .cpu) { call in
            try HandlerResult.attempt { try linearCPU(call) }
        })
        registry.register(.gelu, for: Self.self, OpHandler(backend: .cpu) { call in
            try HandlerResult.attempt {
                let (q, layout) = try UnaryOperand.quantized(call, as: Self.self)
                if let fused = try BlockWiseINT8CPU.gelu(q, layout: layout,
                                                         approximation: call.attributes.geluApproximation) {
                    return .quantized(fused)
                }
                // Weight-blocked (or oversized-block) tensors: the same function in three passes.
                let x = try q.dequantize(to: .float32)
                let y = try DenseOps.gelu(x, approximation: call.attributes.geluApproximation)
                let requantized = try QuantizedTensor.fromFloat(y.converted(to: q.originalDType), layout: layout)
                return .quantized(requantized)
            }
        })
        registry.register(.transpose, for: Self.self, OpHandler(backend: .cpu) { call in
            try HandlerResult.attempt { .quantized(try transpose(call)) }
        })
        registry.register(.dequantize, for: Self.self, OpHandler(backend: .cpu) { call in
            try HandlerResult.attempt {
                let (q, layout) = try UnaryOperand.quantized(call, as: Self.self)
                let dtype = call.attributes.outputDType ?? q.originalDType
                return .dense(try BlockWiseINT8CPU.dequantize(q, layout: layout, to: dtype)
                    ?? layout.dequantize(q, to: dtype))
            }
        })
        registry.register(.weightUpdate, for: Self.self, UnaryOperand.weightUpdateHandler(Self.self))
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
    /// blocks, or weight-only (float input, dequantized weight) when the user asks for it; both on
    /// the CPU kernels of ``BlockWiseINT8CPU``.
    static func linearCPU(_ call: OpCall) throws -> AnyTensor {
        let operands = try LinearOperands<Self>(call)
        let layout = operands.weightLayout
        let quantizedInput: QuantizedTensor
        switch operands.input {
        case .quantized(let q):
            quantizedInput = try layout.checkedGEMMInput(q)
        case .dense(let x):
            if operands.options.floatInput == .dequantizeWeight {
                return try operands.output(BlockWiseINT8CPU.linearWeightOnly(x, operands))
            }
            let activation = try Self.activation(blockSize: layout.blockColumns, rounding: layout.rounding)
            quantizedInput = try QuantizedTensor.fromFloat(x, layout: activation)
        }
        return try operands.output(BlockWiseINT8CPU.linearW8A8(codes: quantizedInput.data,
                                                               scales: quantizedInput.scale, operands))
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
