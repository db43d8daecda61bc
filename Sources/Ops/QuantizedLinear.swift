@_exported import QLCPU
@_exported import QLCUDA
@_exported import QLCheckpoints
@_exported import QLLayouts
@_exported import QLQuantized
@_exported import QLTensor
@_exported import QLTokenizers

// The public ops. Each accepts dense or quantized tensors in any position and returns what the
// handler for the operands' layout returns (dense, or quantized where that is the point); with no
// handler, the fallback dequantizes and runs the dense op, under `FallbackPolicy`.

/// `y = x W^T + b`.
///
/// With a quantized weight and a dense input, `options.floatInput` chooses between quantizing the
/// input on the fly (W8A8, the default) and dequantizing the weight (weight-only). Leading input
/// dimensions are batch dimensions. Set `options.outputLayout` to get the output quantized.
/// - Parameters:
///   - input: `(..., K)`.
///   - weight: `(N, K)`.
///   - bias: `(N)` or `nil`.
/// - Returns: `(..., N)`, in the input's float dtype, or quantized with `options.outputLayout`.
/// - Throws: ``TensorError`` for mismatched shapes, devices or dtypes, or a forbidden fallback.
public func linear(_ input: some TensorOperand, _ weight: some TensorOperand, bias: (any TensorOperand)? = nil,
                   options: LinearOptions = LinearOptions()) throws -> AnyTensor {
    var attributes = OpAttributes()
    attributes.linear = options
    return try LayoutRegistry.shared.dispatch(
        OpCall(.linear, [input.anyTensor, weight.anyTensor, bias?.anyTensor], attributes))
}

/// `a @ b` over the last two dimensions.
public func matmul(_ a: some TensorOperand, _ b: some TensorOperand) throws -> AnyTensor {
    return try LayoutRegistry.shared.dispatch(OpCall(.matmul, [a.anyTensor, b.anyTensor]))
}

/// GELU, exact (erf) or tanh form. On a quantized activation it returns a quantized tensor of the
/// same layout (dequantize, gelu, re-quantize in one handler).
public func gelu(_ x: some TensorOperand, approximation: GeluApproximation = .none) throws -> AnyTensor {
    var attributes = OpAttributes()
    attributes.geluApproximation = approximation
    return try LayoutRegistry.shared.dispatch(OpCall(.gelu, [x.anyTensor], attributes))
}

/// Elementwise `a + b` with broadcasting.
public func add(_ a: some TensorOperand, _ b: some TensorOperand) throws -> AnyTensor {
    return try LayoutRegistry.shared.dispatch(OpCall(.add, [a.anyTensor, b.anyTensor]))
}

/// Swaps two axes. On a block-wise INT8 tensor the scale grid and block shape swap with them
/// (exact, no re-quantization).
public func transpose(_ x: some TensorOperand, _ a: Int = -2, _ b: Int = -1) throws -> AnyTensor {
    var attributes = OpAttributes()
    attributes.transposeAxes = (a, b)
    return try LayoutRegistry.shared.dispatch(OpCall(.transpose, [x.anyTensor], attributes))
}

/// The dense float tensor, in `dtype` or the original dtype.
public func dequantize(_ x: some TensorOperand, to dtype: DType? = nil) throws -> Tensor {
    var attributes = OpAttributes()
    attributes.outputDType = dtype
    return try LayoutRegistry.shared.dispatch(OpCall(.dequantize, [x.anyTensor], attributes)).dequantized()
}

/// `W + strength * delta`, re-quantized with the weight's own layout (a LoRA merge).
public func applyWeightUpdate(_ weight: some TensorOperand, delta: some TensorOperand, strength: Float = 1)
    throws -> AnyTensor {
    var attributes = OpAttributes()
    attributes.deltaStrength = strength
    return try LayoutRegistry.shared.dispatch(OpCall(.weightUpdate, [weight.anyTensor, delta.anyTensor], attributes))
}

/// Registers the built-in layouts' handlers now (they are otherwise registered the first time a
/// tensor of that layout is made), so that coverage reports list them.
public func registerBuiltinLayouts() {
    LayoutRegistry.shared.ensureRegistered(BlockWiseINT8Layout.self)
    LayoutRegistry.shared.ensureRegistered(TensorCoreFP8Layout.self)
}
