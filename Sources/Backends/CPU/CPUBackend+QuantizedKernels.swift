import QLTensor

/// The kernel contract on the CPU, on the C kernels of ``BlockWiseINT8CPU`` and ``FP8CPU``: every
/// GEMM takes every shape (no fallback to report); dequantize declines dtypes it does not write. A
/// quantization with a transform that has no fused kernel runs in three passes with the same result
/// (bit-identical): dequantize to float32, transform, round to `roundTo`, quantize.
extension CPUBackend: QuantizedKernels {
    /// Holds ``ComputeSlots`` for the whole op (``ComputeSlots/holding(upTo:_:)``).
    package func runningOp<R>(multiplyAdds: Int, _ body: () throws -> R) throws -> R {
        try ComputeSlots.holding(upTo: CPUKernels.threads(forMultiplyAdds: multiplyAdds), body)
    }

    package func quantizeINT8(_ source: QuantizationSource, shape: [Int], blocks: INT8Blocks,
                              transform: QuantizationTransform, roundTo: DType,
                              checkFinite: Bool) throws -> KernelResult<INT8Parts> {
        if case .int8(let parts) = source, case .gelu(let approximation) = transform,
           let fused = try BlockWiseINT8CPU.gelu(parts, shape: shape, blocks: blocks, roundTo: roundTo,
                                                 approximation: approximation) {
            return .done(fused)
        }
        let values = try materialized(source, blocks: blocks, transform: transform, roundTo: roundTo)
        return .done(try BlockWiseINT8CPU.quantize(values, blocks: blocks))
    }

    package func dequantizeINT8(codes: Tensor, scales: Tensor, blocks: INT8Blocks, to dtype: DType) throws
        -> KernelResult<Tensor> {
        guard let result = try BlockWiseINT8CPU.dequantize(INT8Parts(codes: codes, scales: scales), blocks: blocks,
                                                           to: dtype) else {
            return .declined("the CPU dequantize kernel writes float32, float16 or bfloat16, not \(dtype)")
        }
        return .done(result)
    }

    package func linearINT8(inputCodes: Tensor, inputScales: Tensor, weight: INT8Parts, weightBlocks: INT8Blocks,
                            bias: Tensor?, outputDType: DType, fallback: KernelFallback) throws
        -> KernelResult<Tensor> {
        .done(try BlockWiseINT8CPU.linearW8A8(inputCodes: inputCodes, inputScales: inputScales, weight: weight,
                                              blocks: weightBlocks, bias: bias, outputDType: outputDType))
    }

    /// W8A8 GEMM shapes (M > 16): the input quantized and packed in the GEMM's own parallel region
    /// (``BlockWiseINT8CPU/linearW8A8QuantizingInput(_:weight:blocks:bias:outputDType:)``).
    package func linearINT8QuantizingInput(input: Tensor, weight: INT8Parts, weightBlocks: INT8Blocks, bias: Tensor?,
                                           outputDType: DType) throws -> Tensor? {
        try BlockWiseINT8CPU.linearW8A8QuantizingInput(input, weight: weight, blocks: weightBlocks, bias: bias,
                                                       outputDType: outputDType)
    }

    package func linearINT8WeightOnly(input: Tensor, weight: INT8Parts, weightBlocks: INT8Blocks,
                                      bias: Tensor?) throws -> KernelResult<Tensor> {
        .done(try BlockWiseINT8CPU.linearWeightOnly(input, weight: weight, blocks: weightBlocks, bias: bias))
    }

    package func quantizeFP8(_ source: QuantizationSource, fixedScale: Float?, transform: QuantizationTransform,
                             roundTo: DType, checkFinite: Bool) throws -> KernelResult<FP8Parts> {
        let values = try materialized(source, blocks: nil, transform: transform, roundTo: roundTo)
        return .done(try FP8CPU.quantize(values, fixedScale: fixedScale))
    }

    package func dequantizeFP8(codes: Tensor, scale: Tensor, to dtype: DType) throws -> KernelResult<Tensor> {
        guard let result = try FP8CPU.dequantize(FP8Parts(codes: codes, scale: scale), to: dtype) else {
            return .declined("the CPU FP8 dequantize kernel writes float32, float16 or bfloat16, not \(dtype)")
        }
        return .done(result)
    }

    package func linearFP8(input: FP8Parts, weight: FP8Parts, bias: Tensor?, outputDType: DType,
                           fallback: KernelFallback) throws -> KernelResult<Tensor> {
        // Products of two e4m3 values are exact in float32, so decoding both and multiplying in
        // float32 is the FP8 x FP8 product; the scales apply once, after the sum.
        let (m, k) = (input.codes.shape[0], input.codes.shape[1])
        let post = try input.scale.floats()[0] * weight.scale.floats()[0]
        return .done(try input.codes.withUnsafeContiguousBytes { codes in
            try FP8CPU.linear(.e4m3(codes.baseAddress?.assumingMemoryBound(to: UInt8.self)), m: m, k: k,
                              weightCodes: weight.codes, weightScale: 1, post: post, bias: bias,
                              outputDType: outputDType)
        })
    }

    package func linearFP8WeightOnly(input: Tensor, weight: FP8Parts, bias: Tensor?) throws -> KernelResult<Tensor> {
        let (m, k) = (input.shape[0], input.shape[1])
        let weightScale = try weight.scale.floats()[0]
        return .done(try input.withUnsafeFloats {
            try FP8CPU.linear(.floats($0.baseAddress), m: m, k: k, weightCodes: weight.codes,
                              weightScale: weightScale, post: 1, bias: bias, outputDType: input.dtype)
        })
    }

    /// The values a quantizer reads: the dense source, or the codes dequantized to float32;
    /// transformed (gelu, or `x + strength * delta` in float32) and then rounded to `roundTo`.
    private func materialized(_ source: QuantizationSource, blocks: INT8Blocks?, transform: QuantizationTransform,
                              roundTo: DType) throws -> Tensor {
        let values: Tensor
        switch source {
        case .dense(let tensor):
            values = tensor
        case .int8(let parts):
            guard let blocks, let dequantized = try BlockWiseINT8CPU.dequantize(parts, blocks: blocks, to: .float32)
            else {
                throw TensorError(.invalidArgument, "FP8 quantization cannot read block-wise INT8 codes; "
                    + "dequantize them first")
            }
            values = dequantized
        case .fp8(let parts):
            // Float32 is a dtype the kernel writes.
            values = try FP8CPU.dequantize(parts, to: .float32)!
        }
        switch transform {
        case .none:
            return values
        case .gelu(let approximation):
            return try DenseOps.gelu(values, approximation: approximation).converted(to: roundTo)
        case .addDelta(let delta, let strength):
            let sum = zip(try values.floats(), try delta.floats()).map { $0 + strength * $1 }
            return try Tensor(sum, shape: values.shape, dtype: roundTo)
        }
    }
}
