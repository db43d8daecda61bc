import Foundation
import QLTensor

/// cuBLASLt, resolved from `libcublasLt.so*` with `dlsym`: the dense GEMMs (bf16, f16, f32) and
/// the per-tensor-scaled FP8 GEMM on the FP8 tensor cores.
///
/// Enum values are those of `cublasLt.h` / `library_types.h` (stable since CUDA 11.4).
struct BLASLt: @unchecked Sendable {
    typealias Status = Int32
    typealias Handle = OpaquePointer

    /// `cudaDataType_t`.
    enum DataType: Int32 {
        case float32 = 0
        case float16 = 2
        case int8 = 3
        case int32 = 10
        case bfloat16 = 14
        case float8E4M3 = 28

        init?(_ dtype: DType) {
            switch dtype {
            case .float32: self = .float32
            case .float16: self = .float16
            case .bfloat16: self = .bfloat16
            case .float8E4M3FN: self = .float8E4M3
            case .int8: self = .int8
            case .int32: self = .int32
            case .uint8: return nil
            }
        }
    }

    static let computeFloat32: Int32 = 68  // CUBLAS_COMPUTE_32F
    static let opN: Int32 = 0
    static let opT: Int32 = 1
    enum DescriptorAttribute: Int32 {
        case transA = 3, transB = 4, epilogue = 7, biasPointer = 8, aScalePointer = 17, bScalePointer = 18
        case biasDataType = 26
    }
    /// `cublasLtEpilogue_t`: `CUBLASLT_EPILOGUE_BIAS`, `_GELU` (tanh approximation), `_GELU_BIAS`.
    static let epilogueBias: Int32 = 4
    /// `CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT` (int32_t) and `..._STRIDED_BATCH_OFFSET` (int64_t, in elements).
    static let layoutBatchCount: Int32 = 5
    static let layoutBatchStride: Int32 = 6
    static let epilogueGELU: Int32 = 32
    static let epilogueGELUBias: Int32 = 36
    /// `CUBLASLT_ALGO_CONFIG_{ID, TILE_ID, SPLITK_NUM, REDUCTION_SCHEME, STAGES_ID}`.
    static let algorithmConfigAttributes: [(name: String, id: Int32)] = [
        ("algo", 0), ("tile", 1), ("splitK", 2), ("reduction", 3), ("stages", 6)]
    /// How many heuristic results are asked for (the first that fits the workspace is taken).
    static let heuristicCandidates: Int32 = 8
    static let preferenceMaxWorkspace: Int32 = 1
    /// `CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_{A,B,C,D}_BYTES`.
    static let preferenceMinimumAlignments: [Int32] = [5, 6, 7, 8]
    /// `sizeof(cublasLtMatmulHeuristicResult_t)`: algo (64) + workspaceSize (8) + state (4) +
    /// wavesCount (4) + reserved (16).
    static let heuristicResultSize = 96

    let library: DynamicLibrary
    let create: @convention(c) (UnsafeMutablePointer<Handle?>) -> Status
    let descriptorCreate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, Int32, Int32) -> Status
    let descriptorSetAttribute: @convention(c) (OpaquePointer?, Int32, UnsafeRawPointer, Int) -> Status
    let descriptorDestroy: @convention(c) (OpaquePointer?) -> Status
    let layoutCreate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, Int32, UInt64, UInt64, Int64) -> Status
    let layoutDestroy: @convention(c) (OpaquePointer?) -> Status
    let layoutSetAttribute: @convention(c) (OpaquePointer?, Int32, UnsafeRawPointer, Int) -> Status
    let preferenceCreate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Status
    let preferenceSetAttribute: @convention(c) (OpaquePointer?, Int32, UnsafeRawPointer, Int) -> Status
    let preferenceDestroy: @convention(c) (OpaquePointer?) -> Status
    let heuristic: @convention(c) (Handle?, OpaquePointer?, OpaquePointer?, OpaquePointer?, OpaquePointer?,
                                   OpaquePointer?, OpaquePointer?, Int32, UnsafeMutableRawPointer,
                                   UnsafeMutablePointer<Int32>) -> Status
    let matmul: @convention(c) (Handle?, OpaquePointer?, UnsafeRawPointer, UInt64, OpaquePointer?, UInt64,
                                OpaquePointer?, UnsafeRawPointer, UInt64, OpaquePointer?, UInt64, OpaquePointer?,
                                UnsafeRawPointer?, UInt64, Int, OpaquePointer?) -> Status
    let statusString: @convention(c) (Status) -> UnsafePointer<CChar>?
    let algorithmConfigGetAttribute: @convention(c) (UnsafeRawPointer, Int32, UnsafeMutableRawPointer, Int,
                                                     UnsafeMutablePointer<Int>) -> Status

    /// Opens cuBLASLt: `QLINEAR_CUBLASLT` if set, else the usual names and CUDA library directories.
    init() throws {
        var failures: [String] = []
        let explicit = ProcessInfo.processInfo.environment["QLINEAR_CUBLASLT"].map { [$0] } ?? []
        let names = explicit + ["libcublasLt.so", "libcublasLt.so.13", "libcublasLt.so.12"]
        guard let library = DynamicLibrary.open(names: names, prefix: "libcublasLt",
                                                directories: DynamicLibrary.cudaLibraryDirectories,
                                                failures: &failures) else {
            throw TensorError(.deviceUnavailable, "cuBLASLt (libcublasLt.so) was not found; install the CUDA "
                + "toolkit's cuBLAS (or set QLINEAR_CUBLASLT to its path)", underlying: failures.joined(separator: "\n"))
        }
        self.library = library
        create = try library.function("cublasLtCreate")
        descriptorCreate = try library.function("cublasLtMatmulDescCreate")
        descriptorSetAttribute = try library.function("cublasLtMatmulDescSetAttribute")
        descriptorDestroy = try library.function("cublasLtMatmulDescDestroy")
        layoutCreate = try library.function("cublasLtMatrixLayoutCreate")
        layoutDestroy = try library.function("cublasLtMatrixLayoutDestroy")
        layoutSetAttribute = try library.function("cublasLtMatrixLayoutSetAttribute")
        preferenceCreate = try library.function("cublasLtMatmulPreferenceCreate")
        preferenceSetAttribute = try library.function("cublasLtMatmulPreferenceSetAttribute")
        preferenceDestroy = try library.function("cublasLtMatmulPreferenceDestroy")
        heuristic = try library.function("cublasLtMatmulAlgoGetHeuristic")
        matmul = try library.function("cublasLtMatmul")
        statusString = try library.function("cublasLtGetStatusString")
        algorithmConfigGetAttribute = try library.function("cublasLtMatmulAlgoConfigGetAttribute")
    }

    /// Throws unless `status` is `CUBLAS_STATUS_SUCCESS`, with cuBLASLt's own text.
    func check(_ status: Status, _ what: @autoclosure () -> String) throws {
        guard status != 0 else { return }
        let text = statusString(status).map { String(cString: $0) } ?? "cublasStatus_t \(status)"
        throw TensorError(.backendFailure, "cuBLASLt call failed: \(what())", underlying: text)
    }
}

/// One column-major GEMM as cuBLASLt sees it: `D (m x n) = alpha * op(A) op(B) (+ bias[row])`, or
/// `batchCount` of them with matrix `i` of each operand `i * stride` elements after its first.
///
/// Row-major callers use the identity `(x W^T)^T = W x^T`: a row-major `y (M, N) = x (M, K) W^T`
/// is the column-major `D (N x M) = op_T(W as K x N) * (x as K x M)`, the "TN" layout that the FP8
/// tensor cores require.
struct GEMMDescription: Hashable {
    var m: Int
    var n: Int
    var k: Int
    var transposeA: Bool
    var transposeB: Bool
    var lda: Int
    var ldb: Int
    var ldd: Int
    var typeA: BLASLt.DataType
    var typeB: BLASLt.DataType
    var typeD: BLASLt.DataType
    /// The bias type when a bias is fused in the epilogue, else `nil`.
    var biasType: BLASLt.DataType?
    var scaled: Bool
    /// The tanh-approximation GELU applied in the epilogue (after the bias).
    var gelu = false
    /// The largest power of two (at most 256) dividing every operand address: the heuristic may
    /// only pick kernels whose vector accesses that alignment allows. ``BLASLtContext/run`` sets it.
    var alignment = 256
    /// Strided batch: how many GEMMs, and the distance in elements between consecutive matrices.
    var batchCount = 1
    var strideA = 0
    var strideB = 0
    var strideD = 0
}

/// The cuBLASLt state of one device: handle, workspace, and one ``Plan`` per GEMM description.
///
/// The plan (matmul descriptor, matrix layouts, algorithm) is made once per description: the
/// heuristic is asked once, with the fixed workspace limit, for up to 8 candidates, and the first
/// whose workspace fits is kept for the life of the process. Later calls with the same description
/// only set the operand pointers and enqueue, so a call costs no descriptor or layout creation and
/// always runs the same kernel (same tile, same split-K): timings of a shape do not move with
/// the heuristic, and the host's share of a small call stays small.
final class BLASLtContext: @unchecked Sendable {
    static let workspaceBytes = 32 << 20
    let blas: BLASLt
    let device: CUDADevice
    private let handle: BLASLt.Handle
    private let workspace: CUDAAllocation
    private let lock = NSLock()
    private var plans: [GEMMDescription: Plan] = [:]
    /// Serialises whole matmuls: one may queue several kernels that share the workspace (split-K),
    /// another thread's kernels must not land between them, and the plan's descriptor holds the
    /// pointers of the call being enqueued.
    private let enqueueLock = NSLock()

    /// The cuBLASLt objects of one description, destroyed with the context.
    final class Plan {
        let blas: BLASLt
        var descriptor: OpaquePointer?
        var layoutA: OpaquePointer?
        var layoutB: OpaquePointer?
        var layoutD: OpaquePointer?
        var algorithm = [UInt8](repeating: 0, count: 64)
        var workspace = 0

        init(blas: BLASLt) { self.blas = blas }

        deinit {
            _ = blas.descriptorDestroy(descriptor)
            for layout in [layoutA, layoutB, layoutD] { _ = blas.layoutDestroy(layout) }
        }

        /// `name=value` of the chosen algorithm's configuration (id, tile, split-K, ...).
        var configuration: String {
            BLASLt.algorithmConfigAttributes.map { attribute in
                var value: UInt32 = 0
                var written = 0
                let status = algorithm.withUnsafeBytes {
                    blas.algorithmConfigGetAttribute($0.baseAddress!, attribute.id, &value, 4, &written)
                }
                return "\(attribute.name)=" + (status == 0 ? "\(value)" : "?")
            }.joined(separator: " ") + " workspace=\(workspace)"
        }
    }

    init(device: CUDADevice) throws {
        self.device = device
        blas = try device.runtime.blas()
        try device.makeCurrent()
        var handle: BLASLt.Handle?
        try blas.check(blas.create(&handle), "cublasLtCreate")
        self.handle = handle!
        workspace = try device.allocate(byteCount: BLASLtContext.workspaceBytes)
    }

    /// The algorithm configuration chosen for each description planned so far (for benchmarks).
    var chosenAlgorithms: [(description: GEMMDescription, configuration: String)] {
        lock.withLock { plans.map { ($0.key, $0.value.configuration) } }
    }

    /// Queues `D = op(A) op(B) * alpha (+ bias)` with optional per-tensor scales of A and B (device
    /// pointers to float32, for FP8).
    /// - Throws: ``TensorError/Code/unsupportedOperation`` when cuBLASLt has no algorithm for the
    ///   description (for FP8: unaligned sizes), ``TensorError/Code/backendFailure`` otherwise.
    func run(_ description: GEMMDescription, a: GPU, b: GPU, d: GPU, bias: GPU? = nil, aScale: GPU? = nil,
             bScale: GPU? = nil, alpha: Float = 1) throws {
        var description = description
        let addresses = [a.address, b.address, d.address] + (bias.map { [$0.address] } ?? [])
        description.alignment = addresses.map { address in
            address == 0 ? 256 : min(256, 1 << address.trailingZeroBitCount)
        }.min() ?? 256
        try device.makeCurrent()
        let plan = try lock.withLock { () throws -> Plan in
            if let known = plans[description] { return known }
            let made = try makePlan(description)
            plans[description] = made
            return made
        }
        var alphaValue = alpha
        var beta: Float = 0
        try enqueueLock.withLock {
            func set<T: BitwiseCopyable>(_ attribute: BLASLt.DescriptorAttribute, _ value: T) throws {
                var value = value
                try blas.check(blas.descriptorSetAttribute(plan.descriptor, attribute.rawValue, &value,
                                                           MemoryLayout<T>.size),
                               "cublasLtMatmulDescSetAttribute(\(attribute))")
            }
            if let bias, description.biasType != nil { try set(.biasPointer, bias.address) }
            if let aScale { try set(.aScalePointer, aScale.address) }
            if let bScale { try set(.bScalePointer, bScale.address) }
            let status = plan.algorithm.withUnsafeBytes { algo in
                blas.matmul(handle, plan.descriptor, &alphaValue, a.address, plan.layoutA, b.address, plan.layoutB,
                            &beta, d.address, plan.layoutD, d.address, plan.layoutD, algo.baseAddress,
                            workspace.address, min(plan.workspace, BLASLtContext.workspaceBytes), device.stream)
            }
            try blas.check(status, "cublasLtMatmul(\(description))")
        }
    }

    /// The descriptor, layouts and algorithm of `description` (called once per description).
    private func makePlan(_ description: GEMMDescription) throws -> Plan {
        let plan = Plan(blas: blas)
        try blas.check(blas.descriptorCreate(&plan.descriptor, BLASLt.computeFloat32,
                                             BLASLt.DataType.float32.rawValue), "cublasLtMatmulDescCreate")
        func set<T: BitwiseCopyable>(_ attribute: BLASLt.DescriptorAttribute, _ value: T) throws {
            var value = value
            try blas.check(blas.descriptorSetAttribute(plan.descriptor, attribute.rawValue, &value,
                                                       MemoryLayout<T>.size),
                           "cublasLtMatmulDescSetAttribute(\(attribute))")
        }
        try set(.transA, description.transposeA ? BLASLt.opT : BLASLt.opN)
        try set(.transB, description.transposeB ? BLASLt.opT : BLASLt.opN)
        let hasBias = description.biasType != nil
        if hasBias || description.gelu {
            try set(.epilogue, description.gelu ? (hasBias ? BLASLt.epilogueGELUBias : BLASLt.epilogueGELU)
                                                : BLASLt.epilogueBias)
        }
        if let biasType = description.biasType { try set(.biasDataType, biasType.rawValue) }

        func layout(_ type: BLASLt.DataType, rows: Int, columns: Int, ld: Int, stride: Int) throws
            -> OpaquePointer? {
            var result: OpaquePointer?
            try blas.check(blas.layoutCreate(&result, type.rawValue, UInt64(rows), UInt64(columns), Int64(ld)),
                           "cublasLtMatrixLayoutCreate")
            guard description.batchCount > 1 else { return result }
            var count = Int32(description.batchCount)
            var offset = Int64(stride)
            do {
                try blas.check(blas.layoutSetAttribute(result, BLASLt.layoutBatchCount, &count, 4),
                               "cublasLtMatrixLayoutSetAttribute(BATCH_COUNT = \(count))")
                try blas.check(blas.layoutSetAttribute(result, BLASLt.layoutBatchStride, &offset, 8),
                               "cublasLtMatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET = \(offset))")
            } catch {
                _ = blas.layoutDestroy(result)
                throw error
            }
            return result
        }
        let (m, n, k) = (description.m, description.n, description.k)
        plan.layoutA = try layout(description.typeA, rows: description.transposeA ? k : m,
                                  columns: description.transposeA ? m : k, ld: description.lda,
                                  stride: description.strideA)
        plan.layoutB = try layout(description.typeB, rows: description.transposeB ? n : k,
                                  columns: description.transposeB ? k : n, ld: description.ldb,
                                  stride: description.strideB)
        plan.layoutD = try layout(description.typeD, rows: m, columns: n, ld: description.ldd,
                                  stride: description.strideD)

        var preference: OpaquePointer?
        try blas.check(blas.preferenceCreate(&preference), "cublasLtMatmulPreferenceCreate")
        defer { _ = blas.preferenceDestroy(preference) }
        var limit = UInt64(BLASLtContext.workspaceBytes)
        try blas.check(blas.preferenceSetAttribute(preference, BLASLt.preferenceMaxWorkspace, &limit, 8),
                       "cublasLtMatmulPreferenceSetAttribute")
        var alignment = UInt32(description.alignment)
        for attribute in BLASLt.preferenceMinimumAlignments {
            try blas.check(blas.preferenceSetAttribute(preference, attribute, &alignment, 4),
                           "cublasLtMatmulPreferenceSetAttribute(alignment)")
        }
        let size = BLASLt.heuristicResultSize
        var results = [UInt8](repeating: 0, count: size * Int(BLASLt.heuristicCandidates))
        var found: Int32 = 0
        let status = results.withUnsafeMutableBytes {
            blas.heuristic(handle, plan.descriptor, plan.layoutA, plan.layoutB, plan.layoutD, plan.layoutD,
                           preference, BLASLt.heuristicCandidates, $0.baseAddress!, &found)
        }
        // Each result: algo (64 bytes), workspaceSize (size_t at 64), state (cublasStatus_t at 72).
        let usable = (0..<Int(max(found, 0))).first { index in
            results.withUnsafeBytes { raw in
                raw.load(fromByteOffset: index * size + 72, as: Int32.self) == 0
                    && raw.load(fromByteOffset: index * size + 64, as: Int.self) <= BLASLtContext.workspaceBytes
            }
        }
        guard status == 0, let usable else {
            let text = blas.statusString(status).map { String(cString: $0) } ?? "\(status)"
            throw TensorError(.unsupportedOperation, "cuBLASLt has no algorithm for \(description)", underlying: text)
        }
        plan.algorithm = Array(results[(usable * size)..<(usable * size + 64)])
        plan.workspace = results.withUnsafeBytes { $0.load(fromByteOffset: usable * size + 64, as: Int.self) }
        return plan
    }
}
