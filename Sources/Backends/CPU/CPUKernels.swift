import CQLKernels
import Foundation
import QLTensor
#if canImport(Glibc)
import Glibc
#endif

/// Which implementation the quantized CPU kernels run: chosen from CPUID, or forced (tests run
/// every path the CPU supports in turn).
///
/// The compute-bound INT8 W8A8 GEMM has one version per path; the float GEMM on decoded weight panels
/// (weight-only and FP8) runs a 24 x 16 AVX-512 micro-kernel and a 16 x 16 decode on the ``avx512vnni``
/// and ``amx`` paths (bit-identical to its AVX2 one), and so do the dense transformer row kernels
/// (GELU, softmax, layer norm: exp and erf are compute-bound), and the W8A8 decode GEMV runs
/// `vpdpbusd` on zmm there. The other memory-bound kernels (quantize, dequantize, the weight-only and
/// FP8 GEMVs, FP8 decode) have a portable and an AVX2 version; the VNNI and AMX paths run the AVX2 one,
/// since they are limited by memory bandwidth, not by vector width.
public enum CPUKernelPath: String, CaseIterable, Sendable, CustomStringConvertible {
    /// Plain C; any CPU.
    case portable
    /// AVX2 + FMA + F16C: the INT8 GEMM multiplies with `vpmaddubsw` and the sign trick (exact),
    /// FMA for float.
    case avx2
    /// AVX2 + AVX-VNNI: `vpdpbusd` on ymm (u8 x s8 into int32) for the INT8 GEMM.
    case avxvnni
    /// AVX-512 F/BW/VL + VNNI: `vpdpbusd` on zmm for the INT8 GEMM, zmm FMA for the decoded-panel
    /// float GEMM.
    case avx512vnni
    /// AMX-INT8: `tdpbssd` tiles for the INT8 GEMM (AVX-512 VNNI for the rest); needs the OS's
    /// permission for tile data, asked for once per process.
    case amx

    /// Whether this CPU can run the path.
    public var isSupported: Bool {
        let cpu = CPUFeatures.current
        switch self {
        case .portable: return true
        case .avx2: return cpu.avx2 && cpu.fma && cpu.f16c
        case .avxvnni: return CPUKernelPath.avx2.isSupported && cpu.avxvnni
        case .avx512vnni: return CPUKernelPath.avx2.isSupported && cpu.avx512f && cpu.avx512bw && cpu.avx512vl
            && cpu.avx512vnni
        case .amx: return CPUKernelPath.avx512vnni.isSupported && cpu.amxInt8 && CPUKernelPath.amxPermitted
        }
    }

    /// Whether the OS granted this process AMX tile data (Linux `arch_prctl(ARCH_REQ_XCOMP_PERM)`),
    /// asked once, only on CPUs with AMX-INT8.
    static let amxPermitted: Bool = CPUFeatures.current.amxInt8 && ck_amx_request_permission() == 1

    /// Every path this CPU runs, slowest first.
    public static var supported: [CPUKernelPath] { allCases.filter(\.isSupported) }

    /// The fastest path this CPU runs.
    public static let best: CPUKernelPath = supported.last ?? .portable

    /// The path in force for this task: the innermost ``withPath(_:_:)``, else ``best``.
    public static var current: CPUKernelPath { forced ?? best }

    @TaskLocal static var forced: CPUKernelPath?

    /// Runs `body` with the kernels forced onto `path`, for this task and the tasks it creates.
    /// - Throws: ``TensorError/Code/unsupportedOperation`` when this CPU cannot run `path`.
    public static func withPath<R>(_ path: CPUKernelPath, _ body: () throws -> R) throws -> R {
        guard path.isSupported else {
            throw TensorError(.unsupportedOperation, "the \(path) CPU kernels need CPU features this machine lacks "
                + "(it has: \(CPUFeatures.current)); use one of \(supported.map(\.rawValue))")
        }
        return try $forced.withValue(path, operation: body)
    }

    /// The C kernels' code for the path (`CK_PATH_*`).
    package var code: Int32 {
        switch self {
        case .portable: Int32(CK_PATH_PORTABLE)
        case .avx2: Int32(CK_PATH_AVX2)
        case .avxvnni: Int32(CK_PATH_AVXVNNI)
        case .avx512vnni: Int32(CK_PATH_AVX512VNNI)
        case .amx: Int32(CK_PATH_AMX)
        }
    }

    public var description: String { rawValue }
}

/// Threading and output-type helpers shared by the quantized CPU kernels' wrappers.
package enum CPUKernels {
    /// Worker threads for the kernels: one per active core.
    package static let threadCount = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// The compute threads an op of `multiplyAdds` multiply-adds can use: one per million (below that,
    /// waking a second core costs more than it saves), at most one per core.
    package static func threads(forMultiplyAdds multiplyAdds: Int) -> Int {
        min(threadCount, max(1, multiplyAdds / 1_000_000))
    }

    /// Calls `body` on disjoint ranges that cover `0..<count`, in parallel on as many cores as
    /// ``ComputeSlots`` grants (at least one; it waits while every core is busy with other callers;
    /// inside an op's hold, the held slots and any idle ones).
    /// Each range starts at a multiple of `granule` and holds at least `minimumPerThread` units where
    /// possible; small work runs on the calling thread (still holding a slot), and a grant made under
    /// contention runs on its slots' workers (``ComputeWorkers``). Called from inside another region,
    /// it runs on the current thread. `rangesPerCore` ranges per granted core (at
    /// most one per granule): the default 4 lets a worker that wakes late take fewer; 1 gives each
    /// core one wide range, for kernels whose cost per range is a pass over a shared operand (the AMX
    /// GEMM reads the whole activation once per range).
    package static func parallelRanges(count: Int, granule: Int = 1, minimumPerThread: Int = 1,
                                      rangesPerCore: Int = 4, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let units = (count + granule - 1) / granule
        let wanted = min(threadCount, units, max(1, count / max(minimumPerThread, 1)))
        withoutActuallyEscaping(body) { body in
            parallelPhases([RangePhase(count: count, granule: granule, rangesPerCore: rangesPerCore, body)],
                           threads: wanted)
        }
    }

    /// One phase of ``parallelPhases(_:threads:)``: `body` on disjoint ranges covering `0..<count`, each
    /// starting at a multiple of `granule`, `rangesPerCore` ranges per core of the region (at most one
    /// per granule).
    package struct RangePhase {
        let count: Int
        let granule: Int
        let rangesPerCore: Int
        let body: (Range<Int>) -> Void

        package init(count: Int, granule: Int = 1, rangesPerCore: Int = 4, _ body: @escaping (Range<Int>) -> Void) {
            (self.count, self.granule, self.rangesPerCore, self.body) = (count, max(granule, 1), rangesPerCore, body)
        }
    }

    /// Runs `phases` in order as one parallel region on up to `threads` cores (granted as in
    /// ``parallelRanges(count:granule:minimumPerThread:rangesPerCore:_:)``): every range of a phase
    /// finishes before any range of the next starts, but the region's threads stay in it from phase to
    /// phase, so a kernel of several passes (quantize the activation, then the GEMM over it) pays one
    /// hand-over to the workers instead of one per pass (40-60 us each on the 2-core VM, where a worker
    /// woke that much later than its caller). A thread that finds the next phase's ranges waiting on
    /// ranges still running polls (yielding) until they are done; the ranges it waits for are being run
    /// by threads that have started, so the wait is bounded. Called from inside another region, the
    /// phases run one after another on the current thread.
    package static func parallelPhases(_ phases: [RangePhase], threads: Int) {
        if ComputeSlots.isInsideRegion {
            for phase in phases where phase.count > 0 { phase.body(0..<phase.count) }
            return
        }
        let wanted = max(1, min(threadCount, threads))
        let slots = ComputeSlots.shared
        // The slots this region runs on, and whether this thread stands in for the first: inside an op's
        // hold, the held slots (this thread is the first one's worker, or the caller of an uncontended
        // hold) plus any that are idle with nobody waiting (a hold granted a share while another caller
        // was busy takes back the cores it left); outside, a grant of its own, which under contention
        // runs on its slots' workers only.
        let indices: [Int]
        let joining: Bool
        let grant: ComputeSlots.Grant
        if let held = ComputeSlots.heldGrant {
            grant = slots.borrowIdle(upTo: wanted - held.slots)
            indices = Array(held.indices.prefix(wanted)) + grant.indices
            joining = true
        } else {
            grant = slots.acquire(upTo: wanted)
            indices = grant.indices
            joining = !grant.contended
        }
        defer { slots.release(grant) }
        // Four ranges per granted core by default: a worker that wakes late takes fewer of them
        // instead of leaving the last half of the work to one core. One core alone runs the same ranges
        // one after another, not one long call (OpenBLAS's sgemm at M = 64, K = 3072 on one core: 26.7 ms
        // for 3072 columns in one call, 23.4 in four calls of 768).
        let cores = max(indices.count, 1)
        let parts = phases.map { phase in
            min(cores * max(phase.rangesPerCore, 1), (phase.count + phase.granule - 1) / phase.granule)
        }
        // The ranges are disjoint and `run` returns only when all are done, so the non-Sendable phases
        // (their bodies capture raw pointers) are safe to share with the workers.
        nonisolated(unsafe) let work = phases
        let next = PartCounter(parts: parts)
        ComputeWorkers.shared.run(on: joining ? indices.dropFirst() : indices[...], joining: joining, optional: true) {
            ComputeSlots.markingRegion {
                while let (phase, part) = next.take() {
                    let (count, granule) = (work[phase].count, work[phase].granule)
                    let units = (count + granule - 1) / granule
                    let start = min(count, units * part / parts[phase] * granule)
                    let end = min(count, units * (part + 1) / parts[phase] * granule)
                    if start < end { work[phase].body(start..<end) }
                    next.finished(phase: phase)
                }
            }
        }
    }

    /// Hands out (phase, part) numbers in order to the threads of one parallel region; a part of a
    /// phase is handed out only when every part of the phases before it has finished (the taker polls,
    /// yielding, until then).
    private final class PartCounter: @unchecked Sendable {
        private let parts: [Int]
        private var phase = 0
        private var next = 0
        /// Parts finished in each phase.
        private var done: [Int]
        private let lock = NSLock()

        init(parts: [Int]) {
            self.parts = parts
            done = parts.map { _ in 0 }
        }

        func take() -> (phase: Int, part: Int)? {
            let taken: (phase: Int, part: Int)? = lock.withLock {
                while phase < parts.count && next >= parts[phase] {
                    phase += 1
                    next = 0
                }
                guard phase < parts.count else { return nil }
                next += 1
                return (phase, next - 1)
            }
            guard let taken, taken.phase > 0 else { return taken }
            while !lock.withLock({ done[taken.phase - 1] == parts[taken.phase - 1] }) { sched_yield() }
            return taken
        }

        func finished(phase: Int) {
            lock.withLock { done[phase] += 1 }
        }
    }

    /// The kernels' output code (`CK_OUT_*`) for `dtype`, or `nil` when they do not write it.
    package static func outputCode(_ dtype: DType) -> Int32? {
        switch dtype {
        case .float32: Int32(CK_OUT_F32)
        case .float16: Int32(CK_OUT_F16)
        case .bfloat16: Int32(CK_OUT_BF16)
        default: nil
        }
    }
}

extension CPUKernels {
    /// The input of ``decodedGEMM(x:m:n:k:weight:alpha:bias:output:outputCode:path:)``: `m x k` float32
    /// values, or `m x k` e4m3 codes (FP8 W8A8) that the packing decodes to their exact values (`nil`
    /// only for an empty input, which no kernel reads).
    package enum DecodedGEMMInput {
        case floats(UnsafePointer<Float>?)
        case e4m3(UnsafePointer<UInt8>?)
    }

    /// `y = (x W^T) * alpha + bias` for a weight that exists only as codes (`ck_decoded_weight`):
    /// the input is packed once into 6-row tiles, K chunk by K chunk (`ck_decoded_gemm_pack_input`,
    /// row tiles in parallel; one sequential stream for the micro-kernel, about 6-13% faster than
    /// reading the rows in place), then our FMA GEMM decodes each 256-column panel of W, 256 K values
    /// at a time, into an L2-sized float block (exactly the dequantized values) that every input tile
    /// passes over; output columns split across the cores. The float weight is never materialised, nor,
    /// for e4m3 input codes, a float copy of the input (the packing decodes them).
    /// - Parameters:
    ///   - x: `m x k`, row-major: float32 values or e4m3 codes.
    ///   - output: `m x n` in `outputCode`'s type (`CK_OUT_*`).
    /// - Throws: ``TensorError/Code/backendFailure`` when a thread cannot allocate its buffers.
    package static func decodedGEMM(x: DecodedGEMMInput, m: Int, n: Int, k: Int,
                                    weight: UnsafePointer<ck_decoded_weight>, alpha: Float,
                                    bias: UnsafePointer<Float>?, output: UnsafeMutableRawPointer, outputCode: Int32,
                                    path: CPUKernelPath) throws {
        // A tensor's storage: buffers of 2 MB and more get huge pages, so first touch is cheap.
        let packed = try Tensor(uninitializedShape: [Int(ck_decoded_gemm_input_size(Int64(m), Int64(k)))],
                                dtype: .float32)
        let failed = KernelFlag()
        withExtendedLifetime(packed) {
            let xp = packed.storage.hostPointer.assumingMemoryBound(to: Float.self)
            let tiles = (m + 5) / 6
            parallelRanges(count: tiles, minimumPerThread: max(1, 4096 / max(k, 1))) { range in
                let (tile0, tile1) = (Int64(range.lowerBound), Int64(range.upperBound))
                switch x {
                case .floats(let values):
                    ck_decoded_gemm_pack_input(values, Int64(m), Int64(k), tile0, tile1, xp, path.code)
                case .e4m3(let codes):
                    ck_decoded_gemm_pack_input_e4m3(codes, Int64(m), Int64(k), tile0, tile1, xp, path.code)
                }
            }
            parallelRanges(count: n, granule: 16) { range in
                if ck_decoded_gemm(xp, Int64(m), Int64(n), Int64(k), weight, alpha, bias, output, outputCode,
                                   Int64(range.lowerBound), Int64(range.upperBound), path.code) != 0 {
                    failed.set()
                }
            }
        }
        if failed.isSet {
            throw TensorError(.backendFailure, "float GEMM on a decoded weight: could not allocate its panel buffers "
                + "(out of memory)")
        }
    }

    /// Calls `body` with a pointer to `values`, or `nil` when there are none.
    package static func withOptionalFloats<R>(_ values: [Float]?, _ body: (UnsafePointer<Float>?) throws -> R)
        rethrows -> R {
        guard let values else { return try body(nil) }
        return try values.withUnsafeBufferPointer { try body($0.baseAddress) }
    }
}

extension CPUKernels {
    /// `max |v|` over `values`, read in parallel with the vectorised kernel (at memory bandwidth),
    /// and whether a NaN or an infinity was met (the maximum is then meaningless).
    package static func maxMagnitude(_ values: UnsafeBufferPointer<Float>) -> (amax: Float, nonFinite: Bool) {
        guard let base = values.baseAddress, !values.isEmpty else { return (0, false) }
        let path = CPUKernelPath.current.code
        let lock = NSLock()
        var amax: Float = 0
        var nonFinite = false
        parallelRanges(count: values.count, granule: 16, minimumPerThread: 1 << 16) { range in
            var partial: Float = 0
            let bad = ck_fp8_amax(base + range.lowerBound, Int64(range.count), &partial, path) != 0
            lock.withLock {
                amax = max(amax, partial)
                nonFinite = nonFinite || bad
            }
        }
        return (amax, nonFinite)
    }
}
