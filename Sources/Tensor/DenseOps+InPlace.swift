/// In-place forms of the elementwise and row ops, for a tensor whose old value is not needed again
/// (a layer's intermediate activation): `x` becomes the result, bit for bit what the out-of-place op
/// returns, written over `x`'s own bytes when `x` is the only owner of a contiguous, writable buffer, so
/// no new buffer is mapped and faulted in and the data is written where it was just read. A tensor that
/// shares its storage (a copy, a view) or is strided is copied first, so no other tensor ever sees the
/// change: value semantics are kept.
extension DenseOps {
    /// `x = gelu(x)`, as ``gelu(_:approximation:)``.
    public static func gelu(inPlace x: inout Tensor, approximation: GeluApproximation = .none) throws {
        try checkFloat(x, "gelu input")
        try DeviceBackends.backend(for: x.device).geluInPlace(&x, approximation: approximation)
    }

    /// `x = x + y`, `y` broadcast to `x`'s shape (NumPy rules, the result keeps `x`'s shape and dtype).
    /// - Throws: ``TensorError/Code/shapeMismatch`` when broadcasting would change `x`'s shape.
    public static func add(inPlace x: inout Tensor, _ y: Tensor) throws {
        try checkFloat(x, "add lhs")
        try checkFloat(y, "add rhs")
        guard try broadcastShape(x.shape, y.shape) == x.shape else {
            throw TensorError(.shapeMismatch, "add(inPlace:): \(y.shape) does not broadcast to \(x.shape), the "
                + "shape of the tensor written in place; use the out-of-place add")
        }
        try sameDevice([x, y], op: "add")
        try DeviceBackends.backend(for: x.device).addInPlace(&x, y)
    }

    /// `x = softmax(x + mask)` over the last dimension, as ``softmax(_:additiveMask:)``.
    public static func softmax(inPlace x: inout Tensor, additiveMask: Tensor?) throws {
        try checkSoftmax(x, additiveMask: additiveMask)
        try DeviceBackends.backend(for: x.device).softmaxInPlace(&x, additiveMask: additiveMask)
    }

    /// `x = x * factor`, as ``scaled(_:by:)``.
    public static func scaled(inPlace x: inout Tensor, by factor: Float) throws {
        try checkDense(x, "scaled input")
        try DeviceBackends.backend(for: x.device).scaleInPlace(&x, by: factor)
    }
}
