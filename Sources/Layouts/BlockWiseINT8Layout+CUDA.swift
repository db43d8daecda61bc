import CUDA
import QuantizedTensors
import Tensors

extension BlockWiseINT8Layout {
    /// The CUDA handlers: quantize, dequantize, gelu (fused dequantize-gelu-requantize), transpose,
    /// weight update (fused dequantize-add-requantize as a weight) and linear (W8A8 or weight-only).
    /// Each runs wholly on the tensors' device; capability is checked before any launch.
    static func registerCUDAHandlers(in registry: LayoutRegistry) {
        CUDABackend.registerIfAvailable()
        registry.registerQuantizer(for: Self.self, LayoutRegistry.QuantizeKernel(backend: .cuda) { tensor, layout in
            guard let layout = layout as? Self else { return nil }
            try QuantizationInput.check(tensor, layout: Self.name)
            guard tensor.rank >= 1 else {
                throw TensorError(.shapeMismatch, "block-wise INT8 needs a tensor of rank >= 1, got a scalar")
            }
            return try layout.quantizeOnCUDA(.dense(tensor), shape: tensor.shape, originalDType: tensor.dtype,
                                             checkFinite: true)
        })
        registry.register(.dequantize, for: Self.self, OpHandler(backend: .cuda) { call in
            try HandlerResult.attempt {
                let (q, layout) = try UnaryOperand.quantized(call, as: Self.self)
                return .dense(try CUDAQuantizedOps.dequantizeBlockwise(
                    codes: q.data, scales: q.scale, blockRows: layout.blockRows, blockColumns: layout.blockColumns,
                    to: call.attributes.outputDType ?? q.originalDType))
            }
        })
        registry.register(.gelu, for: Self.self, OpHandler(backend: .cuda) { call in
            try HandlerResult.attempt {
                let (q, layout) = try UnaryOperand.quantized(call, as: Self.self)
                guard q.rank >= 1 else { throw Declined("a scalar has no blocks") }
                return .quantized(try layout.quantizeOnCUDA(
                    .int8(codes: q.data, scales: q.scale), shape: q.shape, originalDType: q.originalDType,
                    transform: .gelu(call.attributes.geluApproximation), checkFinite: false))
            }
        })
        registry.register(.transpose, for: Self.self, OpHandler(backend: .cuda) { call in
            // Codes and scale grid swap as views; kernels make them contiguous when they read them.
            try HandlerResult.attempt { .quantized(try transpose(call)) }
        })
        registry.register(.weightUpdate, for: Self.self, OpHandler(backend: .cuda) { call in
            try HandlerResult.attempt {
                let (weight, layout) = try UnaryOperand.quantized(call, as: Self.self)
                let delta = try UnaryOperand.delta(call, weight: weight, onWeightDevice: true)
                // Re-quantized with the weight's own block shape, so it stays a valid GEMM weight.
                return .quantized(try layout.quantizeOnCUDA(
                    .int8(codes: weight.data, scales: weight.scale), shape: weight.shape,
                    originalDType: weight.originalDType,
                    transform: .addDelta(delta, strength: call.attributes.deltaStrength), checkFinite: true))
            }
        })
        registry.register(.linear, for: Self.self, OpHandler(backend: .cuda) { call in
            try HandlerResult.attempt { try linearCUDA(call) }
        })
    }

    /// Quantizes `source` with this layout on its CUDA device; the transformed values are rounded to
    /// `originalDType` first, as the CPU path materialises them.
    func quantizeOnCUDA(_ source: CUDAQuantizedOps.Source, shape: [Int], originalDType: DType,
                        transform: CUDAQuantizedOps.Transform = .none, checkFinite: Bool) throws -> QuantizedTensor {
        let (codes, scales) = try CUDAQuantizedOps.quantizeBlockwise(
            source, shape: shape, scaleShape: scaleShape(for: shape), blockRows: blockRows,
            blockColumns: blockColumns, towardZero: rounding == .towardZero, transform: transform,
            roundTo: originalDType, checkFinite: checkFinite)
        return QuantizedTensor(unchecked: self, data: codes, scale: scales, shape: shape, originalDType: originalDType)
    }

    /// Linear on CUDA: W8A8 when the input is (or is made) INT8 with 1 x Bk blocks, weight-only when
    /// the user asks for it. A dense input quantized here is not checked for NaN/infinity (no wait
    /// for the device): such rows come out non-finite, as in a float linear.
    static func linearCUDA(_ call: OpCall) throws -> AnyTensor {
        let operands = try LinearOperands<Self>(call)
        let layout = operands.weightLayout
        let (m, k) = (operands.m, operands.k)
        let quantizedInput: QuantizedTensor
        switch operands.input {
        case .quantized(let q):
            quantizedInput = try layout.checkedGEMMInput(q)
        case .dense(let x):
            if operands.options.floatInput == .dequantizeWeight {
                let y = try CUDALinearOps.blockwiseWeightOnly(
                    input: x.reshaped([m, k]), weightCodes: operands.weight.data, weightScales: operands.weight.scale,
                    weightBlockRows: layout.blockRows, blockColumns: layout.blockColumns, bias: operands.bias)
                return try operands.output(y.reshaped(operands.outputShape))
            }
            if m <= CUDALinearOps.decodeMaxRows, let y = try CUDALinearOps.blockwiseW8A8Decode(
                input: x.reshaped([m, k]), weightCodes: operands.weight.data, weightScales: operands.weight.scale,
                weightBlockRows: layout.blockRows, blockColumns: layout.blockColumns,
                towardZero: layout.rounding == .towardZero, bias: operands.bias,
                outputDType: operands.input.floatDType) {
                // Decode: the activation quantized inside the GEMV, one launch.
                return try operands.output(y.reshaped(operands.outputShape))
            }
            let activation = try Self.activation(blockSize: layout.blockColumns, rounding: layout.rounding)
            quantizedInput = try activation.quantizeOnCUDA(.dense(x), shape: x.shape, originalDType: x.dtype,
                                                           checkFinite: false)
        }
        let kBlocks = (k + layout.blockColumns - 1) / layout.blockColumns
        let y = try CUDALinearOps.blockwiseW8A8(
            inputCodes: quantizedInput.data.reshaped([m, k]), inputScales: quantizedInput.scale.reshaped([m, kBlocks]),
            weightCodes: operands.weight.data, weightScales: operands.weight.scale,
            weightBlockRows: layout.blockRows, blockColumns: layout.blockColumns, bias: operands.bias,
            outputDType: operands.input.floatDType)
        return try operands.output(y.reshaped(operands.outputShape))
    }
}
