import QLTensor

/// The element types a safetensors header can name, as spelled in its `dtype` field.
///
/// Every one of them can be read and copied as raw bytes (sizes are checked against the shape); the
/// ones with a ``tensorDType`` can also become a ``Tensor``. The rest (`F64`, `I64`, `BOOL`, ...) are
/// carried through conversions unchanged, and asking for them as a tensor is an `unsupportedDType`
/// error that names the tensor.
public enum SafetensorsDType: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case bool = "BOOL"
    case uint8 = "U8"
    case int8 = "I8"
    case float8E4M3 = "F8_E4M3"
    case float8E5M2 = "F8_E5M2"
    case int16 = "I16"
    case uint16 = "U16"
    case float16 = "F16"
    case bfloat16 = "BF16"
    case int32 = "I32"
    case uint32 = "U32"
    case float32 = "F32"
    case float64 = "F64"
    case int64 = "I64"
    case uint64 = "U64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .bool, .uint8, .int8, .float8E4M3, .float8E5M2: 1
        case .int16, .uint16, .float16, .bfloat16: 2
        case .int32, .uint32, .float32: 4
        case .float64, .int64, .uint64: 8
        }
    }

    /// The library's element type for this dtype, or `nil` when tensors of it are not supported.
    public var tensorDType: DType? {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .float8E4M3: .float8E4M3FN
        case .float16: .float16
        case .bfloat16: .bfloat16
        case .int32: .int32
        case .float32: .float32
        case .bool, .float8E5M2, .int16, .uint16, .uint32, .float64, .int64, .uint64: nil
        }
    }

    /// The safetensors spelling of a library dtype.
    public init(_ dtype: DType) {
        switch dtype {
        case .float32: self = .float32
        case .float16: self = .float16
        case .bfloat16: self = .bfloat16
        case .float8E4M3FN: self = .float8E4M3
        case .int8: self = .int8
        case .uint8: self = .uint8
        case .int32: self = .int32
        }
    }

    public var description: String { rawValue }
}
