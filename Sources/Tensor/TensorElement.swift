/// A Swift type that is the element type of a ``DType``, so tensors can be built from and read into
/// typed arrays.
public protocol TensorElement: Sendable {
    static var dtype: DType { get }
}

extension Float: TensorElement { public static var dtype: DType { .float32 } }
extension Float16: TensorElement { public static var dtype: DType { .float16 } }
extension BFloat16: TensorElement { public static var dtype: DType { .bfloat16 } }
extension Float8E4M3FN: TensorElement { public static var dtype: DType { .float8E4M3FN } }
extension Int8: TensorElement { public static var dtype: DType { .int8 } }
extension UInt8: TensorElement { public static var dtype: DType { .uint8 } }
extension Int32: TensorElement { public static var dtype: DType { .int32 } }
