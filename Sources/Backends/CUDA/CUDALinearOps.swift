import Foundation
import QLTensor

/// Quantized linear layers on a CUDA device. Inputs are 2-D `(M, K)` row-major views (the handler
/// flattens batch dimensions); weights are `(N, K)`; outputs are `(M, N)` in `outputDType`.
package enum CUDALinearOps {
    // MARK: Block-wise INT8

    /// `QLINEAR_INT8_GEMM=simt`, read once: building the environment dictionary on every call
    /// costs more than a decode-shape kernel launch.
    static let forcesSIMTKernel = ProcessInfo.processInfo.environment["QLINEAR_INT8_GEMM"] == "simt"

    /// W8A8: `y[m,n] = sum_j float(sum_{k in block j} qx[m,k] qw[n,k]) * (sx[m,j] * sw[n/Bn, j]) + b[n]`.
    ///
    /// Inputs carry 1 x `blockColumns` blocks, the weight `weightBlockRows` x `blockColumns`. The
    /// tensor-core kernels run where they declare support (``BlockwiseINT8GEMM``); every other
    /// block size and shape runs on the SIMT kernel, which computes the CPU reference's exact
    /// arithmetic, reported to `fallback` first with the reason no tensor-core kernel fits.
    /// `QLINEAR_INT8_GEMM=simt` forces the SIMT kernel (to compare the two; not a fallback).
    package static func blockwiseW8A8(inputCodes: Tensor, inputScales: Tensor, weightCodes: Tensor,
                                      weightScales: Tensor, weightBlockRows: Int, blockColumns: Int, bias: Tensor?,
                                      outputDType: DType, fallback: KernelFallback) throws -> Tensor {
        let (m, k) = (inputCodes.shape[0], inputCodes.shape[1])
        let n = weightCodes.shape[0]
        let x = try GPU(try inputCodes.contiguous())
        let device = x.device
        let y = try GPU.empty([m, n], outputDType, on: device)
        guard m > 0 && n > 0 else { return y }
        let kBlocks = (k + blockColumns - 1) / blockColumns
        let sx = try inputScales.contiguous()
        let w = try weightCodes.contiguous()
        let sw = try weightScales.contiguous()
        // The tensor-core kernels read float32, float16 or bfloat16 biases.
        let b = try bias.map { try ([.float32, .float16, .bfloat16].contains($0.dtype) ? $0 : $0.converted(to: .float32))
            .contiguous() }
        let wGPU = try GPU(w)
        if !forcesSIMTKernel, !forcesW8A8GEMM, [.float32, .float16, .bfloat16].contains(outputDType),
           decodeServes(m: m, k: k, blockColumns: blockColumns, w8a8: true, addresses: [x.address, wGPU.address]) {
            return try gemvStream(.w8a8Codes, x: x, inputDType: .int8, sx: try GPU(sx), w: wGPU, scales: try GPU(sw),
                                  bias: b, m: m, n: n, k: k, blockRows: weightBlockRows, blockColumns: blockColumns,
                                  towardZero: false, outputDType: outputDType)
        }
        if !forcesSIMTKernel {
            switch BlockwiseINT8GEMM.plan(m: m, n: n, k: k, blockRows: weightBlockRows, blockColumns: blockColumns,
                                          output: outputDType, device: device) {
            case .success(let plan):
                try BlockwiseINT8GEMM.launch(plan, x: x, sx: try GPU(sx), w: try GPU(w), sw: try GPU(sw), bias: b,
                                             y: try GPU(y), m: m, n: n, k: k, blockRows: weightBlockRows,
                                             blockColumns: blockColumns, output: outputDType)
                return y
            case .failure(let unsupported):
                try fallback.report("no tensor-core INT8 GEMM takes it (\(unsupported.reason)); "
                    + "ran the SIMT kernel (same arithmetic, slower)")
            }
        }
        let function = try device.function(LinearKernels.source, entry: "w8a8_simt", defines: [
            "W8A8": 1, "OUT_DT": outputDType.kernelCode, "BIAS_DT": (b?.dtype ?? .float32).kernelCode])
        try device.launch(function, grid: ((n + 63) / 64, (m + 63) / 64, 1), block: (256, 1, 1), [
            x.argument, try GPU(sx).argument, try GPU(w).argument,
            try GPU(sw).argument, try b.map { try GPU($0).argument } ?? .null,
            try GPU(y).argument, .int32(Int32(m)), .int32(Int32(n)), .int32(Int32(k)),
            .int32(Int32(kBlocks)), .int32(Int32(weightBlockRows)), .int32(Int32(blockColumns))])
        return y
    }

    /// Weight-only INT8: `y = x (q_w * s_w)^T + b` with a float input; the decode kernel for M <= 16
    /// (``decodeMaxRows``), else the weight dequantized into the input's float type and cuBLASLt.
    package static func blockwiseWeightOnly(input: Tensor, weightCodes: Tensor, weightScales: Tensor,
                                           weightBlockRows: Int, blockColumns: Int, bias: Tensor?) throws -> Tensor {
        if let y = try weightOnlyDecode(input: input, weightCodes: weightCodes, weightScales: weightScales, fp8: false,
                                        blockRows: weightBlockRows, blockColumns: blockColumns, bias: bias) {
            return y
        }
        let type = GPU.gemmType(input.dtype, input.dtype)
        let w = try CUDAQuantizedOps.dequantizeBlockwise(codes: weightCodes, scales: weightScales,
                                                         blockRows: weightBlockRows, blockColumns: blockColumns,
                                                         to: type)
        return try CUDABackend.shared.linear(input, w, bias: bias)
    }

    // MARK: FP8

    /// Why the FP8 tensor-core GEMM cannot take this problem, or `nil` when it can: cuBLASLt's FP8
    /// matmul needs compute capability 8.9 or newer, the TN layout (which we always use), and K
    /// and N multiples of 16 (16-byte aligned rows of e4m3 codes and of the output).
    package static func fp8TensorCoreLimitation(n: Int, k: Int, device: Device) throws -> String? {
        let capability = try CUDABackend.computeCapability(device)
        if capability < 89 { return "FP8 tensor cores need compute capability 8.9 or newer, \(device) has \(capability)" }
        if k % 16 != 0 { return "cuBLASLt FP8 needs K % 16 == 0, K = \(k)" }
        if n % 16 != 0 { return "cuBLASLt FP8 needs N % 16 == 0, N = \(n)" }
        return nil
    }

    /// FP8 x FP8: `y = (sum_k qx[m,k] qw[n,k]) * sx * sw + b[n]` on the FP8 tensor cores through
    /// cuBLASLt (per-tensor scales as A/B scale pointers, float32 accumulation), or, where
    /// ``fp8TensorCoreLimitation(n:k:device:)`` says the tensor cores cannot, both operands
    /// dequantized to float32 and a float32 GEMM, reported to `fallback` first. An empty problem
    /// (M or K = 0) takes the float path too: it has nothing to multiply.
    package static func fp8(inputCodes: Tensor, inputScale: Tensor, weightCodes: Tensor, weightScale: Tensor,
                            bias: Tensor?, outputDType: DType, fallback: KernelFallback) throws -> Tensor {
        let (m, k) = (inputCodes.shape[0], inputCodes.shape[1])
        let n = weightCodes.shape[0]
        let x = try GPU(try inputCodes.contiguous())
        let device = x.device
        let limitation = try fp8TensorCoreLimitation(n: n, k: k, device: inputCodes.device)
        if let limitation, m > 0, k > 0 {
            try fallback.report("\(limitation); ran as a float32 GEMM on the dequantized operands")
        }
        if limitation != nil || m == 0 || k == 0 {
            let xf = try CUDAQuantizedOps.dequantizeFP8(codes: inputCodes, scale: inputScale, to: .float32)
            let wf = try CUDAQuantizedOps.dequantizeFP8(codes: weightCodes, scale: weightScale, to: .float32)
            return try CUDABackend.shared.linear(xf, wf, bias: bias?.converted(to: .float32)).converted(to: outputDType)
        }
        let w = try weightCodes.contiguous()
        // cuBLASLt's FP8 output types: bf16, f16, f32; a bias is fused for bf16 / f16 outputs (in the
        // output's type), and added by a kernel for f32.
        let gemmOutput: DType = [.bfloat16, .float16, .float32].contains(outputDType) ? outputDType : .float32
        let y = try GPU.empty([m, n], gemmOutput, on: device)
        let fusedBias = gemmOutput == .float32 ? nil : try bias.map { try $0.converted(to: gemmOutput).contiguous() }
        let description = GEMMDescription(m: n, n: m, k: k, transposeA: true, transposeB: false, lda: k, ldb: k, ldd: n,
                                          typeA: .float8E4M3, typeB: .float8E4M3, typeD: BLASLt.DataType(gemmOutput)!,
                                          biasType: fusedBias == nil ? nil : BLASLt.DataType(gemmOutput)!, scaled: true)
        try device.blas().run(description, a: try GPU(w), b: x, d: try GPU(y), bias: try fusedBias.map { try GPU($0) },
                              aScale: try GPU(weightScale), bScale: try GPU(inputScale))
        var result = y
        if gemmOutput == .float32, let bias {
            let b = try GPU(try bias.contiguous())
            try GPU.launchElementwise(device, "add_bias", count: m * n,
                                      defines: ["IN_DT": DType.float32.kernelCode, "B_DT": bias.dtype.kernelCode],
                                      [try GPU(y).argument, b.argument, .int(m * n), .int(n)])
            result = y
        }
        return try result.converted(to: outputDType)
    }

    /// Weight-only FP8: `y = x (float(q_w) * s_w)^T + b`; the decode kernel for M <= 16, else the
    /// weight dequantized into the input's float type and cuBLASLt.
    package static func fp8WeightOnly(input: Tensor, weightCodes: Tensor, weightScale: Tensor, bias: Tensor?) throws
        -> Tensor {
        if let y = try weightOnlyDecode(input: input, weightCodes: weightCodes, weightScales: weightScale, fp8: true,
                                        blockRows: 1, blockColumns: 16, bias: bias) {
            return y
        }
        let w = try CUDAQuantizedOps.dequantizeFP8(codes: weightCodes, scale: weightScale,
                                                   to: GPU.gemmType(input.dtype, input.dtype))
        return try CUDABackend.shared.linear(input, w, bias: bias)
    }

    /// The weight-only decode kernel (mode 2 or 3), or `nil` when it does not take the problem.
    private static func weightOnlyDecode(input: Tensor, weightCodes: Tensor, weightScales: Tensor, fp8: Bool,
                                         blockRows: Int, blockColumns: Int, bias: Tensor?) throws -> Tensor? {
        let (m, k) = (input.shape[0], input.shape[1])
        guard m <= decodeMaxRows, [.float32, .float16, .bfloat16].contains(input.dtype) else { return nil }
        let x = try GPU(try input.contiguous())
        let w = try GPU(try weightCodes.contiguous())
        guard decodeServes(m: m, k: k, blockColumns: blockColumns, w8a8: false, addresses: [x.address, w.address])
        else { return nil }
        return try gemvStream(fp8 ? .fp8WeightOnly : .int8WeightOnly, x: x, inputDType: input.dtype, sx: nil, w: w,
                              scales: try GPU(try weightScales.contiguous()), bias: bias, m: m,
                              n: weightCodes.shape[0], k: k, blockRows: blockRows, blockColumns: blockColumns,
                              towardZero: false, outputDType: input.dtype)
    }
}
