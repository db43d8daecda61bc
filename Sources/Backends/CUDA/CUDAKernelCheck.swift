import QLTensor

/// Compiles the kernel sources without a GPU, so that a machine with only NVRTC (no driver) can
/// check them: the variants the backend launches most, for one architecture.
package enum CUDAKernelCheck {
    /// Whether NVRTC can be loaded here (it needs no driver).
    package static var isNVRTCAvailable: Bool { (try? NVRTC()) != nil }

    /// Compiles a representative set of every kernel source's `-D` variants for `architecture`.
    /// - Returns: how many variants compiled.
    /// - Throws: ``TensorError/Code/backendFailure`` with NVRTC's log for the first that does not.
    package static func compileAll(architecture: String = "sm_90") throws -> Int {
        let nvrtc = try NVRTC()
        var variants: [(KernelSource, [String: Int])] = []
        for dtype in DType.allCases {
            variants.append((DenseKernels.source, ["ES": dtype.byteSize]))
            variants.append((DenseKernels.source, ["IN_DT": dtype.kernelCode, "OUT_DT": DType.bfloat16.kernelCode]))
            variants.append((DenseKernels.source, ["IN_DT": dtype.kernelCode, "B_DT": dtype.kernelCode]))
            variants.append((DenseKernels.source, ["IN_DT": dtype.kernelCode, "APPROX": 1]))
            variants.append((DenseKernels.source, ["OUT_DT": dtype.kernelCode]))
        }
        for src in 0...1 {
            for opk in 0...3 {
                for (ept, lanes, chunks) in [(8, 16, 2), (8, 16, 4), (4, 64, 2), (1, 4, 2), (16, 8, 2)] {
                    variants.append((QuantizationKernels.source, [
                        "ROWS": 1, "SRC": src, "IN_DT": 2, "OPK": opk, "DELTA_DT": 0, "ROUND_DT": 2, "TOWARD_ZERO": 0,
                        "EPT": ept, "G": lanes, "U": chunks, "BC": ept * lanes]))
                }
                variants.append((QuantizationKernels.source, [
                    "BLOCKS": 1, "SRC": src, "IN_DT": 1, "OPK": opk, "DELTA_DT": 2, "ROUND_DT": 0, "TOWARD_ZERO": 1,
                    "BR": 128, "BC": 100]))
            }
        }
        for out in [DType.float32, .bfloat16, .float16, .float8E4M3FN] {
            let ept = 16 / out.byteSize
            variants.append((QuantizationKernels.source, ["DEQUANT": 1, "SRC": 1, "OUT_DT": out.kernelCode, "EPT": ept,
                                                          "U": 4, "BR": 128, "BC": 96, "TOWARD_ZERO": 0]))
            variants.append((QuantizationKernels.source, ["DEQUANT": 1, "SRC": 1, "OUT_DT": out.kernelCode, "EPT": 2,
                                                          "U": 4, "BR": 1, "BC": 5, "TOWARD_ZERO": 0]))
            variants.append((QuantizationKernels.source, ["FP8": 1, "SRC": 2, "OUT_DT": out.kernelCode, "EPT": ept,
                                                          "U": 4, "OPK": 1, "ROUND_DT": out.kernelCode,
                                                          "TOWARD_ZERO": 0]))
            variants.append((QuantizationKernels.source, ["FP8": 1, "SRC": 0, "IN_DT": out.kernelCode, "EPT": 4,
                                                          "TOWARD_ZERO": 0]))
            variants.append((LinearKernels.source, ["W8A8": 1, "OUT_DT": out.kernelCode, "BIAS_DT": 2]))
        }
        for (mode, rows) in [(0, 2), (1, 2), (1, 16), (2, 1), (2, 16), (3, 2)] {
            for staged in 0...1 where mode != 1 || staged == 1 {
                for k in [1024, 3072, 5120] {
                    let decode = CUDALinearOps.DecodeMode(rawValue: mode)!
                    variants.append((DecodeKernels.source, [
                        "MODE": mode, "MT": rows, "X_DT": 2, "OUT_DT": 2, "BR": 128, "BC": mode == 3 ? 16 : 128,
                        "BIAS_DT": 0, "TOWARD_ZERO": 1, "U": CUDALinearOps.decodeChunksPerLane(decode, k: k),
                        "XS": staged]))
                }
            }
        }
        variants.append((DecodeKernels.source, ["MODE": 1, "MT": 2, "X_DT": 0, "OUT_DT": 0, "BR": 512, "BC": 512,
                                                "BIAS_DT": 0, "TOWARD_ZERO": 0, "U": 4, "XS": 1]))
        // Weight-only on the tensor cores (`gemv_wo_mma`): both modes, one and two n8 tiles, every input dtype.
        for (mode, rows, input) in [(2, 2, DType.bfloat16), (3, 2, .bfloat16), (2, 16, .float32), (3, 7, .float16)] {
            variants.append((DecodeKernels.source, [
                "MODE": mode, "MT": rows, "X_DT": input.kernelCode, "OUT_DT": input.kernelCode,
                "BR": mode == 3 ? 1 : 128, "BC": mode == 3 ? 16 : 128, "BIAS_DT": 0,
                "U": CUDALinearOps.weightOnlyMMASegments(mode: mode, m: rows), "XS": 1, "TC": 1]))
        }
        // W8A8 on the tensor cores (`gemv_w8a8_mma`): both modes, one and two n8 tiles, every input dtype and
        // block width it takes.
        for (mode, rows, input, block) in [(1, 3, DType.bfloat16, 128), (0, 4, .bfloat16, 64), (1, 16, .float32, 512),
                                           (1, 9, .float16, 64), (0, 16, .bfloat16, 256)] {
            variants.append((DecodeKernels.source, [
                "MODE": mode, "MT": rows, "X_DT": input.kernelCode, "OUT_DT": input.kernelCode, "BR": block,
                "BC": block, "BIAS_DT": 0, "TOWARD_ZERO": rows % 2, "U": CUDALinearOps.w8a8MMASegments(m: rows),
                "XS": 1, "TC": 1]))
        }
        // FP8 W8A8 (`gemv_wo_mma` mode 4, the input quantized in the kernel): one and two n8 tiles, every input dtype.
        for (rows, input) in [(2, DType.bfloat16), (16, .float32), (7, .float16)] {
            variants.append((DecodeKernels.source, [
                "MODE": 4, "MT": rows, "X_DT": input.kernelCode, "OUT_DT": input.kernelCode, "BR": 1, "BC": 16,
                "BIAS_DT": 0, "U": CUDALinearOps.weightOnlyMMASegments(mode: 4, m: rows), "XS": 1, "TC": 1]))
        }
        // Programmatic dependent launch (decode.cu's `PDL`, sm_90): gemv_stream W8A8 and weight-only, gemv_w8a8_mma,
        // gemv_wo_mma weight-only and FP8 W8A8.
        for (mode, rows, tensorCores) in [(1, 2, false), (2, 2, false), (1, 5, true), (2, 2, true), (4, 2, true)] {
            var defines = ["MODE": mode, "MT": rows, "X_DT": 2, "OUT_DT": 2, "BR": mode == 4 ? 1 : 128,
                           "BC": mode == 4 ? 16 : 128, "BIAS_DT": 0, "TOWARD_ZERO": 0, "U": 3, "XS": 1, "PDL": 1,
                           "PF": 8]
            if tensorCores { defines["TC"] = 1 }
            variants.append((DecodeKernels.source, defines))
        }
        variants += transformerVariants()
        variants.append((BlockwiseINT8GEMM.portable, [:]))
        variants.append((BlockwiseINT8GEMM.hopper, [:]))
        variants.append((BlockwiseINT8GEMM.hopperC3, [:]))
        // Through the disk cache with the keys a device of `architecture` computes, so that running
        // this where only NVRTC exists fills `QLINEAR_KERNEL_CACHE` for a GPU machine with the same NVRTC.
        for (source, defines) in variants {
            let options = defines.sorted { $0.key < $1.key }.map { "-D\($0.key)=\($0.value)" }
            _ = try KernelDiskCache.cubin(name: source.name, program: try source.program(),
                                          architecture: source.needsArchSpecific ? "sm_90a" : architecture,
                                          options: options + CUDADevice.compileOptions(source), nvrtc: nvrtc)
        }
        return variants.count
    }

    /// The transformer kernels: every entry in each dtype, with and without optional operands, in
    /// scalar and vector widths and both row-group sizes; the gather with wide words.
    static func transformerVariants() -> [(KernelSource, [String: Int])] {
        var variants: [(KernelSource, [String: Int])] = []
        for dtype in OperandChecks.floatTypes {
            let code = dtype.kernelCode
            for (vector, rowThreads) in [(1, 32), (16 / dtype.byteSize, 128), (2, 1024)] {
                let row = ["IN_DT": code, "VEC": vector, "RT": rowThreads]
                for (weight, bias) in [(code, DType.float32.kernelCode), (-1, -1)] {
                    variants.append((NormalizationKernels.source,
                                     row.merging(["LAYER_NORM": 1, "W_DT": weight, "B_DT": bias]) { $1 }))
                }
                for mask in [DType.float32.kernelCode, code, -1] {
                    variants.append((NormalizationKernels.source, row.merging(["SOFTMAX": 1, "M_DT": mask]) { $1 }))
                }
                variants.append((NormalizationKernels.source, row.merging(["L2_NORMALIZE": 1]) { $1 }))
                for mask in [DType.int32.kernelCode, code] {
                    variants.append((TokenKernels.source, ["MEAN_POOL": 1, "IN_DT": code, "M_DT": mask,
                                                           "VEC": vector]))
                }
                variants.append((ElementwiseKernels.source, ["SCALE": 1, "IN_DT": code, "VEC": vector]))
                variants.append((ElementwiseKernels.source, ["MULTIPLY": 1, "IN_DT": code,
                                                             "B_DT": DType.float32.kernelCode, "VEC": vector]))
            }
        }
        for word in [1, 2, 4, 8, 16] {
            variants.append((TokenKernels.source, ["EMBEDDING": 1, "WB": word]))
            variants.append((DenseKernels.source, ["ES": word]))
        }
        return variants
    }
}
