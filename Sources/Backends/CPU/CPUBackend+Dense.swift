import CQLKernels
import QLTensor

/// The dense ops on the CPU, on operands ``DenseOps`` has checked: GEMMs on OpenBLAS, float32
/// arithmetic, results written in the first operand's dtype.
extension CPUBackend {
    /// One op holding its compute slots (``ComputeSlots/holding(upTo:_:)``) across the conversions, the
    /// GEMM and the bias.
    package func linear(_ input: Tensor, _ weight: Tensor, bias: Tensor?) throws -> Tensor {
        let k = input.shape[input.rank - 1]
        let n = weight.shape[0]
        let m = input.count / max(k, 1)
        return try runningOp(multiplyAdds: ShapeArithmetic.saturatingProduct(m, n, k)) {
            try CPUDenseKernels.linear(input, weight, bias: bias, m: m, n: n, k: k,
                                       shape: Array(input.shape.dropLast()) + [n])
        }
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

    /// ``GeluApproximation/apply(_:)`` on every element: the vector kernel (float32 inside) for
    /// float32/16/bfloat16, through float32 for float8.
    package func gelu(_ x: Tensor, approximation: GeluApproximation) throws -> Tensor {
        let op = Int32(approximation == .tanh ? CK_ELEMENTWISE_GELU_TANH : CK_ELEMENTWISE_GELU_ERF)
        if CPUKernels.outputCode(x.dtype) != nil { return try CPUDenseKernels.elementwise(op, x, nil) }
        return try CPUDenseKernels.elementwise(op, try CPUDenseKernels.float32Contiguous(x), nil).converted(to: x.dtype)
    }

    package func geluInPlace(_ x: inout Tensor, approximation: GeluApproximation) throws {
        guard CPUKernels.outputCode(x.dtype) != nil else {
            x = try gelu(x, approximation: approximation)
            return
        }
        let op = Int32(approximation == .tanh ? CK_ELEMENTWISE_GELU_TANH : CK_ELEMENTWISE_GELU_ERF)
        try CPUDenseKernels.elementwise(inPlace: &x, op, nil)
    }

    /// In place on the vector kernel when `y`'s shape is a suffix of `x`'s (a residual, a row vector);
    /// other broadcasts run ``add(_:_:)`` and assign.
    package func addInPlace(_ x: inout Tensor, _ y: Tensor) throws {
        guard CPUKernels.outputCode(x.dtype) != nil, DenseOps.isSuffix(y.shape, of: x.shape) else {
            x = try add(x, y)
            return
        }
        try CPUDenseKernels.elementwise(inPlace: &x, Int32(CK_ELEMENTWISE_ADD), y)
    }

    package func add(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        let shape = try DenseOps.broadcastShape(a.shape, b.shape)
        // The common cases (residual connections, a row vector over a matrix) on the vector kernel.
        if CPUKernels.outputCode(a.dtype) != nil {
            if shape == a.shape && DenseOps.isSuffix(b.shape, of: a.shape) {
                return try CPUDenseKernels.elementwise(Int32(CK_ELEMENTWISE_ADD), a, b)
            }
            if shape == b.shape && a.dtype == b.dtype && DenseOps.isSuffix(a.shape, of: b.shape) {
                return try CPUDenseKernels.elementwise(Int32(CK_ELEMENTWISE_ADD), b, a)
            }
        }
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
