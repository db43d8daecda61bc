import QLTensor

/// The element types a safetensors header can name, as spelled in its `dtype` field: the official
/// reader's list (safetensors `Dtype`, checked against its source and the `safetensors` 0.8.0 package),
/// sub-byte types included.
///
/// Every one of them can be read and copied as raw bytes (sizes are checked against the shape); the
/// ones with a ``tensorDType`` can also become a ``Tensor``. The rest (`F64`, `I64`, `BOOL`, `C64`,
/// `F4`, ...) are carried through conversions unchanged, and asking for them as a tensor is an
/// `unsupportedDType` error that names the tensor.
public enum SafetensorsDType: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case bool = "BOOL"
    /// MXFP4 (OCP microscaling): 4 bits per element, two to a byte.
    case float4 = "F4"
    /// MXFP6 E2M3 / E3M2: 6 bits per element, packed.
    case float6E2M3 = "F6_E2M3"
    case float6E3M2 = "F6_E3M2"
    case uint8 = "U8"
    case int8 = "I8"
    case float8E4M3 = "F8_E4M3"
    case float8E5M2 = "F8_E5M2"
    /// OCP E8M0 scale type.
    case float8E8M0 = "F8_E8M0"
    case float8E4M3FNUZ = "F8_E4M3FNUZ"
    case float8E5M2FNUZ = "F8_E5M2FNUZ"
    case int16 = "I16"
    case uint16 = "U16"
    case float16 = "F16"
    case bfloat16 = "BF16"
    case int32 = "I32"
    case uint32 = "U32"
    case float32 = "F32"
    /// Complex with float32 parts.
    case complex64 = "C64"
    case float64 = "F64"
    case int64 = "I64"
    case uint64 = "U64"

    /// Bits per element (4 and 6 for the packed sub-byte types).
    public var bitSize: Int {
        switch self {
        case .float4: 4
        case .float6E2M3, .float6E3M2: 6
        case .bool, .uint8, .int8, .float8E4M3, .float8E5M2, .float8E8M0, .float8E4M3FNUZ, .float8E5M2FNUZ: 8
        case .int16, .uint16, .float16, .bfloat16: 16
        case .int32, .uint32, .float32: 32
        case .complex64, .float64, .int64, .uint64: 64
        }
    }

    /// Bytes of `elements` elements: `elements * bitSize / 8`, the official reader's rule; `nil` when that
    /// overflows or is not a whole number of bytes (a sub-byte tensor must fill its last byte).
    public func byteCount(elements: Int) -> Int? {
        let (bits, overflow) = elements.multipliedReportingOverflow(by: bitSize)
        guard !overflow, bits % 8 == 0 else { return nil }
        return bits / 8
    }

    /// Bytes of a tensor of `shape`, or `nil` (overflow, a negative dimension, or a partial last byte).
    public func byteCount(shape: [Int]) -> Int? {
        guard let elements = try? ShapeArithmetic.elementCount(shape) else { return nil }
        return byteCount(elements: elements)
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
        case .bool, .float4, .float6E2M3, .float6E3M2, .float8E5M2, .float8E8M0, .float8E4M3FNUZ, .float8E5M2FNUZ,
             .int16, .uint16, .uint32, .complex64, .float64, .int64, .uint64: nil
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
