import QLQuantized
import QLTensor

extension TensorCoreFP8Layout {
    public static func registerHandlers(in registry: LayoutRegistry) {
        registerCUDAHandlers(in: registry)
        registry.registerQuantizer(for: Self.self, LayoutRegistry.QuantizeKernel(backend: .cpu) { tensor, layout in
            guard let layout = layout as? Self else { return nil }
            return try FP8CPU.quantize(tensor, layout: layout)
        })
        registry.register(.linear, for: Self.self, OpHandler(backend: .cpu) { call in
            try HandlerResult.attempt { try linearCPU(call) }
        })
        registry.register(.gelu, for: Self.self, OpHandler(backend: .cpu) { call in
            try HandlerResult.attempt {
                let (q, _) = try UnaryOperand.quantized(call, as: Self.self)
                let x = try q.dequantize(to: .float32)
                let y = try DenseOps.gelu(x, approximation: call.attributes.geluApproximation)
                // The output range differs from the input's, so the scale is chosen afresh.
                return .quantized(try QuantizedTensor.fromFloat(y.converted(to: q.originalDType), layout: Self.dynamic))
            }
        })
        registry.register(.transpose, for: Self.self, OpHandler(backend: .cpu) { call in
            try HandlerResult.attempt { .quantized(try transpose(call)) }
        })
        registry.register(.dequantize, for: Self.self, OpHandler(backend: .cpu) { call in
            try HandlerResult.attempt {
                let (q, layout) = try UnaryOperand.quantized(call, as: Self.self)
                let dtype = call.attributes.outputDType ?? q.originalDType
                return .dense(try FP8CPU.dequantize(q, to: dtype) ?? layout.dequantize(q, to: dtype))
            }
        })
        registry.register(.weightUpdate, for: Self.self, UnaryOperand.weightUpdateHandler(Self.self))
    }

    /// Exact transpose: the codes swap axes (a view); the per-tensor scale is unchanged.
    static func transpose(_ call: OpCall) throws -> QuantizedTensor {
        let (q, layout) = try UnaryOperand.quantized(call, as: Self.self)
        let (a, b) = call.attributes.transposeAxes
        let data = try q.data.transposed(a, b)
        return QuantizedTensor(unchecked: layout, data: data, scale: q.scale, shape: data.shape,
                               originalDType: q.originalDType)
    }

    /// Linear with an FP8 weight: FP8 x FP8 when the input is (or is made) FP8, or the weight
    /// dequantized on the fly for weight-only; both on the CPU kernels of ``FP8CPU``.
    static func linearCPU(_ call: OpCall) throws -> AnyTensor {
        let operands = try LinearOperands<Self>(call)
        let weightScale = try operands.weight.scale.floats()[0]
        let quantizedInput: QuantizedTensor
        switch operands.input {
        case .quantized(let q):
            guard q.layout is Self else { throw Declined("the input is \(q.layout.name)") }
            quantizedInput = q
        case .dense(let x):
            if operands.options.floatInput == .dequantizeWeight {
                let y = try x.withUnsafeFloats { try FP8CPU.linear($0, weightScale: weightScale, post: 1, operands) }
                return try operands.output(y)
            }
            quantizedInput = try QuantizedTensor.fromFloat(x, layout: Self.dynamic)
        }
        // Products of two e4m3 values are exact in float32, so decoding both and multiplying in
        // float32 is the FP8 x FP8 product; the scales apply once, after the sum.
        let inputScale = try quantizedInput.scale.floats()[0]
        let x = try FP8CPU.decoded(quantizedInput.data)
        let y = try x.withUnsafeBufferPointer {
            try FP8CPU.linear($0, weightScale: 1, post: inputScale * weightScale, operands)
        }
        return try operands.output(y)
    }
}
