import QLCUDA
import QLQuantized
import QLTensor

extension TensorCoreFP8Layout {
    /// The CUDA handlers: quantize (amax and encode passes on the device), dequantize, gelu (fused,
    /// re-quantized with a fresh dynamic scale), transpose, weight update, and linear (FP8 tensor
    /// cores through cuBLASLt, or weight-only).
    static func registerCUDAHandlers(in registry: LayoutRegistry) {
        CUDABackend.registerIfAvailable()
        registry.registerQuantizer(for: Self.self, LayoutRegistry.QuantizeKernel(backend: .cuda) { tensor, layout in
            guard let layout = layout as? Self else { return nil }
            try QuantizationInput.check(tensor, layout: Self.name)
            return try layout.quantizeOnCUDA(.dense(tensor), shape: tensor.shape, originalDType: tensor.dtype,
                                             checkFinite: true)
        })
        registry.register(.dequantize, for: Self.self, OpHandler(backend: .cuda) { call in
            try HandlerResult.attempt {
                let (q, _) = try UnaryOperand.quantized(call, as: Self.self)
                return .dense(try CUDAQuantizedOps.dequantizeFP8(codes: q.data, scale: q.scale,
                                                                 to: call.attributes.outputDType ?? q.originalDType))
            }
        })
        registry.register(.gelu, for: Self.self, OpHandler(backend: .cuda) { call in
            try HandlerResult.attempt {
                let (q, _) = try UnaryOperand.quantized(call, as: Self.self)
                // The output range differs from the input's, so the scale is chosen afresh.
                return .quantized(try Self.dynamic.quantizeOnCUDA(
                    .fp8(codes: q.data, scale: q.scale), shape: q.shape, originalDType: q.originalDType,
                    transform: .gelu(call.attributes.geluApproximation), checkFinite: false))
            }
        })
        registry.register(.transpose, for: Self.self, OpHandler(backend: .cuda) { call in
            try HandlerResult.attempt { .quantized(try transpose(call)) }
        })
        registry.register(.weightUpdate, for: Self.self, OpHandler(backend: .cuda) { call in
            try HandlerResult.attempt {
                let (weight, layout) = try UnaryOperand.quantized(call, as: Self.self)
                let delta = try UnaryOperand.delta(call, weight: weight, onWeightDevice: true)
                return .quantized(try layout.quantizeOnCUDA(
                    .fp8(codes: weight.data, scale: weight.scale), shape: weight.shape,
                    originalDType: weight.originalDType,
                    transform: .addDelta(delta, strength: call.attributes.deltaStrength), checkFinite: true))
            }
        })
        registry.register(.linear, for: Self.self, OpHandler(backend: .cuda) { call in
            try HandlerResult.attempt { try linearCUDA(call) }
        })
    }

    func quantizeOnCUDA(_ source: CUDAQuantizedOps.Source, shape: [Int], originalDType: DType,
                        transform: CUDAQuantizedOps.Transform = .none, checkFinite: Bool) throws -> QuantizedTensor {
        let (codes, scale) = try CUDAQuantizedOps.quantizeFP8(source, fixedScale: fixedScale, transform: transform,
                                                              roundTo: originalDType, checkFinite: checkFinite)
        return QuantizedTensor(unchecked: self, data: codes, scale: scale, shape: shape, originalDType: originalDType)
    }

    /// Linear on CUDA: FP8 x FP8 (a dense input is quantized on the device with a dynamic scale,
    /// unchecked for NaN like any float linear), or weight-only on request.
    static func linearCUDA(_ call: OpCall) throws -> AnyTensor {
        let operands = try LinearOperands<Self>(call)
        let (m, k) = (operands.m, operands.k)
        let quantizedInput: QuantizedTensor
        switch operands.input {
        case .quantized(let q):
            guard q.layout is Self else { throw Declined("the input is \(q.layout.name)") }
            quantizedInput = q
        case .dense(let x):
            if operands.options.floatInput == .dequantizeWeight {
                let y = try CUDALinearOps.fp8WeightOnly(input: x.reshaped([m, k]), weightCodes: operands.weight.data,
                                                        weightScale: operands.weight.scale, bias: operands.bias)
                return try operands.output(y.reshaped(operands.outputShape))
            }
            quantizedInput = try Self.dynamic.quantizeOnCUDA(.dense(x), shape: x.shape, originalDType: x.dtype,
                                                             checkFinite: false)
        }
        let y = try CUDALinearOps.fp8(inputCodes: quantizedInput.data.reshaped([m, k]), inputScale: quantizedInput.scale,
                                      weightCodes: operands.weight.data, weightScale: operands.weight.scale,
                                      bias: operands.bias, outputDType: operands.input.floatDType)
        return try operands.output(y.reshaped(operands.outputShape))
    }
}
