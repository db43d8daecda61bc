import QLTensor

/// A tensor stored as quantized codes and scales, standing wherever a tensor can stand.
///
/// `data` holds the codes (for the built-in layouts, one code per element, same shape as the
/// tensor), `scale` the float32 dequantization factors whose shape the layout defines. The layout
/// value carries the typed parameters. Ops that receive a `QuantizedTensor` are routed through the
/// ``LayoutRegistry``.
public struct QuantizedTensor: Sendable {
    public let layout: any QuantizedLayout
    public let data: Tensor
    public let scale: Tensor
    /// The logical shape (the shape of the float tensor it stands for).
    public let shape: [Int]
    /// The float dtype the tensor was quantized from and dequantizes to by default.
    public let originalDType: DType

    /// Assembles a quantized tensor from parts, checking them against the layout.
    /// - Throws: ``TensorError`` when the parts do not fit the layout (wrong dtype or scale shape).
    public init(layout: any QuantizedLayout, data: Tensor, scale: Tensor, shape: [Int], originalDType: DType) throws {
        guard originalDType.isFloatingPoint else {
            throw TensorError(.unsupportedDType,
                              "a quantized tensor must stand for a float dtype, not \(originalDType)")
        }
        guard data.device == scale.device else {
            throw TensorError(.deviceMismatch, "codes are on \(data.device) but scales on \(scale.device)")
        }
        try layout.validate(data: data, scale: scale, shape: shape)
        self.init(unchecked: layout, data: data, scale: scale, shape: shape, originalDType: originalDType)
        LayoutRegistry.shared.ensureRegistered(type(of: layout))
    }

    /// For layouts' own code, whose parts are right by construction.
    public init(unchecked layout: any QuantizedLayout, data: Tensor, scale: Tensor, shape: [Int],
                originalDType: DType) {
        self.layout = layout
        self.data = data
        self.scale = scale
        self.shape = shape
        self.originalDType = originalDType
    }

    /// Quantizes `tensor` with `layout` (its parameters travel with it).
    ///
    /// ```swift
    /// let w = try QuantizedTensor.fromFloat(weight, layout: BlockWiseINT8Layout.weight(blockSize: 128))
    /// ```
    public static func fromFloat(_ tensor: Tensor, layout: some QuantizedLayout) throws -> QuantizedTensor {
        LayoutRegistry.shared.ensureRegistered(type(of: layout))
        return try LayoutRegistry.shared.quantize(tensor, layout: layout)
    }

    /// The float tensor this stands for, in the original dtype or `dtype`; dispatched like any op.
    public func dequantize(to dtype: DType? = nil) throws -> Tensor {
        var attributes = OpAttributes()
        attributes.outputDType = dtype
        return try LayoutRegistry.shared.dispatch(
            OpCall(.dequantize, [.quantized(self)], attributes)).dequantized()
    }

    public var rank: Int { shape.count }
    public var device: Device { data.device }
    public var layoutName: String { layout.name }

    /// Bytes held by codes and scales together.
    public var byteCount: Int { data.count * data.dtype.byteSize + scale.count * scale.dtype.byteSize }

    /// The same tensor with codes and scales moved to `device` (a generic utility: no handler).
    public func to(_ device: Device) throws -> QuantizedTensor {
        var attributes = OpAttributes()
        attributes.targetDevice = device
        return try LayoutRegistry.shared.dispatch(OpCall(.toDevice, [.quantized(self)], attributes)).requireQuantized()
    }

    /// The same tensor with contiguous codes and scales (a generic utility).
    public func contiguous() throws -> QuantizedTensor {
        try LayoutRegistry.shared.dispatch(OpCall(.contiguous, [.quantized(self)])).requireQuantized()
    }

    /// A copy that shares no storage (a generic utility).
    public func clone() throws -> QuantizedTensor {
        try LayoutRegistry.shared.dispatch(OpCall(.clone, [.quantized(self)])).requireQuantized()
    }

    /// This tensor with each component replaced by `transform` of it (same layout and shape).
    public func mapComponents(_ transform: (Tensor) throws -> Tensor) rethrows -> QuantizedTensor {
        QuantizedTensor(unchecked: layout, data: try transform(data), scale: try transform(scale), shape: shape,
                        originalDType: originalDType)
    }
}

extension QuantizedTensor: CustomStringConvertible {
    public var description: String {
        "QuantizedTensor(\(layout), shape: \(shape), original: \(originalDType), device: \(device))"
    }
}
