import Foundation

/// What a non-CPU backend provides so that dense tensors can live and compute on its devices.
///
/// The CPU is built in; the CUDA backend registers itself through ``DeviceBackends/register(_:)``.
/// Every method receives tensors already on one of the backend's devices.
public protocol DeviceBackend: AnyObject, Sendable {
    var kind: DeviceKind { get }
    func allocate(byteCount: Int, on device: Device) throws -> any DeviceAllocation
    func allocateZeroed(byteCount: Int, on device: Device) throws -> any DeviceAllocation
    func copyFromHost(_ source: UnsafeRawPointer, byteCount: Int, into allocation: any DeviceAllocation) throws
    /// Copies the contiguous tensor's bytes into host memory.
    func copyToHost(_ tensor: Tensor, into destination: UnsafeMutableRawPointer, byteCount: Int) throws
    func clone(_ tensor: Tensor) throws -> Tensor
    func contiguous(_ tensor: Tensor) throws -> Tensor
    func convert(_ tensor: Tensor, to dtype: DType) throws -> Tensor
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
    /// Rows of `table` ([V, D], float) gathered by `indices` (int32, any shape) -> shape + [D]. Out of range throws.
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
}

/// The registered non-CPU backends, by device kind.
public enum DeviceBackends {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var backends: [DeviceKind: any DeviceBackend] = [:]

    /// Makes `backend` serve every device of its kind (replacing an earlier one).
    public static func register(_ backend: any DeviceBackend) {
        lock.withLock { backends[backend.kind] = backend }
    }

    public static func backend(for device: Device) throws -> any DeviceBackend {
        let found = lock.withLock { backends[device.kind] }
        guard let found else {
            throw TensorError(.deviceUnavailable, "no backend is registered for \(device); "
                + "the CUDA backend registers itself when the Ops module is first used on a machine with CUDA")
        }
        return found
    }
}
