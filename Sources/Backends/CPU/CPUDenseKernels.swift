import CQLKernels
import Foundation
import QLTensor

/// The CPU side of the transformer ops: the C kernels of `dense_ops.c` (AVX2 or portable, by
/// ``CPUKernelPath/current``) run over row or element ranges split across the cores. Operands are
/// checked by ``DenseOps`` before they get here; raw pointers stay in this file.
enum CPUDenseKernels {
    /// Calls `body` with the contiguous elements of a CPU float32/float16/bfloat16 tensor and their
    /// kernel type code (`CK_OUT_*`).
    static func withElements<R>(_ tensor: Tensor, _ body: (UnsafeRawPointer, Int32) throws -> R) throws -> R {
        guard let code = CPUKernels.outputCode(tensor.dtype) else {
            throw TensorError(.unsupportedDType, "dense kernels take float32, float16 or bfloat16, not \(tensor.dtype)")
        }
        return try tensor.withUnsafeContiguousBytes { bytes in
            // A tensor with no elements has no base address; the kernels then read nothing.
            try body(bytes.baseAddress ?? UnsafeRawPointer(tensor.storage.hostPointer), code)
        }
    }

    /// Calls `body` with the bytes of `tensor`, writable and contiguous (copied first when shared or strided),
    /// and their kernel type code, for a kernel that writes its result over its input.
    static func withMutableElements(_ tensor: inout Tensor, _ body: (UnsafeMutableRawPointer, Int32) throws -> Void)
        throws {
        guard let code = CPUKernels.outputCode(tensor.dtype) else {
            throw TensorError(.unsupportedDType, "dense kernels take float32, float16 or bfloat16, not \(tensor.dtype)")
        }
        try tensor.withUnsafeMutableContiguousBytes { bytes in
            // A tensor with no elements has nothing to write.
            guard let base = bytes.baseAddress else { return }
            try body(base, code)
        }
    }

    /// A fresh CPU tensor that `body` fills completely (given its bytes and type code).
    static func output(_ shape: [Int], _ dtype: DType, _ body: (UnsafeMutableRawPointer, Int32) throws -> Void)
        throws -> Tensor {
        let result = try Tensor(uninitializedShape: shape, dtype: dtype)
        guard let code = CPUKernels.outputCode(dtype) else {
            throw TensorError(.unsupportedDType, "dense kernels write float32, float16 or bfloat16, not \(dtype)")
        }
        try body(result.storage.hostPointer, code)
        return result
    }

    /// The values of a small operand (weights, masks, a broadcast factor) as float32.
    static func floats(_ tensor: Tensor?) throws -> [Float]? { try tensor?.floats() }

    /// Raised by workers whose row buffers could not be allocated.
    private static func check(_ failed: KernelFlag, _ op: String) throws {
        if failed.isSet {
            throw TensorError(.backendFailure,
                              "\(op): the CPU kernel could not allocate its row buffers (out of memory)")
        }
    }

    static func layerNorm(_ x: Tensor, weight: [Float]?, bias: [Float]?, epsilon: Float) throws -> Tensor {
        let columns = x.shape.last ?? 1
        let rows = x.count / max(columns, 1)
        let path = CPUKernelPath.current.code
        let failed = KernelFlag()
        let result = try withElements(x) { input, code in
            try output(x.shape, x.dtype) { out, _ in
                CPUKernels.withOptionalFloats(weight) { w in
                    CPUKernels.withOptionalFloats(bias) { b in
                        CPUKernels.parallelRanges(count: rows, minimumPerThread: max(1, 16384 / max(columns, 1))) {
                            range in
                            if ck_layer_norm_rows(input, code, Int64(columns), w, b, epsilon, Int64(range.lowerBound),
                                                  Int64(range.upperBound), out, path) != 0 { failed.set() }
                        }
                    }
                }
            }
        }
        try check(failed, "layerNorm")
        return result
    }

    static func softmax(_ x: Tensor, mask: [Float]?, batches: Int) throws -> Tensor {
        try withElements(x) { input, code in
            try output(x.shape, x.dtype) { out, _ in
                try runSoftmax(input, out, shape: x.shape, code: code, mask: mask, batches: batches)
            }
        }
    }

    /// ``softmax(_:mask:batches:)`` written over `x` (copied first when shared or strided): each row is
    /// read before it is written, so the bits are the same.
    static func softmax(inPlace x: inout Tensor, mask: [Float]?, batches: Int) throws {
        let shape = x.shape
        try withMutableElements(&x) { base, code in
            try runSoftmax(UnsafeRawPointer(base), base, shape: shape, code: code, mask: mask, batches: batches)
        }
    }

    /// `ck_softmax_rows` over every row of `shape` on every core; `out` may be `input`.
    private static func runSoftmax(_ input: UnsafeRawPointer, _ out: UnsafeMutableRawPointer, shape: [Int],
                                   code: Int32, mask: [Float]?, batches: Int) throws {
        let columns = shape.last ?? 1
        let rows = shape.reduce(1, *) / max(columns, 1)
        let rowsPerBatch = max(1, rows / max(batches, 1))
        let path = CPUKernelPath.current.code
        let failed = KernelFlag()
        CPUKernels.withOptionalFloats(mask) { m in
            CPUKernels.parallelRanges(count: rows, minimumPerThread: max(1, 16384 / max(columns, 1))) { range in
                if ck_softmax_rows(input, code, Int64(columns), m, Int64(rowsPerBatch), Int64(range.lowerBound),
                                   Int64(range.upperBound), out, path) != 0 { failed.set() }
            }
        }
        try check(failed, "softmax")
    }

    /// `op(a, b)` elementwise with `b` (float32, `b.count` values) repeated over `a`'s leading
    /// dimensions, or `a * factor` / GELU when the op takes no `b`.
    static func elementwise(_ op: Int32, _ a: Tensor, _ b: Tensor?, factor: Float = 1) throws -> Tensor {
        try withElements(a) { input, code in
            try output(a.shape, a.dtype) { out, _ in
                try runElementwise(op, input, out, count: a.count, code: code, b, factor: factor)
            }
        }
    }

    /// ``elementwise(_:_:_:factor:)`` written over `x` (a float32/16/bfloat16 tensor; copied first when
    /// shared or strided): each chunk is read before it is written, so the bits are the same.
    static func elementwise(inPlace x: inout Tensor, _ op: Int32, _ b: Tensor?, factor: Float = 1) throws {
        let count = x.count
        try withMutableElements(&x) { base, code in
            try runElementwise(op, UnsafeRawPointer(base), base, count: count, code: code, b, factor: factor)
        }
    }

    /// `ck_elementwise` over `count` elements on every core; `out` may be `input`.
    private static func runElementwise(_ op: Int32, _ input: UnsafeRawPointer, _ out: UnsafeMutableRawPointer,
                                       count: Int, code: Int32, _ b: Tensor?, factor: Float) throws {
        let path = CPUKernelPath.current.code
        let run: (UnsafePointer<Float>?, Int) -> Void = { bValues, bCount in
            CPUKernels.parallelRanges(count: count, granule: 64, minimumPerThread: 32768) { range in
                ck_elementwise(op, input, bValues, Int64(bCount), factor, code, Int64(range.lowerBound),
                               Int64(range.upperBound), out, path)
            }
        }
        if let b {
            try b.withUnsafeFloats { run($0.baseAddress, $0.count) }
        } else {
            run(nil, 1)
        }
    }

    /// Rows of `table` gathered by `indices` (already checked to lie in `0..<V`).
    static func embedding(_ table: Tensor, indices: [Int32], shape: [Int]) throws -> Tensor {
        let width = table.shape[1]
        let rowBytes = width * table.dtype.byteSize
        let result = try Tensor(uninitializedShape: shape + [width], dtype: table.dtype)
        try table.withUnsafeContiguousBytes { source in
            guard let base = source.baseAddress, rowBytes > 0 else { return }
            let out = result.storage.hostPointer
            indices.withUnsafeBufferPointer { ids in
                CPUKernels.parallelRanges(count: ids.count, minimumPerThread: max(1, 65536 / rowBytes)) { range in
                    for i in range {
                        (out + i * rowBytes).copyMemory(from: base + Int(ids[i]) * rowBytes, byteCount: rowBytes)
                    }
                }
            }
        }
        return result
    }

    /// `a` ([batches, M, K]) times `b` ([batches, K, N], or [batches, N, K] when `transposeB`), each
    /// batch one OpenBLAS sgemm. Float32 operands whose matrices have unit column stride (the heads of
    /// a permuted `(B, S, heads, d)` view, for instance) are read in place, with their row stride as the
    /// leading dimension; others are copied to contiguous float32 first.
    static func batchedMatmul(_ a: Tensor, _ b: Tensor, transposeB: Bool, batches: Int, m: Int, n: Int, k: Int,
                              shape: [Int]) throws -> Tensor {
        let left = try BatchedOperand(a)
        let right = try BatchedOperand(b)
        let product = try Tensor(uninitializedShape: shape, dtype: .float32)
        let out = product.storage.hostPointer.assumingMemoryBound(to: Float.self)
        if m > 0 && n > 0 {
            let (x, y) = (left.base, right.base)
            let gemm: (Int) -> Void = { batch in
                let c = out + batch * m * n
                let (a, b) = (x + left.offsets[batch], y + right.offsets[batch])
                if k == 0 {
                    c.initialize(repeating: 0, count: m * n)
                } else if transposeB {
                    OpenBLAS.shared.gemmNT(m: m, n: n, k: k, a: a, lda: left.rowStride, b: b, ldb: right.rowStride,
                                           c: c, ldc: n)
                } else {
                    OpenBLAS.shared.gemmNN(m: m, n: n, k: k, a: a, lda: left.rowStride, b: b, ldb: right.rowStride,
                                           c: c)
                }
            }
            if splitsBatches(batches, multiplyAdds: m * n * k) {
                CPUKernels.parallelRanges(count: batches) { range in range.forEach(gemm) }
            } else {
                (0..<batches).forEach(gemm)
            }
            withExtendedLifetime((left, right)) {}
        }
        return try converted(product, to: a.dtype)
    }

    /// Whether `batches` products of `multiplyAdds` each go to the cores a product at a time (each one
    /// single-threaded sgemm): with at least a product per core (attention: batch x heads), or small
    /// products. Otherwise each product's columns are split over the cores (`gemmNT` / `gemmNN`), which
    /// is worth it only for large ones.
    static func splitsBatches(_ batches: Int, multiplyAdds: Int) -> Bool {
        batches > 1 && (batches >= CPUKernels.threadCount || multiplyAdds < 262_144)
    }

    /// `softmax(q k^T + mask) v` for float32 operands `(B, ..., S_q, d)`, `(B, ..., S_k, d)`,
    /// `(B, ..., S_k, d_v)` (strided rows allowed) with no empty size: per batch index, `gemmNT` into a
    /// per-range `S_q x S_k` buffer, `ck_softmax_rows` over it in place, `gemmNN` into the output. These
    /// are the calls ``batchedMatmul(_:_:transposeB:batches:m:n:k:shape:)``, ``softmax(_:mask:batches:)``
    /// and `batchedMatmul` make (`overBatches`: as ``splitsBatches(_:multiplyAdds:)`` decides for both
    /// products), so the bits are theirs, but the scores never leave the cache as a tensor.
    static func attention(_ q: Tensor, _ k: Tensor, _ v: Tensor, mask: [Float]?, overBatches: Bool) throws -> Tensor {
        let rank = q.rank
        let (sq, d, sk, dv) = (q.shape[rank - 2], q.shape[rank - 1], k.shape[rank - 2], v.shape[rank - 1])
        let batchShape = Array(q.shape.dropLast(2))
        let batches = batchShape.reduce(1, *)
        let perMaskRow = max(1, batches / max(q.shape[0], 1))
        let (query, key, value) = (try BatchedOperand(q), try BatchedOperand(k), try BatchedOperand(v))
        let result = try Tensor(uninitializedShape: batchShape + [sq, dv], dtype: .float32)
        let out = result.storage.hostPointer.assumingMemoryBound(to: Float.self)
        let path = CPUKernelPath.current.code
        let failed = KernelFlag()
        CPUKernels.withOptionalFloats(mask) { maskValues in
            let products: (Range<Int>) -> Void = { range in
                let scores = UnsafeMutablePointer<Float>.allocate(capacity: sq * sk)
                defer { scores.deallocate() }
                for i in range {
                    OpenBLAS.shared.gemmNT(m: sq, n: sk, k: d, a: query.base + query.offsets[i], lda: query.rowStride,
                                           b: key.base + key.offsets[i], ldb: key.rowStride, c: scores, ldc: sk)
                    let maskRow = maskValues.map { $0 + (i / perMaskRow) * sk }
                    if ck_softmax_rows(scores, Int32(CK_OUT_F32), Int64(sk), maskRow, Int64(sq), 0, Int64(sq), scores,
                                       path) != 0 { failed.set() }
                    OpenBLAS.shared.gemmNN(m: sq, n: dv, k: sk, a: scores, lda: sk, b: value.base + value.offsets[i],
                                           ldb: value.rowStride, c: out + i * sq * dv, ldc: dv)
                }
            }
            if overBatches {
                CPUKernels.parallelRanges(count: batches, products)
            } else {
                products(0..<batches)
            }
        }
        withExtendedLifetime((query, key, value)) {}
        try check(failed, "attention")
        return result
    }

    /// `x W^T + b` in float32 by OpenBLAS, the bias added by the vectorised epilogue, written as the input's
    /// dtype. `input` is `(m, k)` in effect (leading dimensions flattened); `k` may be 0 (then y = b).
    static func linear(_ input: Tensor, _ weight: Tensor, bias: Tensor?, m: Int, n: Int, k: Int, shape: [Int])
        throws -> Tensor {
        let product = try Tensor(uninitializedShape: [m, n], dtype: .float32)
        let out = product.storage.hostPointer.assumingMemoryBound(to: Float.self)
        if k == 0 { out.initialize(repeating: 0, count: m * n) }
        if k > 0 && m > 0 && n > 0 {
            try float32Contiguous(input).withUnsafeFloats { x in
                try float32Contiguous(weight).withUnsafeFloats { w in
                    OpenBLAS.shared.gemmNT(m: m, n: n, k: k, a: x.baseAddress!, lda: k, b: w.baseAddress!, ldb: k,
                                           c: out, ldc: n)
                }
            }
        }
        if let bias {
            let path = CPUKernelPath.current.code
            try bias.withUnsafeFloats { b in
                CPUKernels.parallelRanges(count: m, minimumPerThread: max(1, 16384 / max(n, 1))) { range in
                    ck_gemm_epilogue(out, Int64(n), 1, b.baseAddress, out, Int32(CK_OUT_F32), Int64(range.lowerBound),
                                     Int64(range.upperBound), path)
                }
            }
        }
        let result = CPUKernels.outputCode(input.dtype) == nil ? try product.converted(to: input.dtype)
            : try converted(product, to: input.dtype)
        return try result.reshaped(shape)
    }

    static func maskedMeanPool(_ x: Tensor, mask: [Float], batches: Int, sequence: Int, width: Int) throws
        -> Tensor {
        let pooled = try Tensor(uninitializedShape: [batches, width], dtype: .float32)
        let path = CPUKernelPath.current.code
        let failed = KernelFlag()
        try withElements(x) { input, code in
            let out = pooled.storage.hostPointer.assumingMemoryBound(to: Float.self)
            mask.withUnsafeBufferPointer { m in
                CPUKernels.parallelRanges(count: batches) { range in
                    if ck_masked_mean_pool(input, code, m.baseAddress, Int64(sequence), Int64(width),
                                           Int64(range.lowerBound), Int64(range.upperBound), out, path) != 0 {
                        failed.set()
                    }
                }
            }
        }
        try check(failed, "maskedMeanPool")
        return try converted(pooled, to: x.dtype)
    }

    static func l2Normalize(_ x: Tensor, epsilon: Float) throws -> Tensor {
        let columns = x.shape.last ?? 1
        let rows = x.count / max(columns, 1)
        let path = CPUKernelPath.current.code
        let failed = KernelFlag()
        let result = try withElements(x) { input, code in
            try output(x.shape, x.dtype) { out, _ in
                CPUKernels.parallelRanges(count: rows, minimumPerThread: max(1, 16384 / max(columns, 1))) { range in
                    if ck_l2_normalize_rows(input, code, Int64(columns), epsilon, Int64(range.lowerBound),
                                            Int64(range.upperBound), out, path) != 0 { failed.set() }
                }
            }
        }
        try check(failed, "l2Normalize")
        return result
    }

    /// A contiguous float32 CPU tensor written as `dtype` (float32, float16 or bfloat16) by the vector kernel.
    static func converted(_ values: Tensor, to dtype: DType) throws -> Tensor {
        if dtype == .float32 { return values }
        let path = CPUKernelPath.current.code
        return try output(values.shape, dtype) { out, code in
            let source = values.storage.hostPointer.assumingMemoryBound(to: Float.self)
            let size = dtype.byteSize
            CPUKernels.parallelRanges(count: values.count, granule: 64, minimumPerThread: 65536) { range in
                ck_dense_from_f32(source + range.lowerBound, out + range.lowerBound * size, code, Int64(range.count),
                                  path)
            }
        }
    }

    /// The tensor as contiguous float32 (itself when it already is), converted with the vector kernel
    /// (float8 through the element conversion).
    static func float32Contiguous(_ tensor: Tensor) throws -> Tensor {
        if tensor.dtype == .float32 { return try tensor.contiguous() }
        if CPUKernels.outputCode(tensor.dtype) == nil { return try tensor.converted(to: .float32) }
        let result = try Tensor(uninitializedShape: tensor.shape, dtype: .float32)
        let path = CPUKernelPath.current.code
        try withElements(tensor) { input, code in
            let out = result.storage.hostPointer.assumingMemoryBound(to: Float.self)
            let size = tensor.dtype.byteSize
            CPUKernels.parallelRanges(count: tensor.count, granule: 64, minimumPerThread: 65536) { range in
                ck_dense_to_f32(input + range.lowerBound * size, code, out + range.lowerBound, Int64(range.count), path)
            }
        }
        return result
    }
}

/// One operand of ``CPUDenseKernels/batchedMatmul(_:_:transposeB:batches:m:n:k:shape:)`` as float32
/// matrices: the element offset of each batch's matrix from ``base`` and their common row stride.
///
/// A float32 tensor whose last dimension has stride 1 is used in place: each batch index's offset is
/// `offset + sum_i index_i * stride_i` over the batch dimensions, the row stride that of the
/// second-to-last dimension. Anything else (another dtype, a transposed last dimension, rows that
/// overlap) is made contiguous float32 first.
struct BatchedOperand {
    /// Keeps the storage alive while ``base`` is used.
    let tensor: Tensor
    let base: UnsafePointer<Float>
    let offsets: [Int]
    let rowStride: Int

    init(_ operand: Tensor) throws {
        let rank = operand.rank
        let (rows, columns) = (operand.shape[rank - 2], operand.shape[rank - 1])
        let inPlace = operand.dtype == .float32 && operand.device == .cpu
            && (columns <= 1 || operand.strides[rank - 1] == 1)
            && (rows <= 1 || operand.strides[rank - 2] >= columns)
        let tensor = inPlace ? operand : try CPUDenseKernels.float32Contiguous(operand)
        self.tensor = tensor
        base = UnsafePointer(tensor.storage.hostPointer.assumingMemoryBound(to: Float.self))
        rowStride = rows <= 1 ? max(columns, 1) : tensor.strides[rank - 2]
        let batchShape = Array(tensor.shape.dropLast(2))
        let batchStrides = Array(tensor.strides.dropLast(2))
        var offsets = [tensor.offset]
        for (size, stride) in zip(batchShape, batchStrides) {
            offsets = offsets.flatMap { start in (0..<size).map { start + $0 * stride } }
        }
        self.offsets = offsets
    }
}
