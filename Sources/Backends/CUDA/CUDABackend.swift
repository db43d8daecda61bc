import Foundation
import QLTensor

/// The CUDA backend: dense tensors on NVIDIA GPUs (``DeviceMemory`` and ``DeviceBackend``), the
/// quantized kernel contract (`QuantizedKernels`), and device queries.
///
/// ```swift
/// let x = try Tensor.randomNormal([4, 64], seed: 1).to(.cuda(0))
/// ```
/// It serves `.cuda` tensors as soon as this module is linked (through `BackendSlot.CUDA`), with
/// or without CUDA on the machine: without it, every use throws
/// ``TensorError/Code/deviceUnavailable`` with the loader's reason (no `libcuda.so.1`, no device, ...).
public final class CUDABackend: DeviceMemory, @unchecked Sendable {
    public static let shared = CUDABackend()
    public var kind: DeviceKind { .cuda }

    private init() {}

    /// Whether a CUDA driver and at least one device are present.
    public static var isAvailable: Bool { ((try? CUDARuntime.shared())?.deviceCount ?? 0) > 0 }

    /// Why CUDA cannot be used here, or `nil` when it can.
    public static var unavailableReason: String? {
        do {
            let runtime = try CUDARuntime.shared()
            return runtime.deviceCount > 0 ? nil : "the CUDA driver reports no device"
        } catch {
            return "\(error)"
        }
    }

    /// Name, compute capability and multiprocessor count of `device`, e.g. "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)".
    public static func describe(_ device: Device) throws -> String {
        let gpu = try cudaDevice(device)
        return "\(gpu.name) (sm_\(gpu.capability), \(gpu.multiprocessorCount) SMs, \(gpu.totalMemory >> 30) GiB)"
    }

    /// Compute capability of `device` as one number (90 for 9.0).
    public static func computeCapability(_ device: Device) throws -> Int { try cudaDevice(device).capability }

    /// Waits until every queued op on `device` has finished.
    public static func synchronize(_ device: Device) throws { try cudaDevice(device).synchronize() }

    static func cudaDevice(_ device: Device) throws -> CUDADevice {
        guard case .cuda(let ordinal) = device else {
            throw TensorError(.deviceMismatch, "\(device) is not a CUDA device")
        }
        return try CUDARuntime.shared().device(ordinal)
    }

    // MARK: DeviceBackend

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

    public func contiguous(_ tensor: Tensor) throws -> Tensor {
        let source = try GPU(tensor)
        let result = try GPU.empty(tensor.shape, tensor.dtype, on: source.device)
        guard tensor.count > 0 else { return result }
        guard tensor.rank <= DenseKernels.maxRank else {
            throw TensorError(.unsupportedOperation, "CUDA strided copy supports rank <= \(DenseKernels.maxRank), "
                + "got \(tensor.shape); reshape first")
        }
        let elementSize = tensor.dtype.byteSize
        let function = try source.device.function(DenseKernels.source, entry: "gather", defines: ["ES": elementSize])
        // Offsets are in elements from the tensor's own start.
        try source.device.launch(function, grid: (source.device.gridSize(work: tensor.count, perBlock: 256), 1, 1),
                                 block: (256, 1, 1),
                                 [source.argument, try GPU(result).argument, .int(tensor.count),
                                  .bytes(DenseKernels.dims(shape: tensor.shape, a: tensor.strides, b: tensor.strides))])
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
}

extension BackendSlot.CUDA: BackendModule {
    package static var backend: any DeviceBackend { CUDABackend.shared }
}

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
        return Tensor(storage: TensorStorage(allocation: allocation), dtype: dtype, shape: shape)
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
    static func gemmNT(x: GPU, w: GPU, y: GPU, m: Int, n: Int, k: Int, type: DType, bias: GPU?) throws {
        let blasType = BLASLt.DataType(type)!
        let description = GEMMDescription(m: n, n: m, k: k, transposeA: true, transposeB: false, lda: k, ldb: k,
                                          ldd: n, typeA: blasType, typeB: blasType, typeD: blasType,
                                          biasType: bias == nil ? nil : blasType, scaled: false)
        try x.device.blas().run(description, a: w, b: x, d: y, bias: bias)
    }
}

/// Compiles the kernel sources without a GPU, so that a machine with only NVRTC (no driver) can
/// check them: the variants the backend launches most, for one architecture.
package enum CUDAKernelCheck {
    /// Whether NVRTC can be loaded here (it needs no driver).
    package static var isNVRTCAvailable: Bool { (try? NVRTC()) != nil }

    /// Compiles a representative set of every kernel source's `-D` variants for `architecture`.
    /// - Returns: how many variants compiled.
    /// - Throws: ``TensorError/Code/backendFailure`` with NVRTC's log for the first that does not.
    package static func compileAll(architecture: String = "sm_90") throws -> Int {
        let nvrtc = try NVRTC()
        var variants: [(KernelSource, [String: Int])] = []
        for dtype in DType.allCases {
            variants.append((DenseKernels.source, ["ES": dtype.byteSize]))
            variants.append((DenseKernels.source, ["IN_DT": dtype.kernelCode, "OUT_DT": DType.bfloat16.kernelCode]))
            variants.append((DenseKernels.source, ["IN_DT": dtype.kernelCode, "B_DT": dtype.kernelCode]))
            variants.append((DenseKernels.source, ["IN_DT": dtype.kernelCode, "APPROX": 1]))
            variants.append((DenseKernels.source, ["OUT_DT": dtype.kernelCode]))
        }
        for src in 0...1 {
            for opk in 0...3 {
                for (ept, lanes, chunks) in [(8, 16, 1), (4, 32, 2), (1, 4, 1)] {
                    variants.append((QuantizationKernels.source, [
                        "ROWS": 1, "SRC": src, "IN_DT": 2, "OPK": opk, "DELTA_DT": 0, "ROUND_DT": 2, "TOWARD_ZERO": 0,
                        "EPT": ept, "G": lanes, "CPL": chunks, "BC": ept * lanes * chunks]))
                }
                variants.append((QuantizationKernels.source, [
                    "BLOCKS": 1, "SRC": src, "IN_DT": 1, "OPK": opk, "DELTA_DT": 2, "ROUND_DT": 0, "TOWARD_ZERO": 1,
                    "BR": 128, "BC": 100]))
            }
        }
        for out in [DType.float32, .bfloat16, .float16, .float8E4M3FN] {
            variants.append((QuantizationKernels.source, ["DEQUANT": 1, "SRC": 1, "OUT_DT": out.kernelCode, "EPT": 16,
                                                          "BR": 128, "BC": 96, "TOWARD_ZERO": 0]))
            variants.append((QuantizationKernels.source, ["FP8": 1, "SRC": 2, "OUT_DT": out.kernelCode, "EPT": 16,
                                                          "OPK": 1, "ROUND_DT": out.kernelCode, "TOWARD_ZERO": 0]))
            variants.append((QuantizationKernels.source, ["FP8": 1, "SRC": 0, "IN_DT": out.kernelCode, "EPT": 4,
                                                          "TOWARD_ZERO": 0]))
            variants.append((LinearKernels.source, ["W8A8": 1, "OUT_DT": out.kernelCode, "BIAS_DT": 2]))
            for wq in 0...1 {
                variants.append((LinearKernels.source, ["GEMV": 1, "X_DT": out.kernelCode, "OUT_DT": out.kernelCode,
                                                        "WQ": wq, "MT": 2, "EPT": 16, "BR": 128, "BC": 128,
                                                        "BIAS_DT": 0]))
            }
        }
        variants.append((BlockwiseINT8GEMM.portable, [:]))
        variants.append((BlockwiseINT8GEMM.hopper, [:]))
        for (source, defines) in variants {
            let options = defines.sorted { $0.key < $1.key }.map { "-D\($0.key)=\($0.value)" }
            _ = try nvrtc.compile(source.text, name: source.name + ".cu",
                                  architecture: source.needsArchSpecific ? "sm_90a" : architecture,
                                  options: options + CUDADevice.compileOptions(source))
        }
        return variants.count
    }
}
