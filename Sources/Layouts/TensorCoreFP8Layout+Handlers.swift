import QuantizedTensors
import Tensors

extension TensorCoreFP8Layout {
    public static func registerHandlers(in registry: LayoutRegistry) {
        registerCUDAHandlers(in: registry)
        registry.register(.linear, for: Self.self, OpHandler(backend: .cpu) { call in
            try HandlerResult.attempt { try linearCPU(call) }
        })
        registry.register(.gelu, for: Self.self, OpHandler(backend: .cpu) { call in
            try HandlerResult.attempt {
                let (q, _) = try UnaryOperand.quantized(call, as: Self.self)
                let x = try q.dequantize(to: .float32)
                let y = try DenseOps.gelu(x, approximation: call.attributes.geluApproximation)
                // The output range differs from the input's, so the scale is chosen afresh.
                return .quantized(try Self.dynamic.quantize(y.converted(to: q.originalDType)))
            }
        })
        registry.register(.transpose, for: Self.self, OpHandler(backend: .cpu) { call in
            try HandlerResult.attempt {
                let (q, layout) = try UnaryOperand.quantized(call, as: Self.self)
                let (a, b) = call.attributes.transposeAxes
                let data = try q.data.transposed(a, b)
                return .quantized(QuantizedTensor(unchecked: layout, data: data, scale: q.scale, shape: data.shape,
                                                  originalDType: q.originalDType))
            }
        })
        registry.register(.dequantize, for: Self.self, OpHandler(backend: .cpu) { call in
            try HandlerResult.attempt {
                let (q, layout) = try UnaryOperand.quantized(call, as: Self.self)
                return .dense(try layout.dequantize(q, to: call.attributes.outputDType ?? q.originalDType))
            }
        })
        registry.register(.weightUpdate, for: Self.self, OpHandler(backend: .cpu) { call in
            try HandlerResult.attempt {
                let (weight, layout) = try UnaryOperand.quantized(call, as: Self.self)
                let delta = try UnaryOperand.delta(call, weight: weight)
                let merged = try UnaryOperand.updated(weight, delta: delta, strength: call.attributes.deltaStrength)
                return .quantized(try layout.quantize(merged))
            }
        })
    }

    /// Linear with an FP8 weight: FP8 x FP8 when the input is (or is made) FP8, or the
    /// dequantized weight in a float GEMM for weight-only.
    static func linearCPU(_ call: OpCall) throws -> AnyTensor {
        let operands = try LinearOperands<Self>(call)
        let quantizedInput: QuantizedTensor
        switch operands.input {
        case .quantized(let q):
            guard q.layout is Self else { throw Declined("the input is \(q.layout.name)") }
            quantizedInput = q
        case .dense(let x):
            if operands.options.floatInput == .dequantizeWeight {
                let w = try operands.weight.dequantize(to: .float32)
                return try operands.output(DenseOps.linear(x, w, bias: operands.bias))
            }
            quantizedInput = try QuantizedTensor.fromFloat(x, layout: Self.dynamic)
        }
        let y = FP8Reference.linear(
            inputCodes: try quantizedInput.data.elements(as: Float8E4M3FN.self),
            inputScale: try quantizedInput.scale.floats()[0], m: operands.m, k: operands.k,
            weightCodes: try operands.weight.data.elements(as: Float8E4M3FN.self),
            weightScale: try operands.weight.scale.floats()[0], n: operands.n, bias: try operands.biasValues())
        return try operands.output(y)
    }
}
