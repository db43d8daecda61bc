import QuantizedLinear

/// A linear layer `y = x W^T + b` whose weight is dense or quantized with any registered layout.
///
/// The counterpart of ComfyUI's `MixedPrecisionOps.Linear` and mlx-swift's `QuantizedLinear`: the
/// same layer type holds a float weight or a ``QuantizedTensor`` (block-wise INT8, FP8, or a layout
/// from another module), and calling it dispatches to that layout's kernels. With a quantized weight,
/// ``floatInput`` chooses W8A8 (the float input is quantized on the fly,
/// ``LinearOptions/FloatInputMode/quantizeInput``) or weight-only (the weight is used dequantized,
/// ``LinearOptions/FloatInputMode/dequantizeWeight``).
///
/// ```swift
/// var layer = try Linear(checkpoint, prefix: "encoder.layer.0.intermediate.dense")
/// try layer.quantize(layout: BlockWiseINT8Layout.weight(blockSize: 128))
/// let y = try layer(x)          // x (..., 384) -> y (..., 1536), in x's dtype
/// ```
public struct Linear: Module {
    /// `(outFeatures, inFeatures)`, dense or quantized.
    public private(set) var weight: AnyTensor
    /// `(outFeatures)` or `nil`.
    public private(set) var bias: Tensor?
    /// What a quantized weight does with a float input: quantize it (W8A8) or use the weight
    /// dequantized (weight-only). Ignored while the weight is dense.
    public var floatInput: LinearOptions.FloatInputMode

    /// - Throws: ``TensorError/Code/shapeMismatch`` when the weight is not 2-D or the bias not
    ///   `(outFeatures)`, ``TensorError/Code/deviceMismatch`` when they are on different devices.
    public init(weight: some TensorOperand, bias: Tensor? = nil,
                floatInput: LinearOptions.FloatInputMode = .quantizeInput) throws {
        let weight = weight.anyTensor
        guard weight.shape.count == 2 else {
            throw TensorError(.shapeMismatch, "Linear: the weight must be 2-D (out_features, in_features), got "
                + "\(weight.shape)")
        }
        if let bias {
            guard bias.shape == [weight.shape[0]] else {
                throw TensorError(.shapeMismatch, "Linear: the bias has shape \(bias.shape), the weight "
                    + "\(weight.shape) needs [\(weight.shape[0])]")
            }
            guard bias.device == weight.device else {
                throw TensorError(.deviceMismatch, "Linear: the weight is on \(weight.device), the bias on "
                    + "\(bias.device); move both with `moved(to:)`")
            }
        }
        self.weight = weight
        self.bias = bias
        self.floatInput = floatInput
    }

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }
    public var isQuantized: Bool { weight.quantizedTensor != nil }
    public var device: Device { weight.device }

    /// Bytes of the weight (codes and scales when quantized) and the bias.
    public var byteCount: Int {
        let weightBytes = switch weight {
        case .dense(let t): t.count * t.dtype.byteSize
        case .quantized(let q): q.byteCount
        }
        return weightBytes + (bias.map { $0.count * $0.dtype.byteSize } ?? 0)
    }

    /// `x W^T + b` for `x` `(..., inFeatures)`: `(..., outFeatures)` in the input's float dtype.
    /// - Throws: ``TensorError`` for a mismatched input, or a forbidden fallback.
    public func callAsFunction(_ x: some TensorOperand) throws -> Tensor {
        try linear(x, weight, bias: bias, options: LinearOptions(floatInput: floatInput)).requireDense()
    }

    /// `x` prepared once for several linears that read it (attention's query, key and value): quantized
    /// the way each of them would quantize it when all are W8A8 (``floatInput`` `.quantizeInput`) with
    /// weights that take the same input layout (INT8 with the same K blocks and rounding, or FP8), so
    /// the input is quantized once instead of once per layer; `x` itself otherwise. The codes are the ones
    /// each layer would make, so on the CPU each result is bit-identical to the layer's on `x`; on a GPU at
    /// decode sizes (M <= 16) a float input can take a kernel that quantizes inside the GEMV, whose
    /// arithmetic differs within the layout's tolerance.
    ///
    /// ```swift
    /// let input = try Linear.sharedInput(x, for: [query, key, value])
    /// let (q, k, v) = (try query(input), try key(input), try value(input))
    /// ```
    public static func sharedInput(_ x: Tensor, for layers: [Linear]) throws -> AnyTensor {
        let weightLayouts = layers.compactMap { $0.floatInput == .quantizeInput ? $0.weight.quantizedTensor?.layout : nil }
        guard !layers.isEmpty, weightLayouts.count == layers.count,
              let quantized = try SharedLinearInput.quantized(x, weightLayouts: weightLayouts) else { return .dense(x) }
        return .quantized(quantized)
    }

    /// Replaces a dense weight by its quantization with `layout` and sets ``floatInput``.
    /// - Throws: ``TensorError/Code/unsupportedOperation`` when the weight is already quantized, and the
    ///   quantizer's errors (non-finite weights, say).
    public mutating func quantize(layout: some QuantizedLayout,
                                  floatInput: LinearOptions.FloatInputMode = .quantizeInput) throws {
        guard case .dense(let dense) = weight else {
            throw TensorError(.unsupportedOperation, "Linear: the weight is already quantized (\(weight.shape), "
                + "\(weight.quantizedTensor!.layout)); load the float checkpoint to quantize it differently")
        }
        weight = .quantized(try QuantizedTensor.fromFloat(dense, layout: layout))
        self.floatInput = floatInput
    }

    /// The layer with weight and bias on `device`.
    public func moved(to device: Device) throws -> Linear {
        var copy = self
        copy.weight = switch weight {
        case .dense(let t): .dense(try t.to(device))
        case .quantized(let q): .quantized(try q.to(device))
        }
        copy.bias = try bias?.to(device)
        return copy
    }

    public mutating func updateLinears(_ body: (String, inout Linear) throws -> Void) rethrows {
        try body("", &self)
    }

    public mutating func updateTensors(_ body: (String, inout Tensor) throws -> Void) rethrows {}
}
