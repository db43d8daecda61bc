import Foundation
import QuantizedLinear
import Testing

private let gpu = Device.cuda(0)
private let gpuReason = CUDABackend.unavailableReason.map { "no CUDA GPU here: \($0)" } ?? ""
private let backend = CUDABackend.shared

/// Relative error allowed against the float64 reference: float32 arithmetic, then one rounding
/// to the output dtype (2^-8 relative for bfloat16, 2^-11 for float16).
private func tolerance(_ dtype: DType) -> Double {
    switch dtype {
    case .bfloat16: 8e-3
    case .float16: 1e-3
    default: 2e-6
    }
}

private func doubles(_ tensor: Tensor) throws -> [Double] { try tensor.floats().map(Double.init) }

/// A CPU tensor of `shape` and the same values on the GPU as a strided view when `strided`
/// (stored with the last two axes swapped, then transposed back), else contiguous.
private func input(_ shape: [Int], dtype: DType, strided: Bool, seed: UInt64, scale: Float = 1,
                   offset: Float = 0) throws -> (cpu: Tensor, gpu: Tensor) {
    var stored = shape
    if strided { stored.swapAt(shape.count - 1, shape.count - 2) }
    let values = TestData.values(stored.reduce(1, *), columns: stored.last ?? 1, kind: .gaussian, seed: seed)
    let base = try Tensor(values.map { $0 * scale + offset }, shape: stored, dtype: dtype)
    let cpu = strided ? try base.transposed() : base
    let device = strided ? try base.to(gpu).transposed() : try base.to(gpu)
    #expect(device.isContiguous == !strided)
    return (cpu, device)
}

private let floatTypes: [DType] = [.float32, .float16, .bfloat16]

@Suite("CUDA transformer ops vs float64", .enabled(if: CUDABackend.isAvailable, "\(gpuReason)"))
struct CUDATransformerOpsTests {
    /// Warp-per-row (D = 384, 7, 1) and block-per-row lengths (3000 and 8192: 128 or 512 threads,
    /// 6001: 1024 threads, no vectors), strided and contiguous.
    @Test(arguments: floatTypes, [[3, 5, 384], [7, 7], [4, 1], [2, 3000], [3, 8192], [2, 6001]])
    func layerNorm(dtype: DType, shape: [Int]) throws {
        let d = shape.last!
        for strided in [false, true] where shape.count >= 2 {
            let x = try input(shape, dtype: dtype, strided: strided, seed: UInt64(d), scale: 2, offset: 0.5)
            let weight = try Tensor.randomNormal([d], dtype: dtype, seed: 3)
            let bias = try Tensor.randomNormal([d], seed: 4)  // float32 bias with a half-precision x
            let y = try backend.layerNorm(x.gpu, weight: weight.to(gpu), bias: bias.to(gpu), epsilon: 1e-12)
            #expect(y.shape == shape && y.dtype == dtype && y.device == gpu)
            let expected = Reference64.layerNorm(try doubles(x.cpu), d: d, weight: try doubles(weight),
                                                 bias: try doubles(bias), epsilon: 1e-12)
            #expect(relativeError(try y.floats(), expected) < tolerance(dtype), "\(shape) strided \(strided)")
            let plain = try backend.layerNorm(x.gpu, weight: nil, bias: nil, epsilon: 1e-5)
            let plainExpected = Reference64.layerNorm(try doubles(x.cpu), d: d, weight: nil, bias: nil,
                                                      epsilon: 1e-5)
            #expect(relativeError(try plain.floats(), plainExpected) < tolerance(dtype), "\(shape) no weight")
        }
    }

    /// Rows with a mean 1000 times their spread: a one-pass variance would cancel to noise.
    @Test func layerNormLargeMean() throws {
        let x = try input([6, 384], dtype: .float32, strided: false, seed: 9, scale: 0.01, offset: 10)
        let y = try backend.layerNorm(x.gpu, weight: nil, bias: nil, epsilon: 1e-12)
        let expected = Reference64.layerNorm(try doubles(x.cpu), d: 384, weight: nil, bias: nil, epsilon: 1e-12)
        #expect(relativeError(try y.floats(), expected) < 1e-4)
    }

    /// Attention scores [B, H, S, S] with BERT's padding mask (0 / -10000 / -inf per key), a batch
    /// whose keys are all -inf (rows of zeros), long rows on the block path, and no mask.
    @Test(arguments: floatTypes, [(3, 77, 77), (2, 128, 128), (1, 3, 3001), (1, 3, 4096)])
    func softmaxWithPaddingMask(dtype: DType, sizes: (Int, Int, Int)) throws {
        let (heads, rows, s) = sizes
        let batch = 2
        for strided in [false, true] {
            let x = try input([batch, heads, rows, s], dtype: dtype, strided: strided, seed: UInt64(s), scale: 3)
            var maskValues = [Float](repeating: 0, count: batch * s)
            for key in (s / 2)..<s { maskValues[key] = key % 3 == 0 ? -.infinity : -10000 }
            for key in 0..<s { maskValues[s + key] = -.infinity }
            for maskType in [DType.float32, dtype] {
                let mask = try Tensor(maskValues, shape: [batch, s], dtype: maskType)
                let y = try backend.softmax(x.gpu, additiveMask: mask.to(gpu))
                #expect(y.shape == [batch, heads, rows, s] && y.dtype == dtype)
                let expected = Reference64.softmax(try doubles(x.cpu), c: s, mask: try doubles(mask),
                                                   rowsPerBatch: heads * rows)
                let values = try y.floats()
                #expect(relativeError(values, expected) < tolerance(dtype), "strided \(strided) mask \(maskType)")
                #expect(values[(heads * rows * s)...].allSatisfy { $0 == 0 }, "fully masked rows must be zeros")
            }
            let unmasked = try backend.softmax(x.gpu, additiveMask: nil)
            let expected = Reference64.softmax(try doubles(x.cpu), c: s, mask: nil, rowsPerBatch: 1)
            #expect(relativeError(try unmasked.floats(), expected) < tolerance(dtype))
        }
    }

    @Test(arguments: floatTypes, [384, 7, 1])
    func embeddingGathersRowsExactly(dtype: DType, d: Int) throws {
        let vocabulary = 1000
        let indexValues: [Int32] = [0, 999, 5, 5, 17, 101, 998, 1, 42, 0, 777, 3, 64, 128, 256, 512, 500, 2]
        let indices = try Tensor(elements: indexValues, shape: [2, 9])
        for strided in [false, true] {
            let table = try input([vocabulary, d], dtype: dtype, strided: strided, seed: UInt64(d))
            let rows = try backend.embedding(table.gpu, indices: indices.to(gpu))
            #expect(rows.shape == [2, 9, d] && rows.dtype == dtype)
            let all = try table.cpu.floats()
            let expected = indexValues.flatMap { all[Int($0) * d..<(Int($0) + 1) * d] }
            #expect(try rows.floats() == expected, "strided \(strided)")
        }
    }

    /// A quantized table on the GPU: the rows' codes (int8 or e4m3 bytes) and scales are gathered
    /// there and dequantized, bit-identical to the CPU's lookup in the same table.
    @Test func quantizedTableRowsMatchTheCPU() throws {
        let table = try TestData.tensor([1000, 384], seed: 88)
        let indices = try Tensor(elements: [Int32](arrayLiteral: 0, 999, 5, 5, 17, 640), shape: [2, 3])
        let layouts: [any QuantizedLayout] = [try BlockWiseINT8Layout.activation(blockSize: 128),
                                              TensorCoreFP8Layout.dynamic]
        for layout in layouts {
            let q = try QuantizedTensor.fromFloat(table, layout: layout)
            let expected = try FallbackPolicy.withPolicy(.fail) { try embedding(q, indices: indices) }
            let rows = try FallbackPolicy.withPolicy(.fail) { try embedding(q.to(gpu), indices: indices.to(gpu)) }
            #expect(rows.device == gpu && rows.shape == [2, 3, 384])
            #expect(try rows.floats() == expected.floats(), "\(layout)")
        }
    }

    @Test func embeddingRejectsOutOfRangeIndices() throws {
        let table = try Tensor.randomNormal([10, 8], seed: 1).to(gpu)
        for bad: Int32 in [10, -1, 1 << 30] {
            let indices = try Tensor(elements: [1, 2, 3, bad, 4, bad], shape: [2, 3]).to(gpu)
            do {
                _ = try backend.embedding(table, indices: indices)
                Issue.record("index \(bad) of a 10-row table was accepted")
            } catch let error as TensorError {
                #expect(error.code == .invalidArgument)
                #expect(error.message.contains("index \(bad) at position [1, 0]"), "\(error.message)")
            }
        }
        // The device is usable afterwards; float indices are refused before anything is launched.
        let fine = try backend.embedding(table, indices: try Tensor(elements: [Int32(9)], shape: [1]).to(gpu))
        #expect(try fine.floats() == Array(try table.floats()[72..<80]))
        #expect { try backend.embedding(table, indices: try Tensor([1], shape: [1]).to(gpu)) } throws: {
            ($0 as? TensorError)?.code == .unsupportedDType
        }
    }

    /// b of a's shape, of a suffix, of the last dimension; vectorised (D = 64) and odd (D = 7).
    @Test(arguments: floatTypes)
    func multiplyAndScale(dtype: DType) throws {
        for shape in [[3, 5, 7], [4, 2, 64]] {
            for strided in [false, true] {
                let a = try input(shape, dtype: dtype, strided: strided, seed: 21)
                let av = try doubles(a.cpu)
                for suffix in 1...shape.count {
                    let bShape = Array(shape.suffix(suffix))
                    for bType in [dtype, .float32] {
                        let b = try Tensor.randomNormal(bShape, dtype: bType, seed: UInt64(suffix))
                        let y = try backend.multiply(a.gpu, b.to(gpu))
                        #expect(y.shape == shape && y.dtype == dtype)
                        let bv = try doubles(b)
                        let expected = av.indices.map { av[$0] * bv[$0 % bv.count] }
                        #expect(relativeError(try y.floats(), expected) < tolerance(dtype), "\(shape) b \(bShape)")
                    }
                }
                let scaled = try backend.scaled(a.gpu, by: -0.37)
                #expect(scaled.shape == shape && scaled.dtype == dtype)
                #expect(relativeError(try scaled.floats(), av.map { $0 * -0.37 }) < tolerance(dtype))
            }
        }
    }

    /// Q K^T and P V shapes over [batch, heads]: contiguous, K^T as a transposed view (read in
    /// place), Q permuted out of [B, S, H, Dh] (copied), transposeB; float32 must not use TF32
    /// (whose 10-bit mantissa would give errors near 1e-3).
    @Test(arguments: floatTypes)
    func batchedMatmulAgainstFloat64(dtype: DType) throws {
        let (batch, heads, m, k, n) = (2, 3, 17, 40, 9)
        let q = try Tensor.randomNormal([batch, m, heads, k], dtype: dtype, seed: 31)
        let keys = try Tensor.randomNormal([batch, heads, n, k], dtype: dtype, seed: 32)
        let permutedQ = try q.to(gpu).transposed(1, 2)  // [B, H, M, K], not mergeable
        let qValues = try doubles(q.transposed(1, 2))
        let keyValues = try doubles(keys)
        let expected = Reference64.batchedMatmul(qValues, keyValues, batches: batch * heads, m: m, k: k, n: n,
                                                 transposeB: true)
        let keysOnGPU = try keys.to(gpu)
        let transposed = try backend.batchedMatmul(permutedQ, keysOnGPU, transposeB: true)
        let viewOfKT = try backend.batchedMatmul(permutedQ, try keysOnGPU.transposed(), transposeB: false)
        let contiguousKT = try backend.batchedMatmul(permutedQ.contiguous(), try keysOnGPU.transposed().contiguous(),
                                                     transposeB: false)
        // Q stored as [B, H, K, M] and transposed: column-major matrices, read in place with op T.
        let columnMajorQ = try q.transposed(1, 2).contiguous().transposed().contiguous().to(gpu).transposed()
        let viewOfQ = try backend.batchedMatmul(columnMajorQ, keysOnGPU, transposeB: true)
        for (name, product) in [("transposeB", transposed), ("K^T view", viewOfKT), ("K^T copy", contiguousKT),
                                ("Q column-major", viewOfQ)] {
            #expect(product.shape == [batch, heads, m, n] && product.dtype == dtype)
            #expect(relativeError(try product.floats(), expected) < tolerance(dtype), "\(name)")
        }
        // P V with mixed dtypes (runs in float32, result in a's dtype) and a 2-D product.
        let p = try Tensor.randomNormal([batch, heads, m, n], dtype: dtype, seed: 33)
        let v = try Tensor.randomNormal([batch, heads, n, k], seed: 34)
        let pv = try backend.batchedMatmul(p.to(gpu), v.to(gpu), transposeB: false)
        #expect(pv.shape == [batch, heads, m, k] && pv.dtype == dtype)
        let pvExpected = Reference64.batchedMatmul(try doubles(p), try doubles(v), batches: batch * heads, m: m,
                                                   k: n, n: k, transposeB: false)
        #expect(relativeError(try pv.floats(), pvExpected) < tolerance(dtype))
        let a2 = try Tensor.randomNormal([m, k], dtype: dtype, seed: 35)
        let b2 = try Tensor.randomNormal([k, n], dtype: dtype, seed: 36)
        let y2 = try backend.batchedMatmul(a2.to(gpu), b2.to(gpu), transposeB: false)
        #expect(y2.shape == [m, n])
        let y2Expected = Reference64.batchedMatmul(try doubles(a2), try doubles(b2), batches: 1, m: m, k: k, n: n,
                                                   transposeB: false)
        #expect(relativeError(try y2.floats(), y2Expected) < tolerance(dtype))
    }

    @Test func batchedMatmulWithEmptyInnerDimensionIsZero() throws {
        let a = try Tensor(zeros: [2, 5, 0]).to(gpu)
        let b = try Tensor(zeros: [2, 0, 4]).to(gpu)
        let y = try backend.batchedMatmul(a, b, transposeB: false)
        #expect(y.shape == [2, 5, 4])
        #expect(try y.floats().allSatisfy { $0 == 0 })
    }

    /// Sequences of lengths 11, 4, 1 and 0 (an all-padding row gives zeros), int32 and float masks;
    /// a NaN in a padded position must not reach the result.
    @Test(arguments: floatTypes, [(11, 384), (11, 7), (37, 2000)])
    func maskedMeanPool(dtype: DType, sizes: (Int, Int)) throws {
        let (s, d) = sizes
        let lengths = [s, 4, 1, 0]
        let batch = lengths.count
        var values = TestData.values(batch * s * d, columns: d, kind: .gaussian, seed: UInt64(d))
        values[(1 * s + 5) * d + 2] = .nan
        let x = try Tensor(values, shape: [batch, s, d], dtype: dtype)
        let maskValues = lengths.flatMap { length in (0..<s).map { $0 < length ? 1 : 0 } }
        let expected = Reference64.maskedMeanPool(try doubles(x), mask: maskValues.map(Double.init),
                                                  batches: batch, s: s, d: d)
        let masks = [try Tensor(elements: maskValues.map(Int32.init), shape: [batch, s]),
                     try Tensor(maskValues.map(Float.init), shape: [batch, s], dtype: dtype)]
        for mask in masks {
            let y = try backend.maskedMeanPool(x.to(gpu), mask: mask.to(gpu))
            #expect(y.shape == [batch, d] && y.dtype == dtype)
            let pooled = try y.floats()
            #expect(relativeError(pooled, expected) < tolerance(dtype), "mask \(mask.dtype)")
            #expect(pooled[(3 * d)...].allSatisfy { $0 == 0 }, "an all-padding sequence pools to zeros")
        }
    }

    @Test(arguments: floatTypes, [[5, 384], [3, 7], [2, 3001]])
    func l2Normalize(dtype: DType, shape: [Int]) throws {
        let d = shape.last!
        for strided in [false, true] {
            var x = try input(shape, dtype: dtype, strided: strided, seed: UInt64(d), scale: 4)
            if !strided {
                // A zero row divides by eps and stays zero.
                var values = try x.cpu.floats()
                for i in 0..<d { values[i] = 0 }
                x.cpu = try Tensor(values, shape: shape, dtype: dtype)
                x.gpu = try x.cpu.to(gpu)
            }
            let y = try backend.l2Normalize(x.gpu, epsilon: 1e-12)
            #expect(y.shape == shape && y.dtype == dtype)
            let expected = Reference64.l2Normalize(try doubles(x.cpu), d: d, epsilon: 1e-12)
            #expect(relativeError(try y.floats(), expected) < tolerance(dtype), "strided \(strided)")
        }
    }

    /// Heads permuted out of [B, S, H, Dh] (wide words when Dh allows), a transpose, and a rank-10
    /// view whose axes cannot merge (more than the kernel's 8: one launch per leading index).
    @Test(arguments: DType.allCases)
    func contiguousMaterialisesAnyView(dtype: DType) throws {
        let heads = try Tensor.randomNormal([2, 7, 3, 16], dtype: dtype, seed: 41)
        let oddHeads = try Tensor.randomNormal([2, 5, 3, 5], dtype: dtype, seed: 42)
        let deep = try Tensor.randomNormal([2, 2, 2, 2, 2, 2, 2, 2, 2, 3], dtype: dtype, seed: 43)
        func reversed(_ t: Tensor) throws -> Tensor {
            var view = t
            for axis in 0..<(t.rank / 2) { view = try view.transposed(axis, t.rank - 1 - axis) }
            return view
        }
        let cases: [(String, Tensor, (Tensor) throws -> Tensor)] = [
            ("heads", heads, { try $0.transposed(1, 2) }),
            ("odd heads", oddHeads, { try $0.transposed(1, 2) }),
            ("transpose", oddHeads, { try $0.transposed(0, 3) }),
            ("rank 10 reversed", deep, reversed),
        ]
        for (name, cpu, view) in cases {
            let onGPU = try view(try cpu.to(gpu))
            #expect(!onGPU.isContiguous)
            let copy = try onGPU.contiguous()
            #expect(copy.isContiguous && copy.shape == onGPU.shape)
            #expect(try copy.to(.cpu).withUnsafeContiguousBytes { Array($0) }
                == view(cpu).withUnsafeContiguousBytes { Array($0) }, "\(name)")
        }
    }

    /// The in-place ops on the GPU (the backend's default: the out-of-place op, assigned) give the
    /// out-of-place results, and a copy sharing the tensor keeps its values.
    @Test(arguments: floatTypes)
    func inPlaceOpsMatchOutOfPlace(dtype: DType) throws {
        let (_, x) = try input([2, 9, 384], dtype: dtype, strided: false, seed: 41, scale: 3)
        let residual = try input([2, 9, 384], dtype: .float32, strided: false, seed: 42).gpu
        let mask = try Tensor((0..<(2 * 384)).map { $0 % 5 == 1 ? -Float.greatestFiniteMagnitude : 0 },
                              shape: [2, 384]).to(gpu)
        let cases: [(String, (Tensor) throws -> Tensor, (inout Tensor) throws -> Void)] = [
            ("gelu", { try gelu($0).requireDense() }, { try gelu(inPlace: &$0) }),
            ("add", { try add($0, residual).requireDense() }, { try add(inPlace: &$0, residual) }),
            ("softmax", { try softmax($0, additiveMask: mask) }, { try softmax(inPlace: &$0, additiveMask: mask) }),
            ("scaled", { try scaled($0, by: 0.5) }, { try scaled(inPlace: &$0, by: 0.5) }),
        ]
        let original = try x.floats().map(\.bitPattern)
        for (name, outOfPlace, inPlace) in cases {
            var y = x
            try withoutFallback { try inPlace(&y) }
            #expect(y.device == gpu && y.dtype == dtype, "\(name)")
            #expect(try y.floats().map(\.bitPattern) == outOfPlace(x).floats().map(\.bitPattern), "\(name)")
            #expect(try x.floats().map(\.bitPattern) == original, "\(name) changed the shared tensor")
        }
    }

    /// The attention op on the GPU (the backend's default: the three ops) against the CPU's.
    @Test func attentionMatchesTheCPU() throws {
        let projection = try input([2, 11, 4 * 16], dtype: .float32, strided: false, seed: 43)
        func heads(_ t: Tensor) throws -> Tensor { try t.reshaped([2, 11, 4, 16]).permuted([0, 2, 1, 3]) }
        let mask = try Tensor((0..<22).map { $0 % 4 == 3 ? -Float.greatestFiniteMagnitude : 0 }, shape: [2, 11])
        let expected = try attention(query: heads(projection.cpu), key: heads(projection.cpu),
                                     value: heads(projection.cpu), additiveMask: mask)
        let y = try attention(query: heads(projection.gpu), key: heads(projection.gpu), value: heads(projection.gpu),
                              additiveMask: mask.to(gpu))
        #expect(y.device == gpu && y.shape == [2, 4, 11, 16])
        #expect(relativeError(try y.floats(), try expected.floats()) < 1e-5)
    }

    @Test func wrongShapesAndDtypesThrow() throws {
        let x = try Tensor.randomNormal([2, 3, 8], seed: 51).to(gpu)
        let codes = try Tensor(elements: [Int32](repeating: 1, count: 6), shape: [2, 3]).to(gpu)
        let checks: [(String, TensorError.Code, () throws -> Tensor)] = [
            ("layerNorm weight", .shapeMismatch, {
                try backend.layerNorm(x, weight: try Tensor(zeros: [7]).to(gpu), bias: nil, epsilon: 1e-5) }),
            ("layerNorm eps", .invalidArgument, { try backend.layerNorm(x, weight: nil, bias: nil, epsilon: -1) }),
            ("layerNorm int", .unsupportedDType, { try backend.layerNorm(codes, weight: nil, bias: nil, epsilon: 0) }),
            ("softmax mask", .shapeMismatch, {
                try backend.softmax(x, additiveMask: try Tensor(zeros: [2, 3]).to(gpu)) }),
            ("softmax cpu mask", .deviceMismatch, {
                try backend.softmax(x, additiveMask: try Tensor(zeros: [2, 8])) }),
            ("embedding table", .shapeMismatch, { try backend.embedding(x, indices: codes) }),
            ("multiply suffix", .shapeMismatch, { try backend.multiply(x, try Tensor(zeros: [3]).to(gpu)) }),
            ("scaled int", .unsupportedDType, { try backend.scaled(codes, by: 2) }),
            ("matmul K", .shapeMismatch, {
                try backend.batchedMatmul(x, try Tensor(zeros: [2, 7, 4]).to(gpu), transposeB: false) }),
            ("matmul batch", .shapeMismatch, {
                try backend.batchedMatmul(x, try Tensor(zeros: [3, 8, 4]).to(gpu), transposeB: false) }),
            ("pool mask", .shapeMismatch, { try backend.maskedMeanPool(x, mask: try Tensor(zeros: [2, 4]).to(gpu)) }),
            ("pool rank", .shapeMismatch, {
                try backend.maskedMeanPool(try Tensor(zeros: [2, 3]).to(gpu), mask: codes) }),
            ("l2 eps", .invalidArgument, { try backend.l2Normalize(x, epsilon: .nan) }),
        ]
        for (name, code, body) in checks {
            #expect(throws: TensorError.self, "\(name)") { _ = try body() }
            do { _ = try body() } catch let error as TensorError { #expect(error.code == code, "\(name)") }
        }
    }
}
