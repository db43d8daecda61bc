import QLQuantized
import QLTensor

extension BlockWiseINT8Layout {
    /// One handler per op, for tensors on every device kind: each checks the operands and runs the
    /// kernel of their device's backend (`QuantizedKernels`); a kernel that declines makes the
    /// handler decline, and the registry's fallback runs (observably).
    public static func registerHandlers(in registry: LayoutRegistry) {
        registry.registerQuantizer(for: Self.self, LayoutRegistry.QuantizeKernel { tensor, layout in
            guard let layout = layout as? Self else { return nil }
            try QuantizationInput.check(tensor, layout: Self.name)
            guard tensor.rank >= 1 else {
                throw TensorError(.shapeMismatch, "block-wise INT8 needs a tensor of rank >= 1, got a scalar")
            }
            do {
                return try layout.quantized(.dense(tensor), shape: tensor.shape, originalDType: tensor.dtype,
                                            checkFinite: true)
            } catch is Declined {
                return nil  // the layout's own quantize serves it
            }
        })
        registry.register(.dequantize, for: Self.self, OpHandler { call in
            try HandlerResult.attempt {
                let (q, layout) = try UnaryOperand.quantized(call, as: Self.self)
                return .dense(try DeviceBackends.kernels(for: q.device).dequantizeINT8(
                    codes: q.data, scales: q.scale, blocks: layout.blocks,
                    to: call.attributes.outputDType ?? q.originalDType).orDecline())
            }
        })
        registry.register(.gelu, for: Self.self, OpHandler { call in
            try HandlerResult.attempt {
                let (q, layout) = try UnaryOperand.quantized(call, as: Self.self)
                guard q.rank >= 1 else { throw Declined("a scalar has no blocks") }
                // Dequantize, gelu, round to the original dtype, re-quantize with the same blocks.
                return .quantized(try layout.quantized(
                    .int8(INT8Parts(codes: q.data, scales: q.scale)), shape: q.shape, originalDType: q.originalDType,
                    transform: .gelu(call.attributes.geluApproximation), checkFinite: false))
            }
        })
        registry.register(.transpose, for: Self.self, OpHandler { call in
            // Codes and scale grid swap as views; kernels make them contiguous when they read them.
            try HandlerResult.attempt { .quantized(try transpose(call)) }
        })
        registry.register(.weightUpdate, for: Self.self, OpHandler { call in
            try HandlerResult.attempt {
                let (weight, layout) = try UnaryOperand.quantized(call, as: Self.self)
                let delta = try UnaryOperand.delta(call, weight: weight)
                // Re-quantized with the weight's own block shape, so it stays a valid GEMM weight.
                return .quantized(try layout.quantized(
                    .int8(INT8Parts(codes: weight.data, scales: weight.scale)), shape: weight.shape,
                    originalDType: weight.originalDType,
                    transform: .addDelta(delta, strength: call.attributes.deltaStrength), checkFinite: true))
            }
        })
        registry.register(.linear, for: Self.self, OpHandler { call in
            try HandlerResult.attempt { try linear(call) }
        })
    }

    /// `transform(source)` quantized with this layout by the kernel of the source's device; the
    /// transformed values are rounded to `originalDType` first, as a float op would give them.
    /// - Throws: ``Declined`` when the backend's kernel declines.
    func quantized(_ source: QuantizationSource, shape: [Int], originalDType: DType,
                   transform: QuantizationTransform = .none, checkFinite: Bool) throws -> QuantizedTensor {
        let parts = try DeviceBackends.kernels(for: source.primary.device).quantizeINT8(
            source, shape: shape, blocks: blocks, transform: transform, roundTo: originalDType,
            checkFinite: checkFinite).orDecline()
        return QuantizedTensor(unchecked: self, data: parts.codes, scale: parts.scales, shape: shape,
                               originalDType: originalDType)
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
            let activation = try Self.activation(blockSize: layout.blockColumns, rounding: layout.rounding)
            quantizedInput = try activation.quantized(.dense(x), shape: x.shape, originalDType: x.dtype,
                                                      checkFinite: false)
        }
        let kBlocks = (k + layout.blockColumns - 1) / layout.blockColumns
        let y = try kernels.linearINT8(
            inputCodes: quantizedInput.data.reshaped([m, k]), inputScales: quantizedInput.scale.reshaped([m, kBlocks]),
            weight: weight, weightBlocks: layout.blocks, bias: operands.bias, outputDType: operands.input.floatDType,
            fallback: FallbackStatistics.shared.kernelFallback(op: .linear, layout: name))
        return try operands.output(y.orDecline().reshaped(operands.outputShape))
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
