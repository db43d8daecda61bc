/// Checks shared by every quantizer: float dtype, finite values.
public enum QuantizationInput {
    public static func check(_ tensor: Tensor, layout: String) throws {
        guard tensor.dtype.isFloatingPoint else {
            throw TensorError(.unsupportedDType, "\(layout) quantizes float tensors; got \(tensor.dtype)")
        }
    }

    /// Throws for the first NaN or infinity, naming its position.
    public static func checkFinite(_ values: UnsafeBufferPointer<Float>, shape: [Int], layout: String) throws {
        for (index, value) in values.enumerated() where !value.isFinite {
            throw TensorError(.nonFiniteValue, "\(layout): element \(index) of a tensor \(shape) is \(value); "
                + "quantizing it would write garbage. Remove NaN/infinity (check for overflow upstream) first")
        }
    }
}
