/// The element types a ``Tensor`` can hold.
public enum DType: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case float32
    case float16
    case bfloat16
    /// 8-bit float, 1 sign, 4 exponent (bias 7), 3 mantissa bits, no infinities: ``Float8E4M3FN``.
    case float8E4M3FN
    case int8
    case uint8
    case int32

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float32, .int32: 4
        case .float16, .bfloat16: 2
        case .float8E4M3FN, .int8, .uint8: 1
        }
    }

    /// Whether the type is one of the floating-point types that a quantized tensor dequantizes to.
    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float16, .bfloat16, .float8E4M3FN: true
        case .int8, .uint8, .int32: false
        }
    }

    public var description: String { rawValue }
}
