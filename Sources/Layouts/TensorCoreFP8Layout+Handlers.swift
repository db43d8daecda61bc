import QLQuantized
import QLTensor

extension TensorCoreFP8Layout: KernelQuantizedLayout {
    /// The shared kernel handlers (``KernelQuantizedLayout``) and dequantize with the per-tensor scale.
    public static func registerHandlers(in registry: LayoutRegistry) {
        registerKernelHandlers(in: registry)
        registry.register(.dequantize, for: Self.self, OpHandler { call in
            try HandlerResult.attempt {
                let (q, _) = try UnaryOperand.quantized(call, as: Self.self)
                return .dense(try DeviceBackends.kernels(for: q.device).dequantizeFP8(
                    codes: q.data, scale: q.scale, to: call.attributes.outputDType ?? q.originalDType).orDecline())
            }
        })
        registry.register(.embedding, for: Self.self, OpHandler { call in
            try HandlerResult.attempt { .dense(try embedding(call)) }
        })
    }

    /// Rows of an FP8 table: the rows' codes are gathered, then only they are dequantized,
    /// `y[i..., k] = float(q[id, k]) * scale` in the table's original dtype (bit-identical to
    /// dequantizing the table and gathering).
    static func embedding(_ call: OpCall) throws -> Tensor {
        let (table, _, indices) = try UnaryOperand.table(call, as: Self.self)
        let codes = try DenseOps.embedding(table.data, indices: indices)
        return try DeviceBackends.kernels(for: table.device).dequantizeFP8(
            codes: codes, scale: table.scale, to: table.originalDType).orDecline()
    }

    func quantized(_ source: QuantizationSource, shape: [Int], originalDType: DType,
                   transform: QuantizationTransform = .none, checkFinite: Bool) throws -> QuantizedTensor {
        let parts = try DeviceBackends.kernels(for: source.primary.device).quantizeFP8(
            source, fixedScale: fixedScale, transform: transform, roundTo: originalDType,
            checkFinite: checkFinite).orDecline()
        return QuantizedTensor(unchecked: self, data: parts.codes, scale: parts.scale, shape: shape,
                               originalDType: originalDType)
    }

    static func source(of q: QuantizedTensor) -> QuantizationSource {
        .fp8(FP8Parts(codes: q.data, scale: q.scale))
    }

    /// The output range differs from the input's, so gelu's scale is chosen afresh.
    var geluLayout: Self { Self.dynamic }

    /// Per-tensor FP8 with a dynamic scale (the input's amax / 448).
    var w8a8InputLayout: any KernelQuantizedLayout { Self.dynamic }

    /// Exact transpose: the codes swap axes (a view); the per-tensor scale is unchanged.
    static func transpose(_ call: OpCall) throws -> QuantizedTensor {
        let (q, layout) = try UnaryOperand.quantized(call, as: Self.self)
        let (a, b) = call.attributes.transposeAxes
        let data = try q.data.transposed(a, b)
        return QuantizedTensor(unchecked: layout, data: data, scale: q.scale, shape: data.shape,
                               originalDType: q.originalDType)
    }

    /// Linear with an FP8 weight: FP8 x FP8 when the input is (or is made) FP8 with a dynamic
    /// scale (a dense input is not checked for NaN, like any float linear), or weight-only on request.
    static func linear(_ call: OpCall) throws -> AnyTensor {
        let operands = try LinearOperands<Self>(call)
        let kernels = try DeviceBackends.kernels(for: operands.weight.device)
        return try kernels.runningOp(multiplyAdds: operands.multiplyAdds) {
            let weight = FP8Parts(codes: operands.weight.data, scale: operands.weight.scale)
            let (m, k) = (operands.m, operands.k)
            let quantizedInput: QuantizedTensor
            switch operands.input {
            case .quantized(let q):
                guard q.layout is Self else { throw Declined("the input is \(q.layout.name)") }
                quantizedInput = q
            case .dense(let x):
                if operands.options.floatInput == .dequantizeWeight {
                    let y = try kernels.linearFP8WeightOnly(input: x.reshaped([m, k]), weight: weight,
                                                            bias: operands.bias)
                    return try operands.output(y.orDecline().reshaped(operands.outputShape))
                }
                if let y = try kernels.linearFP8QuantizingInput(input: x.reshaped([m, k]), weight: weight,
                                                                bias: operands.bias,
                                                                outputDType: operands.input.floatDType) {
                    return try operands.output(y.reshaped(operands.outputShape))
                }
                quantizedInput = try SharedLinearInput.quantize(x, with: Self.dynamic)
            }
            let input = FP8Parts(codes: try quantizedInput.data.reshaped([m, k]), scale: quantizedInput.scale)
            let y = try kernels.linearFP8(input: input, weight: weight, bias: operands.bias,
                                          outputDType: operands.input.floatDType,
                                          fallback: FallbackStatistics.shared.kernelFallback(op: .linear, layout: name))
            return try operands.output(y.orDecline().reshaped(operands.outputShape))
        }
    }
}
