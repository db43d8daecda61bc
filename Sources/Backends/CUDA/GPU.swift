import QLTensor

/// A CUDA tensor's device and the address of its first element: the narrow place where a
/// ``Tensor`` becomes a raw device pointer.
///
/// It holds the allocation, so memory stays allocated while a `GPU` value (or a kernel argument made
/// from it) is alive, even when the tensor it came from was a temporary.
struct GPU {
    let device: CUDADevice
    let address: CUDeviceAddress
    let allocation: CUDAAllocation

    init(_ tensor: Tensor) throws {
        guard let allocation = tensor.storage.allocation as? CUDAAllocation else {
            throw TensorError(.deviceMismatch, "expected a tensor on a CUDA device, got one on \(tensor.device); "
                + "move it with `.to(.cuda(0))`")
        }
        self.allocation = allocation
        device = allocation.owner
        address = allocation.address + UInt64(tensor.offset * tensor.dtype.byteSize)
    }

    private init(device: CUDADevice, address: CUDeviceAddress, allocation: CUDAAllocation) {
        self.device = device
        self.address = address
        self.allocation = allocation
    }

    /// The pointer `bytes` further on.
    func advanced(by bytes: Int) -> GPU {
        GPU(device: device, address: address + UInt64(bytes), allocation: allocation)
    }

    /// This pointer as a kernel argument that keeps the memory alive until the launch is queued.
    var argument: KernelArgument { .address(address, retaining: allocation) }

    static func allocation(_ allocation: any DeviceAllocation) throws -> CUDAAllocation {
        guard let cuda = allocation as? CUDAAllocation else {
            throw TensorError(.deviceMismatch, "the CUDA backend was handed memory of \(allocation.device)")
        }
        return cuda
    }

    /// An uninitialised contiguous tensor on `device`.
    static func empty(_ shape: [Int], _ dtype: DType, on device: CUDADevice) throws -> Tensor {
        let allocation = try device.allocate(byteCount: shape.reduce(1, *) * dtype.byteSize)
        return try Tensor(storage: TensorStorage(allocation: allocation), dtype: dtype, shape: shape)
    }

    /// The dtype a dense GEMM runs in: the common one when both are bf16, f16 or f32, else float32.
    static func gemmType(_ a: DType, _ b: DType) -> DType {
        a == b && [.float32, .float16, .bfloat16].contains(a) ? a : .float32
    }

    static func launchElementwise(_ device: CUDADevice, _ entry: String, count: Int, defines: [String: Int],
                                  _ arguments: [KernelArgument]) throws {
        guard count > 0 else { return }
        let function = try device.function(DenseKernels.source, entry: entry, defines: defines)
        try device.launch(function, grid: (device.gridSize(work: count, perBlock: 256), 1, 1), block: (256, 1, 1),
                          arguments)
    }

    /// Row-major `y (m, n) = x (m, k) w (n, k)^T (+ bias)` through cuBLASLt (TN in column-major terms).
    static func gemmNT(x: GPU, w: GPU, y: GPU, m: Int, n: Int, k: Int, type: DType, bias: GPU?,
                       gelu: Bool = false) throws {
        let blasType = BLASLt.DataType(type)!
        let description = GEMMDescription(m: n, n: m, k: k, transposeA: true, transposeB: false, lda: k, ldb: k,
                                          ldd: n, typeA: blasType, typeB: blasType, typeD: blasType,
                                          biasType: bias == nil ? nil : blasType, scaled: false, gelu: gelu)
        try x.device.blas().run(description, a: w, b: x, d: y, bias: bias)
    }
}
