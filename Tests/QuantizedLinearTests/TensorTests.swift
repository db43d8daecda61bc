import QuantizedLinear
import Testing

@Suite("Dense tensors: views, copy-on-write, dense ops")
struct TensorTests {
    @Test("transpose is a view; contiguous() copies in the transposed order")
    func transposeView() throws {
        let t = try Tensor((0..<6).map(Float.init), shape: [2, 3])
        let v = try t.transposed()
        #expect(v.shape == [3, 2])
        #expect(v.storage === t.storage)
        #expect(!v.isContiguous)
        #expect(try v.floats() == [0, 3, 1, 4, 2, 5])
        let c = try v.contiguous()
        #expect(c.isContiguous)
        #expect(c.storage !== t.storage)
        #expect(try c.floats() == [0, 3, 1, 4, 2, 5])
    }

    @Test("writing through a shared tensor copies it first (value semantics)")
    func copyOnWrite() throws {
        let a = try Tensor([1, 2, 3, 4], shape: [2, 2])
        var b = a
        try b.withUnsafeMutableElements(as: Float.self) { $0[0] = 100 }
        #expect(try a.floats() == [1, 2, 3, 4])
        #expect(try b.floats() == [100, 2, 3, 4])
        #expect(a.storage !== b.storage)
    }

    @Test("reshape infers -1 and rejects a wrong element count")
    func reshape() throws {
        let t = try Tensor((0..<12).map(Float.init), shape: [3, 4])
        #expect(try t.reshaped([2, -1]).shape == [2, 6])
        #expect(throws: TensorError.self) { try t.reshaped([5, 3]) }
        // A non-contiguous tensor is reshaped through a copy, preserving logical order.
        #expect(try t.transposed().reshaped([12]).floats() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11])
    }

    @Test("dense linear matches float64 for every float dtype and batch rank",
          arguments: [DType.float32, .float16, .bfloat16], [[7, 33], [2, 5, 33], [33]])
    func denseLinear(dtype: DType, inputShape: [Int]) throws {
        let x = try TestData.tensor(inputShape, dtype: dtype, seed: 1)
        let w = try TestData.tensor([19, 33], dtype: dtype, seed: 2)
        let b = try TestData.tensor([19], dtype: dtype, seed: 3)
        let y = try DenseOps.linear(x, w, bias: b)
        #expect(y.shape == Array(inputShape.dropLast()) + [19])
        #expect(y.dtype == dtype)
        let tolerance = dtype == .float32 ? 1e-6 : dtype == .float16 ? 2e-3 : 1e-2
        #expect(relativeError(try y.floats(), try Reference64.linear(x, w, bias: b)) < tolerance)
    }

    @Test("dense linear takes a bfloat16 input with a bfloat16 bias (reference defect 5)")
    func bfloat16Bias() throws {
        let x = try TestData.tensor([4, 16], dtype: .bfloat16, seed: 4)
        let w = try TestData.tensor([8, 16], dtype: .float32, seed: 5)
        let b = try TestData.tensor([8], dtype: .bfloat16, seed: 6)
        let y = try DenseOps.linear(x, w, bias: b)
        #expect(y.dtype == .bfloat16)
        #expect(relativeError(try y.floats(), try Reference64.linear(x, w, bias: b)) < 1e-2)
    }

    @Test("matmul, gelu and broadcasting add match float64")
    func otherDenseOps() throws {
        let a = try TestData.tensor([2, 3, 5], seed: 7)
        let b = try TestData.tensor([5, 4], seed: 8)
        let product = try DenseOps.matmul(a, b).floats()
        let av = try a.floats()
        let bv = try b.floats()
        var expected = [Double](repeating: 0, count: 24)
        for batch in 0..<2 { for i in 0..<3 { for j in 0..<4 { for p in 0..<5 {
            expected[(batch * 3 + i) * 4 + j] += Double(av[(batch * 3 + i) * 5 + p]) * Double(bv[p * 4 + j])
        } } } }
        #expect(relativeError(product, expected) < 1e-6)

        for approximation in GeluApproximation.allCases {
            let g = try DenseOps.gelu(a, approximation: approximation).floats()
            #expect(relativeError(g, Reference64.gelu(av, approximation: approximation)) < 1e-6)
        }
        let row = try Tensor([10, 20, 30, 40, 50], shape: [5])
        let sum = try DenseOps.add(a, row).floats()
        #expect(sum[0] == av[0] + 10 && sum[29] == av[29] + 50)
    }

    @Test("dense ops reject mismatched shapes and integer tensors with clear errors")
    func denseErrors() throws {
        let x = try TestData.tensor([3, 8], seed: 9)
        let w = try TestData.tensor([4, 7], seed: 10)
        let error = #expect(throws: TensorError.self) { try DenseOps.linear(x, w) }
        #expect(error?.code == .shapeMismatch)
        #expect(error?.message.contains("K = 8") == true)
        let ints = try Tensor(elements: [Int8](repeating: 1, count: 8), shape: [1, 8])
        #expect(throws: TensorError.self) { try DenseOps.gelu(ints) }
        #expect(throws: TensorError.self) { try DenseOps.add(x, try TestData.tensor([5], seed: 11)) }
        #expect(throws: TensorError.self) { try Tensor([1, 2, 3], shape: [2, 2]) }
    }

    @Test("OpenBLAS is loaded with a reported core, or the portable kernel is named")
    func openBLASReport() {
        let blas = OpenBLAS.shared
        if blas.isAvailable {
            #expect(blas.coreName?.isEmpty == false)
            #expect(blas.summary.contains("core"))
        } else {
            #expect(blas.summary.contains("not found"))
        }
    }
}
