import QLTensor

extension DType {
    /// The element-type code that kernels are compiled with (`DT_F32` ... in `KernelSources/prelude.cuh`).
    var kernelCode: Int {
        switch self {
        case .float32: 0
        case .float16: 1
        case .bfloat16: 2
        case .float8E4M3FN: 3
        case .int8: 4
        case .uint8: 5
        case .int32: 6
        }
    }
}
