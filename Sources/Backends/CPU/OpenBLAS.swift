import Foundation
import QLTensor
import CQLKernels

/// OpenBLAS, loaded at run time with the right kernels for this CPU.
///
/// Debian's OpenBLAS 0.3.21 does not recognise some CPUs with AVX-512 and falls back to its
/// generic "Prescott" kernels, about 5x slower. Its core is chosen once, when the library loads,
/// from the environment variable `OPENBLAS_CORETYPE`; so before loading it we set that variable
/// from CPUID (`SkylakeX` with AVX-512, `Haswell` with AVX2 and FMA) unless the user already set
/// it, and report the core it then runs (`openblas_get_corename`).
///
/// When no OpenBLAS is installed the library still works: dense float32 GEMMs run on a portable
/// C kernel (much slower), and a one-line message on standard error says how to install OpenBLAS.
public final class OpenBLAS: @unchecked Sendable {
    typealias SgemmFunction = @convention(c) (
        Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
        UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32
    ) -> Void
    typealias SgemvFunction = @convention(c) (
        Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32, Float,
        UnsafeMutablePointer<Float>?, Int32
    ) -> Void
    typealias CorenameFunction = @convention(c) () -> UnsafePointer<CChar>?
    typealias ThreadCountFunction = @convention(c) () -> Int32
    typealias SetThreadCountFunction = @convention(c) (Int32) -> Void

    /// The process-wide instance; loading happens on first use.
    public static let shared = OpenBLAS()

    let sgemm: SgemmFunction?
    let sgemv: SgemvFunction?
    /// The core type OpenBLAS reports, or `nil` when OpenBLAS is absent.
    public let coreName: String?
    /// The threads OpenBLAS runs per call: always 1 once loaded (`openblas_set_num_threads(1)`). The GEMM
    /// wrappers split the output columns over ``ComputeSlots`` themselves, so OpenBLAS's own pool never
    /// runs beside our workers or another caller's (that oversubscribed the cores: 8 threads calling
    /// `linear` took 15-20x longer than with one OpenBLAS thread).
    public let threadCount: Int
    /// Where the `OPENBLAS_CORETYPE` value came from.
    public let coreTypeSource: String
    /// The file that was loaded, or `nil`.
    public let libraryPath: String?

    public var isAvailable: Bool { sgemm != nil }

    private init() {
        let userValue = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"]
        if let userValue {
            coreTypeSource = "OPENBLAS_CORETYPE=\(userValue) (set by the user)"
        } else if let chosen = OpenBLAS.coreType(for: CPUFeatures.current) {
            setenv("OPENBLAS_CORETYPE", chosen, 0)
            coreTypeSource = "OPENBLAS_CORETYPE=\(chosen) (chosen from CPUID)"
        } else {
            coreTypeSource = "OpenBLAS's own detection"
        }
        let candidates = ["libopenblas.so.0", "libopenblas.so", "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
                          "/usr/lib/aarch64-linux-gnu/libopenblas.so.0", "libopenblas.dylib"]
        var handle: UnsafeMutableRawPointer?
        var path: String?
        for candidate in candidates {
            if let opened = dlopen(candidate, RTLD_NOW | RTLD_LOCAL) {
                handle = opened
                path = candidate
                break
            }
        }
        libraryPath = path
        guard let handle else {
            sgemm = nil
            sgemv = nil
            coreName = nil
            threadCount = 1
            FileHandle.standardError.write(Data((
                "note: OpenBLAS was not found, so float32 GEMMs use a slow portable kernel; "
                + "install it with `apt-get install libopenblas0` (or libopenblas-dev)\n").utf8))
            return
        }
        func symbol<T>(_ name: String, as type: T.Type) -> T? {
            dlsym(handle, name).map { unsafeBitCast($0, to: type) }
        }
        sgemm = symbol("cblas_sgemm", as: SgemmFunction.self)
        sgemv = symbol("cblas_sgemv", as: SgemvFunction.self)
        symbol("openblas_set_num_threads", as: SetThreadCountFunction.self)?(1)
        threadCount = symbol("openblas_get_num_threads", as: ThreadCountFunction.self).map { Int($0()) } ?? 1
        coreName = symbol("openblas_get_corename", as: CorenameFunction.self).flatMap { $0() }.map {
            String(cString: $0)
        }
    }

    /// The OpenBLAS core type whose kernels suit a CPU with these features.
    static func coreType(for features: CPUFeatures) -> String? {
        if features.avx512f && features.avx512bw && features.avx512vl { return "SkylakeX" }
        if features.avx2 && features.fma { return "Haswell" }
        return nil
    }

    /// One line for reports: the library, its core and how the core was chosen.
    public var summary: String {
        guard let coreName else { return "OpenBLAS not found (portable C kernel in use)" }
        return "OpenBLAS \(libraryPath ?? "?") core \(coreName), \(coreTypeSource)"
    }

    /// `C = A B^T` (+ `beta C`) for row-major float32 matrices: A (m x k), B (n x k), C (m x n).
    /// The columns of C are split over the cores ``ComputeSlots`` grants, one single-threaded OpenBLAS
    /// call per part (each the same arithmetic as the whole, on its columns).
    package func gemmNT(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>,
                       ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float = 0) {
        guard m > 0 && n > 0 else { return }
        CPUKernels.parallelRanges(count: n, granule: 16, minimumPerThread: Self.minimumColumns(m: m, k: k)) { part in
            let (b, c, n) = (b + part.lowerBound * ldb, c + part.lowerBound, part.count)
            if let sgemm {
                if m == 1, let sgemv {
                    // OpenBLAS's sgemm is several times slower than its sgemv for one row.
                    sgemv(101, 111, Int32(n), Int32(k), 1, b, Int32(ldb), a, 1, beta, c, 1)
                } else {
                    sgemm(101, 111, 112, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c,
                          Int32(ldc))
                }
            } else {
                ck_sgemm_nt_portable(Int64(m), Int64(n), Int64(k), 1, a, Int64(lda), b, Int64(ldb), beta, c,
                                     Int64(ldc))
            }
        }
    }

    /// Columns per part that keep a part worth a thread (about a million multiply-adds).
    static func minimumColumns(m: Int, k: Int) -> Int { max(16, (1 << 20) / max(m * k, 1)) }

    /// `C = A B` for row-major float32 matrices: A (m x k), B (k x n), C (m x n), columns split like
    /// ``gemmNT(m:n:k:a:lda:b:ldb:c:ldc:beta:)``; the leading dimensions default to dense rows.
    package func gemmNN(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int? = nil, b: UnsafePointer<Float>,
                       ldb: Int? = nil, c: UnsafeMutablePointer<Float>, ldc: Int? = nil) {
        guard m > 0 && n > 0 else { return }
        let (lda, ldb, ldc) = (lda ?? k, ldb ?? n, ldc ?? n)
        CPUKernels.parallelRanges(count: n, granule: 16, minimumPerThread: Self.minimumColumns(m: m, k: k)) { part in
            let (b, c, width) = (b + part.lowerBound, c + part.lowerBound, part.count)
            if let sgemm {
                sgemm(101, 111, 111, Int32(m), Int32(width), Int32(k), 1, a, Int32(lda), b, Int32(ldb), 0, c,
                      Int32(ldc))
            } else {
                // The portable kernel wants B^T; transposing costs one pass over B's part.
                var transposedB = [Float](repeating: 0, count: k * width)
                for row in 0..<k { for column in 0..<width { transposedB[column * k + row] = b[row * ldb + column] } }
                ck_sgemm_nt_portable(Int64(m), Int64(width), Int64(k), 1, a, Int64(lda), transposedB, Int64(k), 0, c,
                                     Int64(ldc))
            }
        }
    }
}
