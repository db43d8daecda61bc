import QLTensor

/// The dense ops on the CPU, on operands ``DenseOps`` has checked: GEMMs on OpenBLAS, float32
/// arithmetic, results written in the first operand's dtype.
extension CPUBackend {
    package func linear(_ input: Tensor, _ weight: Tensor, bias: Tensor?) throws -> Tensor {
        let k = input.shape[input.rank - 1]
        let n = weight.shape[0]
        let m = input.count / max(k, 1)
        let outShape = Array(input.shape.dropLast()) + [n]
        var output = [Float](repeating: 0, count: m * n)
        try input.withUnsafeFloats { x in
            try weight.withUnsafeFloats { w in
                output.withUnsafeMutableBufferPointer { y in
                    if k == 0 { return }
                    OpenBLAS.shared.gemmNT(m: m, n: n, k: k, a: x.baseAddress!, lda: k, b: w.baseAddress!, ldb: k,
                                           c: y.baseAddress!, ldc: n)
                }
            }
        }
        if let bias {
            let b = try bias.floats()
            output.withUnsafeMutableBufferPointer { y in
                for row in 0..<m { for column in 0..<n { y[row * n + column] += b[column] } }
            }
        }
        return try Tensor(output, shape: outShape, dtype: input.dtype)
    }

    package func matmul(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        let (m, k) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let n = b.shape[b.rank - 1]
        let batchA = Array(a.shape.dropLast(2))
        let batches = batchA.reduce(1, *)
        var output = [Float](repeating: 0, count: batches * m * n)
        try a.withUnsafeFloats { x in
            try b.withUnsafeFloats { y in
                output.withUnsafeMutableBufferPointer { out in
                    for batch in 0..<batches where k > 0 {
                        let bOffset = b.rank == 2 ? 0 : batch * k * n
                        OpenBLAS.shared.gemmNN(m: m, n: n, k: k, a: x.baseAddress! + batch * m * k,
                                               b: y.baseAddress! + bOffset, c: out.baseAddress! + batch * m * n)
                    }
                }
            }
        }
        return try Tensor(output, shape: batchA + [m, n], dtype: a.dtype)
    }

    package func gelu(_ x: Tensor, approximation: GeluApproximation) throws -> Tensor {
        var values = try x.floats()
        for i in values.indices { values[i] = approximation.apply(values[i]) }
        return try Tensor(values, shape: x.shape, dtype: x.dtype)
    }

    package func add(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        let shape = try DenseOps.broadcastShape(a.shape, b.shape)
        let x = try a.floats()
        let y = try b.floats()
        let strideA = DenseOps.broadcastStrides(a.shape, to: shape)
        let strideB = DenseOps.broadcastStrides(b.shape, to: shape)
        let count = shape.reduce(1, *)
        var output = [Float](repeating: 0, count: count)
        var index = [Int](repeating: 0, count: shape.count)
        for flat in 0..<count {
            var offsetA = 0
            var offsetB = 0
            for axis in index.indices {
                offsetA += index[axis] * strideA[axis]
                offsetB += index[axis] * strideB[axis]
            }
            output[flat] = x[offsetA] + y[offsetB]
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < shape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
        return try Tensor(output, shape: shape, dtype: a.dtype)
    }
}
