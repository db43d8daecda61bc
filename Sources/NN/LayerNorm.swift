import QuantizedLinear

/// Layer normalisation over the last dimension:
/// `y = (x - mean) / sqrt(var + epsilon) * weight + bias` (biased variance).
public struct LayerNorm: Module {
    /// `(D)`.
    public private(set) var weight: Tensor
    /// `(D)`.
    public private(set) var bias: Tensor
    public let epsilon: Float

    /// - Throws: ``TensorError/Code/shapeMismatch`` unless weight and bias are both `(D)`.
    public init(weight: Tensor, bias: Tensor, epsilon: Float) throws {
        guard weight.rank == 1, bias.shape == weight.shape else {
            throw TensorError(.shapeMismatch, "LayerNorm: weight \(weight.shape) and bias \(bias.shape) must both be "
                + "1-D of the normalised size")
        }
        self.weight = weight
        self.bias = bias
        self.epsilon = epsilon
    }

    /// `x` `(..., D)` normalised, in its dtype.
    public func callAsFunction(_ x: some TensorOperand) throws -> Tensor {
        try layerNorm(x, weight: weight, bias: bias, epsilon: epsilon)
    }

    public mutating func updateLinears(_ body: (String, inout Linear) throws -> Void) rethrows {}

    public mutating func updateTensors(_ body: (String, inout Tensor) throws -> Void) rethrows {
        try body("weight", &weight)
        try body("bias", &bias)
    }
}
