import Foundation
import QuantizedLinear
import Testing

/// Relative error allowed for a result rounded to `dtype` (float32 arithmetic inside).
func outputTolerance(_ dtype: DType) -> Double {
    switch dtype {
    case .float32: 2e-6
    case .float16: 1e-3
    default: 8e-3
    }
}

func exactValues(_ tensor: Tensor) throws -> [Double] { try tensor.floats().map(Double.init) }

@Suite("Transformer dense ops: CPU kernels on every path against float64")
struct TransformerOpsTests {
    static let dtypes: [DType] = [.float32, .float16, .bfloat16]

    /// Runs `body` once per CPU kernel path this machine supports.
    func onEveryPath(_ body: (CPUKernelPath) throws -> Void) throws {
        for path in CPUKernelPath.supported { try CPUKernelPath.withPath(path) { try body(path) } }
    }

    @Test("layerNorm over odd widths, with and without weight and bias", arguments: dtypes, [[3, 5, 37], [4, 384], [1]])
    func layerNormParity(dtype: DType, shape: [Int]) throws {
        let width = shape.last!
        let x = try TestData.tensor(shape, kind: .outliers, dtype: dtype, scale: 3, seed: 11)
        let w = try TestData.tensor([width], dtype: dtype, seed: 12)
        let b = try TestData.tensor([width], dtype: dtype, seed: 13)
        try onEveryPath { path in
            for (weight, bias) in [(Optional(w), Optional(b)), (nil, nil)] {
                let y = try withoutFallback { try layerNorm(x, weight: weight, bias: bias, epsilon: 1e-5) }
                #expect(y.shape == shape && y.dtype == dtype)
                let expected = Reference64.layerNorm(
                    try exactValues(x), d: width, weight: try weight.map(exactValues),
                    bias: try bias.map(exactValues), epsilon: 1e-5)
                #expect(relativeError(try y.floats(), expected) < outputTolerance(dtype), "\(path)")
            }
        }
    }

    @Test("softmax with a padding mask per batch, and an all -inf row gives zeros", arguments: dtypes)
    func softmaxParity(dtype: DType) throws {
        let (batches, heads, rows, columns) = (3, 2, 5, 21)
        let x = try TestData.tensor([batches, heads, rows, columns], dtype: dtype, scale: 4, seed: 21)
        // Batch b keeps its first columns - 5 b tokens; padding gets BERT's large negative number.
        var maskValues = [Float]()
        for b in 0..<batches {
            maskValues += (0..<columns).map { $0 < columns - 5 * b ? 0 : -Float.greatestFiniteMagnitude }
        }
        let mask = try Tensor(maskValues, shape: [batches, columns])
        try onEveryPath { path in
            let y = try withoutFallback { try softmax(x, additiveMask: mask) }
            let expected = Reference64.softmax(try exactValues(x), c: columns,
                                               mask: maskValues.map(Double.init), rowsPerBatch: heads * rows)
            #expect(relativeError(try y.floats(), expected) < outputTolerance(dtype), "\(path)")
            let padded = try y.floats()[(2 * heads * rows) * columns + columns - 1]
            #expect(padded == 0, "masked positions get exactly 0")
            let plain = try softmax(x)
            let expectedPlain = Reference64.softmax(try exactValues(x), c: columns, mask: nil,
                                                    rowsPerBatch: 1)
            #expect(relativeError(try plain.floats(), expectedPlain) < outputTolerance(dtype), "\(path)")
        }
        let infinite = try Tensor([-.infinity, -.infinity, -.infinity, 0, 1, 2], shape: [2, 3], dtype: dtype)
        try onEveryPath { _ in
            let y = try softmax(infinite).floats()
            #expect(Array(y[0..<3]) == [0, 0, 0])
            #expect(abs(y[3...].reduce(0, +) - 1) < 1e-2)
        }
    }

    @Test("embedding gathers rows exactly; an index out of range throws", arguments: [DType.float32, .bfloat16])
    func embeddingGather(dtype: DType) throws {
        let table = try TestData.tensor([11, 7], dtype: dtype, seed: 31)
        let ids: [Int32] = [3, 0, 10, 3, 5, 9]
        let y = try withoutFallback { try embedding(table, indices: try Tensor(elements: ids, shape: [2, 3])) }
        #expect(y.shape == [2, 3, 7] && y.dtype == dtype)
        let rows = try table.floats()
        #expect(try y.floats() == ids.flatMap { rows[Int($0) * 7..<(Int($0) + 1) * 7] })
        for bad: Int32 in [11, -1] {
            #expect(throws: TensorError.self) {
                try embedding(table, indices: try Tensor(elements: [0, bad], shape: [2]))
            }
        }
        #expect(throws: TensorError.self) { try embedding(table, indices: try Tensor([1, 2], shape: [2])) }
    }

    @Test("multiply (same shape and suffix broadcast), scaled, and the vector add against float64",
          arguments: dtypes)
    func elementwiseParity(dtype: DType) throws {
        let a = try TestData.tensor([3, 5, 1031], dtype: dtype, seed: 41)
        let full = try TestData.tensor([3, 5, 1031], dtype: dtype, seed: 42)
        let row = try TestData.tensor([1031], dtype: dtype, seed: 43)
        let av = try exactValues(a)
        try onEveryPath { path in
            for b in [full, row] {
                let bv = try exactValues(b)
                let product = try withoutFallback { try multiply(a, b) }
                #expect(relativeError(try product.floats(), av.indices.map { av[$0] * bv[$0 % bv.count] })
                    < outputTolerance(dtype), "\(path)")
                let sum = try add(a, b).dequantized()
                #expect(relativeError(try sum.floats(), av.indices.map { av[$0] + bv[$0 % bv.count] })
                    < outputTolerance(dtype), "\(path)")
            }
            let y = try withoutFallback { try scaled(a, by: -0.37) }
            #expect(relativeError(try y.floats(), av.map { $0 * Double(Float(-0.37)) }) < outputTolerance(dtype))
        }
        #expect(throws: TensorError.self) { try multiply(a, try TestData.tensor([5], seed: 1)) }
    }

    @Test("vector GELU: float64 agreement, and every path (portable, AVX2, AVX-512) equals the scalar definition bit for bit",
          arguments: GeluApproximation.allCases)
    func geluPaths(approximation: GeluApproximation) throws {
        var values = try TestData.tensor([4099], scale: 3, seed: 51).floats()
        values += [0, -0.0, 1e-30, -1e-30, 9, -9, 20, -20, .infinity, -.infinity]
        let x = try Tensor(values, shape: [values.count])
        let definition = values.map { approximation.apply($0) }
        try onEveryPath { path in
            let y = try DenseOps.gelu(x, approximation: approximation).floats()
            #expect(y.map(\.bitPattern) == definition.map(\.bitPattern), "\(path)")
        }
        let finite = Array(values.prefix(4099))
        #expect(relativeError(Array(definition.prefix(4099)), Reference64.gelu(finite, approximation: approximation))
            < 2e-7)
        let nan = try DenseOps.gelu(try Tensor([.nan], shape: [1]), approximation: approximation).floats()
        #expect(nan[0].isNaN)
    }

    @Test("batchedMatmul, b plain and transposed, on permuted (strided) views", arguments: dtypes, [false, true])
    func batchedMatmulParity(dtype: DType, transposeB: Bool) throws {
        // Shapes a head split produces: (B, S, heads, d) permuted to (B, heads, S, d).
        let (batches, heads, m, k, n) = (2, 3, 13, 8, 9)
        let q = try TestData.tensor([batches, m, heads, k], dtype: dtype, seed: 61).permuted([0, 2, 1, 3])
        let bShape = transposeB ? [batches, n, heads, k] : [batches, k, heads, n]
        let v = try TestData.tensor(bShape, dtype: dtype, seed: 62).permuted([0, 2, 1, 3])
        #expect(!q.isContiguous)
        try onEveryPath { path in
            let y = try withoutFallback { try batchedMatmul(q, v, transposeB: transposeB) }
            #expect(y.shape == [batches, heads, m, n] && y.dtype == dtype)
            let expected = Reference64.batchedMatmul(
                try exactValues(q.contiguous()), try exactValues(v.contiguous()), batches: batches * heads, m: m, k: k,
                n: n, transposeB: transposeB)
            #expect(relativeError(try y.floats(), expected) < outputTolerance(dtype), "\(path)")
        }
        // Batches spread over the cores, the right operand in place or, as a transposed view (its
        // last dimension strided), copied first.
        let a = try TestData.tensor([2, 70, 64], dtype: dtype, seed: 63)
        let b = try TestData.tensor([2, 64, 70], dtype: dtype, seed: 64)
        let expected = Reference64.batchedMatmul(try exactValues(a), try exactValues(b), batches: 2, m: 70,
                                                 k: 64, n: 70, transposeB: false)
        for right in [b, try b.transposed().contiguous().transposed()] {
            let y = try batchedMatmul(a, transposeB ? try right.transposed() : right, transposeB: transposeB)
            #expect(relativeError(try y.floats(), expected) < outputTolerance(dtype))
        }
        // One large product: its columns split over the cores instead.
        let single = try TestData.tensor([1, 200, 64], dtype: dtype, seed: 65)
        let wide = try TestData.tensor([1, 64, 300], dtype: dtype, seed: 66)
        let right = transposeB ? try wide.transposed().contiguous() : wide
        let y = try batchedMatmul(single, right, transposeB: transposeB)
        let wideExpected = Reference64.batchedMatmul(try exactValues(single), try exactValues(wide), batches: 1,
                                                     m: 200, k: 64, n: 300, transposeB: false)
        #expect(relativeError(try y.floats(), wideExpected) < outputTolerance(dtype))
        #expect(throws: TensorError.self) { try batchedMatmul(a, try TestData.tensor([3, 64, 70], seed: 1)) }
    }

    @Test("maskedMeanPool with padding, int32 and float masks; an all-zero mask gives zeros", arguments: dtypes)
    func maskedMeanPoolParity(dtype: DType) throws {
        let (batches, sequence, width) = (4, 7, 389)
        let x = try TestData.tensor([batches, sequence, width], dtype: dtype, seed: 71)
        let lengths = [7, 3, 1, 0]
        let maskValues = lengths.flatMap { length in (0..<sequence).map { Int32($0 < length ? 1 : 0) } }
        let intMask = try Tensor(elements: maskValues, shape: [batches, sequence])
        let floatMask = try Tensor(maskValues.map(Float.init), shape: [batches, sequence])
        let expected = Reference64.maskedMeanPool(try exactValues(x), mask: maskValues.map(Double.init),
                                                  batches: batches, s: sequence, d: width)
        try onEveryPath { path in
            for mask in [intMask, floatMask] {
                let y = try withoutFallback { try maskedMeanPool(x, mask: mask) }
                #expect(y.shape == [batches, width] && y.dtype == dtype)
                #expect(relativeError(try y.floats(), expected) < outputTolerance(dtype), "\(path)")
                #expect(try y.floats()[(3 * width)...].allSatisfy { $0 == 0 })
            }
        }
    }

    @Test("l2Normalize: unit rows, and a zero row stays zero (epsilon)", arguments: dtypes)
    func l2NormalizeParity(dtype: DType) throws {
        var values = try TestData.tensor([5, 383], scale: 7, seed: 81).floats()
        for i in 0..<383 { values[2 * 383 + i] = 0 }
        let x = try Tensor(values, shape: [5, 383], dtype: dtype)
        try onEveryPath { path in
            let y = try withoutFallback { try l2Normalize(x) }
            let expected = Reference64.l2Normalize(try exactValues(x), d: 383, epsilon: 1e-12)
            #expect(relativeError(try y.floats(), expected) < outputTolerance(dtype), "\(path)")
            #expect(try y.floats()[(2 * 383)..<(3 * 383)].allSatisfy { $0 == 0 })
        }
    }

    @Test("permuted is a view with permuted strides; contiguous() materialises it; bad axes throw")
    func permutedView() throws {
        let x = try Tensor((0..<24).map(Float.init), shape: [2, 3, 4])
        let p = try x.permuted([2, 0, 1])
        #expect(p.shape == [4, 2, 3] && p.strides == [1, 12, 4] && p.storage === x.storage)
        let values = try p.contiguous().floats()
        #expect(values[0..<6] == [0, 4, 8, 12, 16, 20])
        #expect(try x.permuted([-1, 0, 1]).shape == [4, 2, 3])
        for bad in [[0, 1], [0, 0, 1], [0, 1, 3]] {
            #expect(throws: TensorError.self) { try x.permuted(bad) }
        }
    }

    @Test("shape, dtype and epsilon errors say what is wrong")
    func badInputs() throws {
        let x = try TestData.tensor([2, 3, 8], seed: 91)
        let error = #expect(throws: TensorError.self) { try layerNorm(x, weight: try Tensor(zeros: [7]), bias: nil,
                                                                       epsilon: 1e-5) }
        #expect(error?.code == .shapeMismatch)
        #expect(throws: TensorError.self) { try layerNorm(x, weight: nil, bias: nil, epsilon: -1) }
        #expect(throws: TensorError.self) { try softmax(x, additiveMask: try Tensor(zeros: [2, 7])) }
        #expect(throws: TensorError.self) { try softmax(x, additiveMask: try Tensor(zeros: [2, 8], dtype: .float16)) }
        #expect(throws: TensorError.self) { try maskedMeanPool(x, mask: try Tensor(zeros: [3, 3])) }
        let ints = try Tensor(elements: [Int32](repeating: 1, count: 4), shape: [4])
        #expect(throws: TensorError.self) { try scaled(ints, by: 2) }
        #expect(throws: TensorError.self) { try l2Normalize(x, epsilon: .nan) }
    }

    @Test("a quantized table's rows are gathered, then dequantized: bit-identical to dequantizing the table")
    func quantizedEmbedding() throws {
        let table = try TestData.tensor([37, 300], seed: 97)
        let ids = try Tensor(elements: [Int32](arrayLiteral: 36, 0, 5, 5, 17, 2), shape: [2, 3])
        let layouts: [any QuantizedLayout] = [try BlockWiseINT8Layout.activation(blockSize: 128),
                                              try BlockWiseINT8Layout.activation(blockSize: 64, rounding: .towardZero),
                                              TensorCoreFP8Layout.dynamic]
        for layout in layouts {
            let q = try QuantizedTensor.fromFloat(table, layout: layout)
            let rows = try withoutFallback { try embedding(q, indices: ids) }
            let expected = try embedding(try q.dequantize(), indices: ids)
            #expect(rows.shape == [2, 3, 300] && rows.dtype == .float32, "\(layout)")
            #expect(try rows.floats() == expected.floats(), "\(layout)")
            let outOfRange = try Tensor(elements: [Int32(37)], shape: [1])
            #expect(throws: TensorError.self) { try embedding(q, indices: outOfRange) }
        }
        // Blocks over several rows cannot be gathered row by row: the fallback dequantizes the table.
        let square = try QuantizedTensor.fromFloat(table, layout: BlockWiseINT8Layout.weight(blockSize: 16))
        let error = #expect(throws: TensorError.self) { try withoutFallback { try embedding(square, indices: ids) } }
        #expect(error?.code == .fallbackForbidden)
        let (rows, events) = try withFallback { try embedding(square, indices: ids) }
        #expect(events.map(\.op) == [.embedding])
        #expect(try rows.floats() == embedding(try square.dequantize(), indices: ids).floats())
    }

    @Test("a quantized operand falls back observably: forbidden under `fail`, counted otherwise")
    func quantizedOperandFallsBack() throws {
        let x = try TestData.tensor([4, 256], seed: 95)
        let q = try QuantizedTensor.fromFloat(x, layout: BlockWiseINT8Layout.activation(blockSize: 128))
        let error = #expect(throws: TensorError.self) { try withoutFallback { try layerNorm(q, weight: nil, bias: nil,
                                                                                            epsilon: 1e-12) } }
        #expect(error?.code == .fallbackForbidden)
        let (y, events) = try withFallback { try scaled(q, by: 2) }
        #expect(events.map(\.op) == [.scaled])
        #expect(relativeError(try y.floats(), try q.dequantize().floats().map { Double($0) * 2 }) < 1e-7)
    }
}
