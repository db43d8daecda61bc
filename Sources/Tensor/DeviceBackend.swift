import Foundation

/// The dense ops of one device kind: what ``DenseOps`` runs once it has checked the operands.
///
/// The CPU backend (module `QLCPU`) and the CUDA backend (module `QLCUDA`) implement it; a backend
/// module is found the first time a tensor of its kind needs it (``DeviceBackends``), so nothing
/// has to be registered by hand. Every method receives operands that ``DenseOps`` has checked
/// (float dtypes, matching shapes, one device of this backend's kind).
public protocol DeviceBackend: AnyObject, Sendable {
    var kind: DeviceKind { get }
    /// `x W^T + b` for float tensors; the output has the input's dtype.
    func linear(_ input: Tensor, _ weight: Tensor, bias: Tensor?) throws -> Tensor
    func matmul(_ a: Tensor, _ b: Tensor) throws -> Tensor
    func gelu(_ x: Tensor, approximation: GeluApproximation) throws -> Tensor
    func add(_ a: Tensor, _ b: Tensor) throws -> Tensor
    /// Layer norm over the last dimension: y = (x - mean) / sqrt(var + eps) * weight + bias (biased variance).
    func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, epsilon: Float) throws -> Tensor
    /// Softmax over the last dimension of x ([B, ..., C]); `additiveMask` [B, C] (float32) is added to every row
    /// of x[b] before the softmax (BERT's attention mask: 0 or a large negative number).
    /// Rows that are all -inf give 0s.
    func softmax(_ x: Tensor, additiveMask: Tensor?) throws -> Tensor
    /// Rows of `table` ([V, D], any dtype, copied as bytes) gathered by `indices` (int32, any shape) -> shape + [D].
    /// Out of range throws.
    func embedding(_ table: Tensor, indices: Tensor) throws -> Tensor
    /// Elementwise a * b; b has a's shape or a suffix of it (broadcast over leading dims).
    func multiply(_ a: Tensor, _ b: Tensor) throws -> Tensor
    /// x * factor.
    func scaled(_ x: Tensor, by factor: Float) throws -> Tensor
    /// a [..., M, K] x b [..., K, N] (or b [..., N, K] when transposeB) -> [..., M, N]; batch dims equal.
    func batchedMatmul(_ a: Tensor, _ b: Tensor, transposeB: Bool) throws -> Tensor
    /// x [B, S, D], mask [B, S] (int32 0/1 or float 0/1) -> [B, D]: sum_s mask*x / max(sum_s mask, 1e-9).
    func maskedMeanPool(_ x: Tensor, mask: Tensor) throws -> Tensor
    /// x / max(||x||_2, eps) over the last dimension (eps = 1e-12 in sentence-transformers).
    func l2Normalize(_ x: Tensor, epsilon: Float) throws -> Tensor
    /// In-place forms (``DenseOps/gelu(inPlace:approximation:)`` and its siblings): `x` becomes the op's
    /// result, bit for bit what the out-of-place op returns. A backend that can write into `x`'s buffer
    /// does so when `x` owns it alone (contiguous, unshared, writable) and copies `x` first otherwise;
    /// the defaults run the out-of-place op and assign its result.
    func geluInPlace(_ x: inout Tensor, approximation: GeluApproximation) throws
    /// `x = x + y`, `y` broadcast to `x`'s shape (the result has `x`'s shape and dtype).
    func addInPlace(_ x: inout Tensor, _ y: Tensor) throws
    func softmaxInPlace(_ x: inout Tensor, additiveMask: Tensor?) throws
    func scaleInPlace(_ x: inout Tensor, by factor: Float) throws
    /// `softmax(q k^T + mask) v` over batch x heads (``DenseOps/attention(query:key:value:additiveMask:)``),
    /// the bits of the three ops in a row. The default runs them.
    func attention(query q: Tensor, key k: Tensor, value v: Tensor, additiveMask: Tensor?) throws -> Tensor
}

extension DeviceBackend {
    public func geluInPlace(_ x: inout Tensor, approximation: GeluApproximation) throws {
        x = try gelu(x, approximation: approximation)
    }

    public func addInPlace(_ x: inout Tensor, _ y: Tensor) throws { x = try add(x, y) }

    public func softmaxInPlace(_ x: inout Tensor, additiveMask: Tensor?) throws {
        x = try softmax(x, additiveMask: additiveMask)
    }

    public func scaleInPlace(_ x: inout Tensor, by factor: Float) throws { x = try scaled(x, by: factor) }

    public func attention(query q: Tensor, key k: Tensor, value v: Tensor, additiveMask: Tensor?) throws -> Tensor {
        try composedAttention(query: q, key: k, value: v, additiveMask: additiveMask)
    }

    /// ``attention(query:key:value:additiveMask:)`` as the three ops: `q k^T`, softmax in place, `p v`.
    public func composedAttention(query q: Tensor, key k: Tensor, value v: Tensor, additiveMask: Tensor?) throws
        -> Tensor {
        var probabilities = try batchedMatmul(q, k, transposeB: true)
        try softmaxInPlace(&probabilities, additiveMask: additiveMask)
        return try batchedMatmul(probabilities, v, transposeB: false)
    }
}

/// Memory on a device other than the host, provided by that device's backend (host memory is
/// built into ``TensorStorage``).
public protocol DeviceMemory: DeviceBackend {
    func allocate(byteCount: Int, on device: Device) throws -> any DeviceAllocation
    func allocateZeroed(byteCount: Int, on device: Device) throws -> any DeviceAllocation
    func copyFromHost(_ source: UnsafeRawPointer, byteCount: Int, into allocation: any DeviceAllocation) throws
    /// Copies the contiguous tensor's bytes into host memory.
    func copyToHost(_ tensor: Tensor, into destination: UnsafeMutableRawPointer, byteCount: Int) throws
    func clone(_ tensor: Tensor) throws -> Tensor
    func contiguous(_ tensor: Tensor) throws -> Tensor
    func convert(_ tensor: Tensor, to dtype: DType) throws -> Tensor
}

/// The backend of each device kind: one registered with ``register(_:)``, else the backend module
/// linked into the program (found through ``BackendModule``, once per kind).
public enum DeviceBackends {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var registered: [DeviceKind: any DeviceBackend] = [:]

    /// The backend module linked for each kind, looked up once.
    private static let linked: [DeviceKind: any DeviceBackend] = {
        var found: [DeviceKind: any DeviceBackend] = [:]
        for kind in DeviceKind.allCases {
            if let module = BackendSlot.type(for: kind) as? any BackendModule.Type { found[kind] = module.backend }
        }
        return found
    }()

    /// Makes `backend` serve every device of its kind, in place of the linked backend module.
    public static func register(_ backend: any DeviceBackend) {
        lock.withLock { registered[backend.kind] = backend }
    }

    /// The backend serving `device`.
    /// - Throws: ``TensorError/Code/deviceUnavailable`` when no backend module for its kind is linked.
    public static func backend(for device: Device) throws -> any DeviceBackend {
        let found = lock.withLock { registered[device.kind] } ?? linked[device.kind]
        guard let found else {
            throw TensorError(.deviceUnavailable, "no backend for \(device) is linked into this program; depend "
                + "on the `QuantizedLinear` product, which links the CPU (QLCPU) and CUDA (QLCUDA) backends")
        }
        return found
    }

    /// The memory functions of `device`'s backend (not the host's: host memory is built in).
    public static func memory(for device: Device) throws -> any DeviceMemory {
        guard let memory = try backend(for: device) as? any DeviceMemory else {
            throw TensorError(.unsupportedOperation, "the \(device.kind.rawValue) backend manages no device memory")
        }
        return memory
    }

    /// The quantized kernels of `device`'s backend (the kernel contract the layouts call).
    package static func kernels(for device: Device) throws -> any QuantizedKernels {
        guard let kernels = try backend(for: device) as? any QuantizedKernels else {
            throw TensorError(.unsupportedOperation, "the \(device.kind.rawValue) backend has no quantized kernels")
        }
        return kernels
    }
}

/// What a backend module declares so that ``DeviceBackends`` finds it without a registration call:
/// it conforms its kind's ``BackendSlot`` type, e.g. `extension BackendSlot.CPU: BackendModule`.
package protocol BackendModule {
    static var backend: any DeviceBackend { get }
}

/// One marker type per device kind, for the backend modules' ``BackendModule`` conformances.
package enum BackendSlot {
    package enum CPU {}
    package enum CUDA {}

    static func type(for kind: DeviceKind) -> Any.Type {
        switch kind {
        case .cpu: CPU.self
        case .cuda: CUDA.self
        }
    }
}
