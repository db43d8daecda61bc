import QLTensor

/// A dense or a quantized tensor: what ops take and return.
public enum AnyTensor: Sendable {
    case dense(Tensor)
    case quantized(QuantizedTensor)

    public var shape: [Int] {
        switch self {
        case .dense(let t): t.shape
        case .quantized(let q): q.shape
        }
    }

    public var device: Device {
        switch self {
        case .dense(let t): t.device
        case .quantized(let q): q.device
        }
    }

    /// The float dtype of the values: the dense dtype, or the quantized tensor's original dtype.
    public var floatDType: DType {
        switch self {
        case .dense(let t): t.dtype
        case .quantized(let q): q.originalDType
        }
    }

    public var denseTensor: Tensor? {
        if case .dense(let t) = self { return t }
        return nil
    }

    public var quantizedTensor: QuantizedTensor? {
        if case .quantized(let q) = self { return q }
        return nil
    }

    /// A dense tensor: this one, or the dequantization of the quantized one.
    public func dequantized() throws -> Tensor {
        switch self {
        case .dense(let t): t
        case .quantized(let q): try q.dequantize()
        }
    }

    /// The dense tensor, or an error saying the op returned a quantized one (ops whose result is
    /// dense by definition use this, so a handler that returned a quantized tensor is not hidden).
    public func requireDense() throws -> Tensor {
        guard case .dense(let t) = self else {
            throw TensorError(.unsupportedOperation, "expected a dense result, got a quantized tensor \(shape)")
        }
        return t
    }

    /// The quantized tensor, or an error saying the op returned a dense one.
    public func requireQuantized() throws -> QuantizedTensor {
        guard case .quantized(let q) = self else {
            throw TensorError(.unsupportedOperation, "expected a quantized result, got a dense tensor \(shape)")
        }
        return q
    }
}

/// Anything that can be passed to an op: ``Tensor``, ``QuantizedTensor`` or ``AnyTensor``.
public protocol TensorOperand: Sendable {
    var anyTensor: AnyTensor { get }
}

extension Tensor: TensorOperand {
    public var anyTensor: AnyTensor { .dense(self) }
}

extension QuantizedTensor: TensorOperand {
    public var anyTensor: AnyTensor { .quantized(self) }
}

extension AnyTensor: TensorOperand {
    public var anyTensor: AnyTensor { self }
}
