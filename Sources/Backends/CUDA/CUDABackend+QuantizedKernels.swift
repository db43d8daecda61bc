import QLTensor

/// The kernel contract on a CUDA device, on the kernels of ``CUDAQuantizedOps`` and
/// ``CUDALinearOps``; each runs wholly on the operands' device and checks what it supports before
/// any launch.
extension CUDABackend: QuantizedKernels {
    package func quantizeINT8(_ source: QuantizationSource, shape: [Int], blocks: INT8Blocks,
                              transform: QuantizationTransform, roundTo: DType,
                              checkFinite: Bool) throws -> KernelResult<INT8Parts> {
        let (codes, scales) = try CUDAQuantizedOps.quantizeBlockwise(
            source, shape: shape, scaleShape: blocks.scaleShape(for: shape), blockRows: blocks.rows,
            blockColumns: blocks.columns, towardZero: blocks.rounding == .towardZero, transform: transform,
            roundTo: roundTo, checkFinite: checkFinite)
        return .done(INT8Parts(codes: codes, scales: scales))
    }

    package func dequantizeINT8(codes: Tensor, scales: Tensor, blocks: INT8Blocks, to dtype: DType) throws
        -> KernelResult<Tensor> {
        .done(try CUDAQuantizedOps.dequantizeBlockwise(codes: codes, scales: scales, blockRows: blocks.rows,
                                                       blockColumns: blocks.columns, to: dtype))
    }

    package func linearINT8(inputCodes: Tensor, inputScales: Tensor, weight: INT8Parts, weightBlocks: INT8Blocks,
                            bias: Tensor?, outputDType: DType, fallback: KernelFallback) throws
        -> KernelResult<Tensor> {
        .done(try CUDALinearOps.blockwiseW8A8(
            inputCodes: inputCodes, inputScales: inputScales, weightCodes: weight.codes, weightScales: weight.scales,
            weightBlockRows: weightBlocks.rows, blockColumns: weightBlocks.columns, bias: bias,
            outputDType: outputDType, fallback: fallback))
    }

    /// Decode shapes (M <= 16): the activation quantized inside the GEMV (``CUDALinearOps/blockwiseW8A8Decode``).
    package func linearINT8QuantizingInput(input: Tensor, weight: INT8Parts, weightBlocks: INT8Blocks, bias: Tensor?,
                                           outputDType: DType) throws -> Tensor? {
        guard input.shape[0] <= CUDALinearOps.decodeMaxRows else { return nil }
        return try CUDALinearOps.blockwiseW8A8Decode(
            input: input, weightCodes: weight.codes, weightScales: weight.scales, weightBlockRows: weightBlocks.rows,
            blockColumns: weightBlocks.columns, towardZero: weightBlocks.rounding == .towardZero, bias: bias,
            outputDType: outputDType)
    }

    package func linearINT8WeightOnly(input: Tensor, weight: INT8Parts, weightBlocks: INT8Blocks,
                                      bias: Tensor?) throws -> KernelResult<Tensor> {
        .done(try CUDALinearOps.blockwiseWeightOnly(
            input: input, weightCodes: weight.codes, weightScales: weight.scales, weightBlockRows: weightBlocks.rows,
            blockColumns: weightBlocks.columns, bias: bias))
    }

    package func quantizeFP8(_ source: QuantizationSource, fixedScale: Float?, transform: QuantizationTransform,
                             roundTo: DType, checkFinite: Bool) throws -> KernelResult<FP8Parts> {
        let (codes, scale) = try CUDAQuantizedOps.quantizeFP8(source, fixedScale: fixedScale, transform: transform,
                                                              roundTo: roundTo, checkFinite: checkFinite)
        return .done(FP8Parts(codes: codes, scale: scale))
    }

    package func dequantizeFP8(codes: Tensor, scale: Tensor, to dtype: DType) throws -> KernelResult<Tensor> {
        .done(try CUDAQuantizedOps.dequantizeFP8(codes: codes, scale: scale, to: dtype))
    }

    package func linearFP8(input: FP8Parts, weight: FP8Parts, bias: Tensor?, outputDType: DType,
                           fallback: KernelFallback) throws -> KernelResult<Tensor> {
        .done(try CUDALinearOps.fp8(inputCodes: input.codes, inputScale: input.scale, weightCodes: weight.codes,
                                    weightScale: weight.scale, bias: bias, outputDType: outputDType,
                                    fallback: fallback))
    }

    /// Decode shapes (M <= 16): the input quantized inside the GEMV (``CUDALinearOps/fp8W8A8Decode``).
    package func linearFP8QuantizingInput(input: Tensor, weight: FP8Parts, bias: Tensor?,
                                          outputDType: DType) throws -> Tensor? {
        guard input.shape[0] <= CUDALinearOps.decodeMaxRows else { return nil }
        return try CUDALinearOps.fp8W8A8Decode(input: input, weightCodes: weight.codes, weightScale: weight.scale,
                                               bias: bias, outputDType: outputDType)
    }

    package func linearFP8WeightOnly(input: Tensor, weight: FP8Parts, bias: Tensor?) throws -> KernelResult<Tensor> {
        .done(try CUDALinearOps.fp8WeightOnly(input: input, weightCodes: weight.codes, weightScale: weight.scale,
                                              bias: bias))
    }
}
