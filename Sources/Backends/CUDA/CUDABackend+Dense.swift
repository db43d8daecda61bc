import Foundation
import QLTensor

/// Memory and dense ops on a CUDA device: copies, strided gathers, conversions and elementwise ops on
/// our kernels (`KernelSources/dense.cu`), GEMMs on cuBLASLt.
extension CUDABackend {
    public func allocate(byteCount: Int, on device: Device) throws -> any DeviceAllocation {
        try CUDABackend.cudaDevice(device).allocate(byteCount: byteCount)
    }

    public func allocateZeroed(byteCount: Int, on device: Device) throws -> any DeviceAllocation {
        let allocation = try CUDABackend.cudaDevice(device).allocate(byteCount: byteCount)
        try allocation.owner.fill(allocation.address, byte: 0, byteCount: byteCount)
        return allocation
    }

    public func copyFromHost(_ source: UnsafeRawPointer, byteCount: Int, into allocation: any DeviceAllocation) throws {
        let target = try GPU.allocation(allocation)
        try target.owner.copyFromHost(source, byteCount: byteCount, to: target.address)
    }

    public func copyToHost(_ tensor: Tensor, into destination: UnsafeMutableRawPointer, byteCount: Int) throws {
        let source = try GPU(tensor)
        try source.device.copyToHost(from: source.address, byteCount: byteCount, into: destination)
    }

    public func clone(_ tensor: Tensor) throws -> Tensor {
        if !tensor.isContiguous { return try contiguous(tensor) }
        let source = try GPU(tensor)
        let result = try GPU.empty(tensor.shape, tensor.dtype, on: source.device)
        try source.device.copy(from: source.address, to: try GPU(result).address,
                               byteCount: tensor.count * tensor.dtype.byteSize)
        return result
    }

    public func convert(_ tensor: Tensor, to dtype: DType) throws -> Tensor {
        let input = try GPU(try tensor.contiguous())
        let result = try GPU.empty(tensor.shape, dtype, on: input.device)
        try GPU.launchElementwise(input.device, "convert", count: tensor.count,
                                  defines: ["IN_DT": tensor.dtype.kernelCode, "OUT_DT": dtype.kernelCode],
                                  [input.argument, try GPU(result).argument, .int(tensor.count)])
        return result
    }

    public func gelu(_ x: Tensor, approximation: GeluApproximation) throws -> Tensor {
        let input = try GPU(try x.contiguous())
        let result = try GPU.empty(x.shape, x.dtype, on: input.device)
        try GPU.launchElementwise(input.device, "gelu", count: x.count,
                                  defines: ["IN_DT": x.dtype.kernelCode, "APPROX": approximation == .tanh ? 1 : 0],
                                  [input.argument, try GPU(result).argument, .int(x.count)])
        return result
    }

    public func add(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        let shape = try DenseOps.broadcastShape(a.shape, b.shape)
        guard shape.count <= DenseKernels.maxRank else {
            throw TensorError(.unsupportedOperation, "CUDA add supports rank <= \(DenseKernels.maxRank), got \(shape)")
        }
        let left = try GPU(a)
        let right = try GPU(b)
        let result = try GPU.empty(shape, a.dtype, on: left.device)
        let count = shape.reduce(1, *)
        func strides(_ t: Tensor) -> [Int] {
            let pad = shape.count - t.rank
            return shape.indices.map { axis in
                axis < pad || t.shape[axis - pad] == 1 ? 0 : t.strides[axis - pad]
            }
        }
        try GPU.launchElementwise(left.device, "add", count: count,
                                  defines: ["IN_DT": a.dtype.kernelCode, "B_DT": b.dtype.kernelCode],
                                  [left.argument, right.argument, try GPU(result).argument,
                                   .int(count), .bytes(DenseKernels.dims(shape: shape, a: strides(a), b: strides(b)))])
        return result
    }

    public func linear(_ input: Tensor, _ weight: Tensor, bias: Tensor?) throws -> Tensor {
        let k = input.shape.last ?? 0
        let n = weight.shape[0]
        let m = input.count / max(k, 1)
        let outputShape = Array(input.shape.dropLast()) + [n]
        let computeType = GPU.gemmType(input.dtype, weight.dtype)
        let x = try input.converted(to: computeType).contiguous()
        let w = try weight.converted(to: computeType).contiguous()
        let gx = try GPU(x)
        var y = try GPU.empty([m, n], computeType, on: gx.device)
        if k == 0 {
            try gx.device.fill(try GPU(y).address, byte: 0, byteCount: m * n * computeType.byteSize)
        } else if m > 0 && n > 0 {
            let b = try bias.map { try $0.converted(to: computeType).contiguous() }
            try GPU.gemmNT(x: gx, w: try GPU(w), y: try GPU(y), m: m, n: n, k: k, type: computeType,
                           bias: try b.map { try GPU($0) })
        }
        if k == 0, let bias { y = try add(y, bias.converted(to: computeType)) }
        return try y.converted(to: input.dtype).reshaped(outputShape)
    }

    public func matmul(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        let (m, k) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let n = b.shape[b.rank - 1]
        let batchShape = Array(a.shape.dropLast(2))
        let batches = batchShape.reduce(1, *)
        let computeType = GPU.gemmType(a.dtype, b.dtype)
        let left = try GPU(try a.converted(to: computeType).contiguous())
        let right = try GPU(try b.converted(to: computeType).contiguous())
        let result = try GPU.empty(batchShape + [m, n], computeType, on: left.device)
        let out = try GPU(result)
        let size = computeType.byteSize
        if k == 0 {
            try out.device.fill(out.address, byte: 0, byteCount: batches * m * n * size)
        } else if m > 0 && n > 0 {
            // A shared 2-D right operand: fold the batch into the rows.
            let (rows, launches) = b.rank == 2 ? (batches * m, 1) : (m, batches)
            let blas = try out.device.blas()
            let type = BLASLt.DataType(computeType)!
            for batch in 0..<launches {
                // Column-major C^T (n x rows) = B^T (n x k) * A^T (k x rows).
                let description = GEMMDescription(m: n, n: rows, k: k, transposeA: false, transposeB: false, lda: n,
                                                  ldb: k, ldd: n, typeA: type, typeB: type, typeD: type,
                                                  biasType: nil, scaled: false)
                try blas.run(description, a: right.advanced(by: batch * k * n * size),
                             b: left.advanced(by: batch * m * k * size), d: out.advanced(by: batch * m * n * size))
            }
        }
        return try result.converted(to: a.dtype)
    }

    /// `gelu_tanh(x W^T + b)` in one cuBLASLt call (its GELU epilogue, tanh approximation): the
    /// dense baseline of an MLP block's first layer. Float inputs of one dtype, x (M, K), W (N, K),
    /// on one CUDA device; K > 0.
    /// - Throws: ``TensorError/Code/shapeMismatch`` for mismatched shapes or dtypes.
    package static func linearGELU(_ input: Tensor, _ weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
        guard input.rank == 2, weight.rank == 2, input.shape[1] == weight.shape[1], input.shape[1] > 0,
              input.dtype == weight.dtype, [.float32, .float16, .bfloat16].contains(input.dtype) else {
            throw TensorError(.shapeMismatch, "linearGELU needs x (M, K) and W (N, K) of one float dtype with K > 0, "
                + "got \(input.shape) \(input.dtype) and \(weight.shape) \(weight.dtype)")
        }
        let (m, k, n) = (input.shape[0], input.shape[1], weight.shape[0])
        let x = try GPU(try input.contiguous())
        let y = try GPU.empty([m, n], input.dtype, on: x.device)
        guard m > 0 && n > 0 else { return y }
        let b = try bias.map { try GPU(try $0.converted(to: input.dtype).contiguous()) }
        try GPU.gemmNT(x: x, w: try GPU(try weight.contiguous()), y: try GPU(y), m: m, n: n, k: k,
                       type: input.dtype, bias: b, gelu: true)
        return y
    }

    /// The cuBLASLt algorithm configuration chosen for every GEMM planned so far on `device`
    /// (`algo=.. tile=.. splitK=.. reduction=.. stages=.. workspace=..`), keyed by `MxNxK types`.
    package static func chosenGEMMAlgorithms(_ device: Device) throws -> [String: String] {
        var result: [String: String] = [:]
        for (d, configuration) in try cudaDevice(device).blas().chosenAlgorithms {
            // Column-major (m, n) = row-major (N, M): report in the row-major M x N x K of the linear.
            let key = "\(d.n)x\(d.m)x\(d.k) \(d.typeA)->\(d.typeD)\(d.gelu ? " gelu" : "")"
                + "\(d.biasType == nil ? "" : " bias")" + (d.batchCount > 1 ? " batch \(d.batchCount)" : "")
            result[key] = configuration
        }
        return result
    }
}
