import Foundation

/// The dense (unquantized) ops, on whichever device holds the operands: each checks its operands
/// and runs on the ``DeviceBackend`` of their device.
///
/// Float16, bfloat16 and float8 operands are computed in float32 and the result is written in
/// the first operand's dtype. These are also what the quantized fallback runs after dequantizing.
public enum DenseOps {
    /// `y = x W^T + b`.
    /// - Parameters:
    ///   - input: `(..., K)`, any float dtype; every leading dimension is a batch dimension.
    ///   - weight: `(N, K)`.
    ///   - bias: `(N)` or `nil`.
    /// - Returns: `(..., N)` in the input's dtype.
    /// - Throws: ``TensorError/Code/shapeMismatch`` when K or N disagree,
    ///   ``TensorError/Code/unsupportedDType`` for integer operands.
    public static func linear(_ input: Tensor, _ weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
        try checkFloat(input, "linear input")
        try checkFloat(weight, "linear weight")
        guard input.rank >= 1, weight.rank == 2 else {
            throw TensorError(.shapeMismatch, "linear needs an input of rank >= 1 and a 2-D weight (N, K); "
                + "got input \(input.shape) and weight \(weight.shape)")
        }
        let k = input.shape[input.rank - 1]
        let n = weight.shape[0]
        guard weight.shape[1] == k else {
            throw TensorError(.shapeMismatch, "linear: input has K = \(k) but weight \(weight.shape) has K = "
                + "\(weight.shape[1]); the weight must be (out_features, in_features)")
        }
        if let bias {
            try checkFloat(bias, "linear bias")
            guard bias.shape == [n] else {
                throw TensorError(.shapeMismatch, "linear: bias has shape \(bias.shape), expected [\(n)]")
            }
        }
        try sameDevice([input, weight] + (bias.map { [$0] } ?? []), op: "linear")
        return try DeviceBackends.backend(for: input.device).linear(input, weight, bias: bias)
    }

    /// Matrix product `a @ b` with batch dimensions: `(..., M, K) @ (..., K, N)`; a 2-D `b` is
    /// shared by every batch of `a`; otherwise the batch dimensions must match.
    public static func matmul(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try checkFloat(a, "matmul lhs")
        try checkFloat(b, "matmul rhs")
        guard a.rank >= 2, b.rank >= 2 else {
            throw TensorError(.shapeMismatch, "matmul needs operands of rank >= 2, got \(a.shape) and \(b.shape)")
        }
        guard a.shape[a.rank - 1] == b.shape[b.rank - 2] else {
            throw TensorError(.shapeMismatch, "matmul: inner dimensions differ, \(a.shape) @ \(b.shape)")
        }
        let batchA = Array(a.shape.dropLast(2))
        let batchB = Array(b.shape.dropLast(2))
        guard b.rank == 2 || batchA == batchB else {
            throw TensorError(.shapeMismatch, "matmul: batch dimensions \(batchA) and \(batchB) differ; "
                + "use equal batch dimensions or a 2-D right operand")
        }
        try sameDevice([a, b], op: "matmul")
        return try DeviceBackends.backend(for: a.device).matmul(a, b)
    }

    /// Elementwise GELU in the chosen form; same shape and dtype as `x`.
    public static func gelu(_ x: Tensor, approximation: GeluApproximation = .none) throws -> Tensor {
        try checkFloat(x, "gelu input")
        return try DeviceBackends.backend(for: x.device).gelu(x, approximation: approximation)
    }

    /// Elementwise `a + b` with NumPy broadcasting; the result has `a`'s dtype.
    public static func add(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try checkFloat(a, "add lhs")
        try checkFloat(b, "add rhs")
        _ = try broadcastShape(a.shape, b.shape)
        try sameDevice([a, b], op: "add")
        return try DeviceBackends.backend(for: a.device).add(a, b)
    }

    /// The broadcast result shape of two shapes, NumPy rules.
    public static func broadcastShape(_ a: [Int], _ b: [Int]) throws -> [Int] {
        let rank = max(a.count, b.count)
        let paddedA = [Int](repeating: 1, count: rank - a.count) + a
        let paddedB = [Int](repeating: 1, count: rank - b.count) + b
        return try zip(paddedA, paddedB).map { x, y in
            if x == y || y == 1 { return x }
            if x == 1 { return y }
            throw TensorError(.shapeMismatch, "shapes \(a) and \(b) cannot be broadcast together")
        }
    }

    /// Contiguous strides of `shape`, right-aligned to `target`, with 0 on broadcast dimensions.
    package static func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
        let own = ShapeArithmetic.rowMajorStrides(ofValid: shape)
        let pad = target.count - shape.count
        return target.indices.map { axis in
            axis < pad || shape[axis - pad] == 1 ? 0 : own[axis - pad]
        }
    }

    static func checkFloat(_ tensor: Tensor, _ role: String) throws {
        guard tensor.dtype.isFloatingPoint else {
            throw TensorError(.unsupportedDType, "\(role) has dtype \(tensor.dtype); dense ops take float32, "
                + "float16, bfloat16 or float8 tensors (dequantize integer data first)")
        }
    }

    static func sameDevice(_ tensors: [Tensor], op: String) throws {
        let devices = Set(tensors.map(\.device))
        guard devices.count <= 1 else {
            throw TensorError(.deviceMismatch, "\(op): operands are on different devices "
                + "(\(devices.map(\.description).sorted().joined(separator: ", "))); move them with `.to(_:)`")
        }
    }
}
