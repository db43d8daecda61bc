import QLTensor

/// A way of storing a float tensor as quantized codes plus scales.
///
/// A layout value carries its typed parameters (block shape, rounding, ...), and its type has a
/// stable ``name`` that checkpoints and the registry use as its key. A layout defines the plain
/// semantics of ``quantize(_:)`` and ``dequantize(_:to:)``: these are both the oracle the tests
/// compare every fast path against and what the fallback uses. Native handlers for ops are
/// registered in ``registerHandlers(in:)``, which the registry calls the first time it meets the
/// layout; ops without a handler fall back to dequantize-and-run-the-dense-op.
///
/// A layout defined in another module conforms to this protocol and registers what it supports;
/// nothing in this package needs to change.
public protocol QuantizedLayout: Sendable, CustomStringConvertible {
    /// The stable name, for example `"BlockWiseINT8Layout"`.
    static var name: String { get }

    /// Quantizes a dense float tensor.
    /// - Throws: ``TensorError`` for an unsupported dtype or shape, or non-finite values.
    func quantize(_ tensor: Tensor) throws -> QuantizedTensor

    /// The float tensor the codes stand for, in `dtype`.
    func dequantize(_ tensor: QuantizedTensor, to dtype: DType) throws -> Tensor

    /// Checks that codes and scales have the dtypes and shapes this layout needs for a tensor of
    /// logical shape `shape` (used when a quantized tensor is assembled from parts, e.g. a checkpoint).
    func validate(data: Tensor, scale: Tensor, shape: [Int]) throws

    /// Registers this layout's native op handlers.
    static func registerHandlers(in registry: LayoutRegistry)

    /// Whether `other` is the same layout with the same parameters.
    func isEqual(to other: any QuantizedLayout) -> Bool
}

extension QuantizedLayout {
    /// The layout type's stable name.
    public var name: String { Self.name }
}

extension QuantizedLayout where Self: Equatable {
    public func isEqual(to other: any QuantizedLayout) -> Bool {
        (other as? Self) == self
    }
}
