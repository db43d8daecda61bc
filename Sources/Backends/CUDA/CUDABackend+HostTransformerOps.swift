import QLTensor

// The transformer ops of `DeviceBackend` for CUDA tensors, computed through the host: operands are
// copied to the CPU, the CPU kernels run, the result is copied back to the operands' device. Correct
// (same values as the CPU), but every call pays two PCIe copies; the "cuda-dense" branch (issue 9)
// replaces this file with device kernels of the same signatures.
extension CUDABackend {
    /// Runs `body` on host copies of `operands` and puts its result on the first operand's device.
    private func onHost(_ operands: [Tensor], _ body: ([Tensor]) throws -> Tensor) throws -> Tensor {
        let device = operands[0].device
        return try body(try operands.map { try $0.to(.cpu) }).to(device)
    }

    public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, epsilon: Float) throws -> Tensor {
        let device = x.device
        return try DenseOps.layerNorm(x.to(.cpu), weight: weight?.to(.cpu), bias: bias?.to(.cpu), epsilon: epsilon)
            .to(device)
    }

    public func softmax(_ x: Tensor, additiveMask: Tensor?) throws -> Tensor {
        try DenseOps.softmax(x.to(.cpu), additiveMask: additiveMask?.to(.cpu)).to(x.device)
    }

    public func embedding(_ table: Tensor, indices: Tensor) throws -> Tensor {
        try onHost([table, indices]) { try DenseOps.embedding($0[0], indices: $0[1]) }
    }

    public func multiply(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try onHost([a, b]) { try DenseOps.multiply($0[0], $0[1]) }
    }

    public func scaled(_ x: Tensor, by factor: Float) throws -> Tensor {
        try onHost([x]) { try DenseOps.scaled($0[0], by: factor) }
    }

    public func batchedMatmul(_ a: Tensor, _ b: Tensor, transposeB: Bool) throws -> Tensor {
        try onHost([a, b]) { try DenseOps.batchedMatmul($0[0], $0[1], transposeB: transposeB) }
    }

    public func maskedMeanPool(_ x: Tensor, mask: Tensor) throws -> Tensor {
        try onHost([x, mask]) { try DenseOps.maskedMeanPool($0[0], mask: $0[1]) }
    }

    public func l2Normalize(_ x: Tensor, epsilon: Float) throws -> Tensor {
        try onHost([x]) { try DenseOps.l2Normalize($0[0], epsilon: epsilon) }
    }
}
