import CKernels
import Foundation
import QuantizedTensors
import Tensors

/// The per-tensor FP8 CPU kernels (C, in CKernels) behind the CPU handlers and the registered
/// quantizer. Quantize and dequantize are bit-identical to ``FP8Reference``; the GEMMs decode
/// e4m3 to float32 (exact) into cache-sized panels of our FMA GEMM and equal the reference up to
/// summation order.
enum FP8CPU {
    /// Quantizes a CPU float tensor: a parallel amax pass (which also finds NaN and infinity), then
    /// a parallel encode pass. `nil` for tensors on other devices.
    /// - Throws: ``TensorError/Code/nonFiniteValue`` for NaN or infinity (the reference's message).
    static func quantize(_ tensor: Tensor, layout: TensorCoreFP8Layout) throws -> QuantizedTensor? {
        guard tensor.device == .cpu else { return nil }
        try QuantizationInput.check(tensor, layout: TensorCoreFP8Layout.name)
        // The kernel writes every code.
        let codes = try Tensor(uninitializedShape: tensor.shape, dtype: .float8E4M3FN)
        let path = CPUKernelPath.current.code
        let scale: Float = try tensor.withUnsafeFloats { x in
            guard let base = x.baseAddress, !x.isEmpty else { return layout.fixedScale ?? 1 }
            let (amax, nonFinite) = CPUKernels.maxMagnitude(x)
            if nonFinite {
                try QuantizationInput.checkFinite(x, shape: tensor.shape, layout: TensorCoreFP8Layout.name)
            }
            let scale = layout.fixedScale ?? (amax > 0 ? amax / 448 : 1)
            let q = codes.storage.hostPointer.assumingMemoryBound(to: UInt8.self)
            CPUKernels.parallelRanges(count: x.count, minimumPerThread: 1 << 16) { range in
                ck_fp8_quantize(base + range.lowerBound, Int64(range.count), scale, q + range.lowerBound, path)
            }
            return scale
        }
        return QuantizedTensor(unchecked: layout, data: codes, scale: try Tensor([scale], shape: []),
                               shape: tensor.shape, originalDType: tensor.dtype)
    }

    /// `float(q) * scale` written straight in `dtype` (float32, float16 or bfloat16; `nil` otherwise).
    static func dequantize(_ q: QuantizedTensor, to dtype: DType) throws -> Tensor? {
        guard q.device == .cpu, let outputCode = CPUKernels.outputCode(dtype) else { return nil }
        // The kernel writes every element, so the buffer is not zero-filled first.
        let result = try Tensor(uninitializedShape: q.shape, dtype: dtype)
        let scale = try q.scale.floats()[0]
        let path = CPUKernelPath.current.code
        try q.data.withUnsafeContiguousBytes { codes in
            guard let codes = codes.baseAddress, q.data.count > 0 else { return }
            let out = result.storage.hostPointer
            CPUKernels.parallelRanges(count: q.data.count, granule: 64, minimumPerThread: 1 << 16) { range in
                _ = ck_fp8_dequantize(codes.assumingMemoryBound(to: UInt8.self) + range.lowerBound,
                                      Int64(range.count), scale, out + range.lowerBound * dtype.byteSize, outputCode,
                                      path)
            }
        }
        return result
    }

    /// `y = (x Wq^T) * post + b` where each weight row is `float(qw) * weightScale` decoded on the fly:
    /// weight-only passes the float input, the weight scale and post 1; W8A8 passes the decoded
    /// input codes, weight scale 1 and post `sx * sw`.
    static func linear(_ x: UnsafeBufferPointer<Float>, weightScale: Float, post: Float,
                       _ operands: LinearOperands<TensorCoreFP8Layout>) throws -> Tensor {
        let (m, n, k) = (operands.m, operands.n, operands.k)
        let bias = try operands.biasValues()
        let path = CPUKernelPath.current
        return try LinearOutput.make(shape: operands.outputShape, dtype: operands.input.floatDType, m: m, n: n, k: k,
                                     bias: bias) { out, outputCode in
            try operands.weight.data.withUnsafeContiguousBytes { wq in
                try CPUKernels.withOptionalFloats(bias) { biasPointer in
                    let w = wq.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    if m <= BlockWiseINT8CPU.decodeRows {
                        CPUKernels.parallelRanges(count: n, minimumPerThread: 64) { range in
                            ck_fp8_gemv(x.baseAddress, Int64(m), Int64(k), w, weightScale, post, Int64(n), biasPointer,
                                        out, outputCode, Int64(range.lowerBound), Int64(range.upperBound), path.code)
                        }
                        return
                    }
                    var weight = ck_decoded_weight(kind: Int32(CK_WEIGHT_E4M3), codes: w, scales: nil,
                                                   scale: weightScale, bn: 1, bk: 1)
                    try CPUKernels.decodedGEMM(x: x.baseAddress!, m: m, n: n, k: k, weight: &weight, alpha: post,
                                               bias: biasPointer, output: out, outputCode: outputCode, path: path)
                }
            }
        }
    }

    /// The exact float32 values of FP8 codes (no scale), decoded in parallel.
    static func decoded(_ codes: Tensor) throws -> [Float] {
        let path = CPUKernelPath.current.code
        return try codes.withUnsafeContiguousBytes { bytes in
            [Float](unsafeUninitializedCapacity: codes.count) { buffer, initialized in
                if let source = bytes.baseAddress, let destination = buffer.baseAddress {
                    CPUKernels.parallelRanges(count: codes.count, minimumPerThread: 1 << 16) { range in
                        ck_fp8_decode(source.assumingMemoryBound(to: UInt8.self) + range.lowerBound,
                                      Int64(range.count), 1, destination + range.lowerBound, path)
                    }
                }
                initialized = codes.count
            }
        }
    }
}
