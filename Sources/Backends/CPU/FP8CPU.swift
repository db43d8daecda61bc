import CQLKernels
import Foundation
import QLTensor

/// The per-tensor FP8 CPU kernels (C, in CQLKernels) behind ``CPUBackend``'s kernel contract.
/// Quantize and dequantize are bit-identical to the layout's reference (`FP8Reference` in
/// QLLayouts); the GEMMs decode e4m3 to float32 (exact) into cache-sized panels of our FMA GEMM
/// and equal the reference up to summation order.
enum FP8CPU {
    /// Quantizes a CPU float tensor: a parallel amax pass (which also finds NaN and infinity), then
    /// a parallel encode pass; `fixedScale` replaces the dynamic `amax / 448`.
    /// - Throws: ``TensorError/Code/nonFiniteValue`` for NaN or infinity (the reference's message).
    static func quantize(_ tensor: Tensor, fixedScale: Float?) throws -> FP8Parts {
        try QuantizationInput.check(tensor, layout: layoutName)
        // The kernel writes every code.
        let codes = try Tensor(uninitializedShape: tensor.shape, dtype: .float8E4M3FN)
        let path = CPUKernelPath.current.code
        let scale: Float = try tensor.withUnsafeFloats { x in
            guard let base = x.baseAddress, !x.isEmpty else { return fixedScale ?? 1 }
            let (amax, nonFinite) = CPUKernels.maxMagnitude(x)
            if nonFinite {
                try QuantizationInput.checkFinite(x, shape: tensor.shape, layout: layoutName)
            }
            let scale = fixedScale ?? (amax > 0 ? amax / 448 : 1)
            let q = codes.storage.hostPointer.assumingMemoryBound(to: UInt8.self)
            CPUKernels.parallelRanges(count: x.count, minimumPerThread: 1 << 16) { range in
                ck_fp8_quantize(base + range.lowerBound, Int64(range.count), scale, q + range.lowerBound, path)
            }
            return scale
        }
        return FP8Parts(codes: codes, scale: try Tensor([scale], shape: []))
    }

    /// The name errors give the layout.
    static let layoutName = "TensorCoreFP8Layout"

    /// `float(q) * scale` written straight in `dtype` (float32, float16 or bfloat16; `nil` otherwise).
    static func dequantize(_ source: FP8Parts, to dtype: DType) throws -> Tensor? {
        guard let outputCode = CPUKernels.outputCode(dtype) else { return nil }
        // The kernel writes every element, so the buffer is not zero-filled first.
        let result = try Tensor(uninitializedShape: source.codes.shape, dtype: dtype)
        let scale = try source.scale.floats()[0]
        let path = CPUKernelPath.current.code
        try source.codes.withUnsafeContiguousBytes { codes in
            guard let codes = codes.baseAddress, source.codes.count > 0 else { return }
            let out = result.storage.hostPointer
            CPUKernels.parallelRanges(count: source.codes.count, granule: 64, minimumPerThread: 1 << 16) { range in
                _ = ck_fp8_dequantize(codes.assumingMemoryBound(to: UInt8.self) + range.lowerBound,
                                      Int64(range.count), scale, out + range.lowerBound * dtype.byteSize, outputCode,
                                      path)
            }
        }
        return result
    }

    /// `y = (x Wq^T) * post + b` where each weight row is `float(qw) * weightScale` decoded on the fly:
    /// weight-only passes the float input, the weight scale and post 1; W8A8 passes the input codes
    /// (decoded exactly: into the GEMM's packing for M > 16, into a small buffer for the GEMV), weight
    /// scale 1 and post `sx * sw`.
    /// - Returns: `(M, N)` in `outputDType`.
    static func linear(_ x: CPUKernels.DecodedGEMMInput, m: Int, k: Int, weightCodes: Tensor, weightScale: Float,
                       post: Float, bias: Tensor?, outputDType: DType) throws -> Tensor {
        let n = weightCodes.shape[0]
        let bias = try bias?.floats()
        let path = CPUKernelPath.current
        return try LinearOutput.make(shape: [m, n], dtype: outputDType, m: m, n: n, k: k, bias: bias) {
            out, outputCode in
            try weightCodes.withUnsafeContiguousBytes { wq in
                try CPUKernels.withOptionalFloats(bias) { biasPointer in
                    let w = wq.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    if m <= BlockWiseINT8CPU.decodeRows {
                        withFloats(of: x, count: m * k, path: path) { values in
                            CPUKernels.parallelRanges(count: n, minimumPerThread: 64) { range in
                                ck_fp8_gemv(values, Int64(m), Int64(k), w, weightScale, post, Int64(n), biasPointer,
                                            out, outputCode, Int64(range.lowerBound), Int64(range.upperBound),
                                            path.code)
                            }
                        }
                        return
                    }
                    var weight = ck_decoded_weight(kind: Int32(CK_WEIGHT_E4M3), codes: w, scales: nil,
                                                   scale: weightScale, bn: 1, bk: 1)
                    try CPUKernels.decodedGEMM(x: x, m: m, n: n, k: k, weight: &weight, alpha: post,
                                               bias: biasPointer, output: out, outputCode: outputCode, path: path)
                }
            }
        }
    }

    /// Calls `body` with `count` float32 values of `input`: the floats themselves, or the exact values
    /// of its e4m3 codes decoded into a temporary buffer (decode-sized inputs: at most 16 rows).
    private static func withFloats<R>(of input: CPUKernels.DecodedGEMMInput, count: Int, path: CPUKernelPath,
                                      _ body: (UnsafePointer<Float>?) throws -> R) rethrows -> R {
        switch input {
        case .floats(let values):
            return try body(values)
        case .e4m3(let codes):
            let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                if let destination = buffer.baseAddress, let codes {
                    ck_fp8_decode(codes, Int64(count), 1, destination, path.code)
                }
                initialized = count
            }
            return try values.withUnsafeBufferPointer { try body($0.baseAddress) }
        }
    }
}
