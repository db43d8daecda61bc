import CQLKernels
import QLTensor

/// SIMD features of this CPU, read once from CPUID.
public struct CPUFeatures: Sendable, CustomStringConvertible {
    public let avx2: Bool
    public let fma: Bool
    public let f16c: Bool
    public let avx512f: Bool
    public let avx512bw: Bool
    public let avx512vl: Bool
    public let avx512vnni: Bool
    public let avxvnni: Bool

    public static let current = CPUFeatures(bits: ck_cpu_features())

    init(bits: UInt32) {
        func has(_ flag: Int) -> Bool { bits & UInt32(flag) != 0 }
        avx2 = has(CK_CPU_AVX2)
        fma = has(CK_CPU_FMA)
        f16c = has(CK_CPU_F16C)
        avx512f = has(CK_CPU_AVX512F)
        avx512bw = has(CK_CPU_AVX512BW)
        avx512vl = has(CK_CPU_AVX512VL)
        avx512vnni = has(CK_CPU_AVX512VNNI)
        avxvnni = has(CK_CPU_AVXVNNI)
    }

    public var description: String {
        let names: [(Bool, String)] = [(avx2, "avx2"), (fma, "fma"), (f16c, "f16c"), (avx512f, "avx512f"),
                                       (avx512bw, "avx512bw"), (avx512vl, "avx512vl"),
                                       (avx512vnni, "avx512vnni"), (avxvnni, "avxvnni")]
        let present = names.filter(\.0).map(\.1)
        return present.isEmpty ? "none" : present.joined(separator: " ")
    }
}
