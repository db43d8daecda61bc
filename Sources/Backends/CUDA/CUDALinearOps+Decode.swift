import Foundation
import QLTensor

/// Decode shapes (1 <= M <= 16): every quantized linear runs ``DecodeKernels``' `gemv_stream`, which
/// streams each weight row once, or where they apply the tensor-core kernels `gemv_w8a8_mma` (W8A8, the
/// same bits) and `gemv_wo_mma` (weight-only) (see there for the arithmetic and the launch contracts).
extension CUDALinearOps {
    /// Largest M the decode kernels serve.
    package static let decodeMaxRows = 16

    /// `gemv_stream`'s `MODE`.
    enum DecodeMode: Int {
        /// INT8 W8A8 on given activation codes and scales.
        case w8a8Codes = 0
        /// INT8 W8A8 on a float input, quantized inside the kernel.
        case w8a8Float = 1
        case int8WeightOnly = 2
        case fp8WeightOnly = 3
    }

    /// Whether `gemv_stream` takes the problem: 1 <= M <= 16, K a positive multiple of 16, 16-byte
    /// aligned operands and, for W8A8, 1 x B activation blocks with B a power of two in 16...512.
    static func decodeServes(m: Int, k: Int, blockColumns: Int, w8a8: Bool, addresses: [CUDeviceAddress]) -> Bool {
        guard m >= 1 && m <= decodeMaxRows, k > 0, k % 16 == 0, k <= Int(Int32.max) / 16,
              addresses.allSatisfy({ $0 % 16 == 0 }) else { return false }
        return !w8a8 || (blockColumns >= 16 && blockColumns <= 512 && blockColumns & (blockColumns - 1) == 0)
    }

    /// `gemv_stream`'s `U`, the 16-byte chunks each lane keeps in flight per batch (32 U chunks per warp).
    /// W8A8: the U in 6...3 whose batch divides the row's K / 16 chunks (no half-empty last batch:
    /// 6 for K = 3072, 5 for K = 5120), else 4; INT8 weight-only 4, FP8 weight-only 2 (the fastest of
    /// those measured on the H200, NOTES.md issue 10).
    static func decodeChunksPerLane(_ mode: DecodeMode, k: Int) -> Int {
        switch mode {
        case .w8a8Codes, .w8a8Float: [6, 5, 4, 3].first { (k / 16) % (32 * $0) == 0 } ?? 4
        case .int8WeightOnly: 4
        case .fp8WeightOnly: 2
        }
    }

    /// `QLINEAR_W8A8_DECODE`, read once, to compare W8A8 decode kernels (all give the same bits): `stream`
    /// always runs `gemv_stream`; `gemm` runs no decode kernel (the activation quantizer, then the GEMM plan
    /// of ``BlockwiseINT8GEMM``).
    static let w8a8DecodeOverride = ProcessInfo.processInfo.environment["QLINEAR_W8A8_DECODE"]
    static var forcesStreamW8A8Decode: Bool { w8a8DecodeOverride == "stream" }
    package static var forcesW8A8GEMM: Bool { w8a8DecodeOverride == "gemm" }

    /// Fewest rows that W8A8 decode runs on the tensor cores: at M = 1 and 2 `gemv_stream` was faster on the
    /// H200 (5B / 14B first layer, 0.82 / 0.99 of copy against 0.75 / 0.88 at M = 1), from M = 4 on
    /// `gemv_w8a8_mma` (M = 4: 0.65 / 0.81 against 0.52 / 0.63; M = 16: 0.31 / 0.44 against 0.12 / 0.13;
    /// NOTES.md, issue 10 session 8).
    static let w8a8MMAMinimumRows = 3

    /// Whether W8A8 decode runs on the tensor cores (`gemv_w8a8_mma`): M >= ``w8a8MMAMinimumRows``, every
    /// 64-element segment of a row in one K block (`blockColumns % 64 == 0`), and its shared memory fits.
    static func w8a8OnTensorCores(m: Int, k: Int, blockColumns: Int, device: CUDADevice) -> Bool {
        !forcesStreamW8A8Decode && m >= w8a8MMAMinimumRows && blockColumns % 64 == 0
            && w8a8MMASharedBytes(m: m, k: k, blockColumns: blockColumns) <= device.maxSharedMemoryPerBlock
    }

    /// `gemv_w8a8_mma`'s `U`, the 64-element segments each warp keeps in flight per batch: 3, or 2 above 8 rows
    /// (the fastest or within 2 % of it at every M of 1...16 on both WAN decode shapes on the H200; M = 16:
    /// 43.9 / 85.9 us at U = 2 against 46.3 / 86.3 at U = 3).
    static func w8a8MMASegments(m: Int) -> Int { m > 8 ? 2 : 3 }

    /// `gemv_w8a8_mma`'s dynamic shared memory (decode.cu): the codes, M rows of `w8_row_bytes(K)` (K rounded
    /// up to 64, plus 64 where that is a multiple of 128), the M x KB activation scales (padded to 4), and two
    /// buffers of KB x 16 x M block products.
    static func w8a8MMASharedBytes(m: Int, k: Int, blockColumns: Int) -> Int {
        let k64 = (k + 63) / 64 * 64
        let rowBytes = k64 % 128 != 0 ? k64 : k64 + 64
        let kBlocks = (k + blockColumns - 1) / blockColumns
        return m * rowBytes + 4 * ((m * kBlocks + 3) & ~3) + 4 * 2 * kBlocks * 16 * m
    }

    /// Whether weight-only `mode` runs on the tensor cores (`gemv_wo_mma`): FP8 always, INT8 when every
    /// 64-element segment of a row lies in one weight block (`blockColumns % 64 == 0`); and the staged
    /// input fits in shared memory.
    static func weightOnlyOnTensorCores(_ mode: DecodeMode, m: Int, k: Int, blockColumns: Int, floatInput: Bool,
                                        device: CUDADevice) -> Bool {
        (mode == .fp8WeightOnly || (mode == .int8WeightOnly && blockColumns % 64 == 0))
            && weightOnlyMMASharedBytes(m: m, k: k, floatInput: floatInput) <= device.maxSharedMemoryPerBlock
    }

    /// `gemv_wo_mma`'s `U`, the 64-element segments each warp keeps in flight per batch: 2 for INT8
    /// weight-only (mode 2) at M <= 4, else 3: the faster at both WAN decode shapes on the H200 (NOTES.md,
    /// issue 10 round 3 and session 8: INT8 weight-only M = 2 0.63 / 0.78 of copy at U = 3, 0.66 / 0.82 at
    /// U = 2; FP8 and larger M are faster at 3).
    static func weightOnlyMMASegments(mode: Int, m: Int) -> Int { mode == 2 && m <= 4 ? 2 : 3 }

    /// `gemv_wo_mma`'s dynamic shared memory (decode.cu): the input as float16 pieces (3 for float32, else
    /// 1), M rows of `wo_row_words(K)` = 32 ceil(K / 64) + 4 words each, 8 zero words, two buffers of the
    /// 8 warps' partial sums, and each row's largest |x| and exponent.
    static func weightOnlyMMASharedBytes(m: Int, k: Int, floatInput: Bool) -> Int {
        let rowWords = (k + 63) / 64 * 32 + 4
        return 4 * ((floatInput ? 3 : 1) * m * rowWords + 8 + 2 * 8 * 4 * ((m + 7) / 8) * 32 + 32)
    }

    /// Largest input copy the weight-only modes stage in shared memory (else they read it from global memory).
    static let decodeWeightOnlyStagedBytes = 64 << 10

    /// `gemv_stream`'s dynamic shared memory (decode.cu): with `staged`, the input (W8A8: codes,
    /// 16-byte aligned, and scales; weight-only: the floats), and for W8A8 the 8 warps' staging of
    /// one int32 per (row, chunk) and one float per (row, block) of a batch.
    static func decodeSharedBytes(_ mode: DecodeMode, m: Int, k: Int, blockColumns: Int, inputBytes: Int,
                                  staged: Bool) -> Int {
        let align16 = { (bytes: Int) in (bytes + 15) & ~15 }
        guard mode == .w8a8Codes || mode == .w8a8Float else { return staged ? align16(m * k * inputBytes) : 0 }
        let chunks = 32 * decodeChunksPerLane(mode, k: k)
        let staging = 8 * 4 * (m * chunks + m * chunks / (blockColumns / 16))
        return (staged ? align16(align16(m * k) + 4 * m * ((k + blockColumns - 1) / blockColumns)) : 0) + staging
    }

    /// INT8 W8A8 on a float input (M, K) with M <= 16, quantized like the activation quantizer
    /// (1 x `blockColumns` blocks, the weight's rounding) and multiplied in one launch; `nil` when the
    /// decode kernel does not take the problem (then quantize and call ``blockwiseW8A8``).
    /// - Returns: `(M, N)` in `outputDType`.
    package static func blockwiseW8A8Decode(input: Tensor, weightCodes: Tensor, weightScales: Tensor,
                                           weightBlockRows: Int, blockColumns: Int, towardZero: Bool, bias: Tensor?,
                                           outputDType: DType) throws -> Tensor? {
        let (m, k) = (input.shape[0], input.shape[1])
        guard [.float32, .float16, .bfloat16].contains(input.dtype), !forcesW8A8GEMM else { return nil }
        let x = try GPU(try input.contiguous())
        let w = try GPU(try weightCodes.contiguous())
        guard decodeServes(m: m, k: k, blockColumns: blockColumns, w8a8: true, addresses: [x.address, w.address]),
              w8a8OnTensorCores(m: m, k: k, blockColumns: blockColumns, device: x.device)
                || decodeSharedBytes(.w8a8Float, m: m, k: k, blockColumns: blockColumns, inputBytes: 1, staged: true)
                <= x.device.maxSharedMemoryPerBlock else {
            return nil
        }
        return try gemvStream(.w8a8Float, x: x, inputDType: input.dtype, sx: nil, w: w,
                              scales: try GPU(try weightScales.contiguous()), bias: bias, m: m, n: weightCodes.shape[0], k: k,
                              blockRows: weightBlockRows, blockColumns: blockColumns, towardZero: towardZero,
                              outputDType: outputDType)
    }

    /// `QLINEAR_FP8_DECODE=cublaslt`, read once: FP8 W8A8 decode quantizes the input and runs cuBLASLt (to
    /// compare with ``fp8W8A8Decode``).
    static let forcesFP8BLASLt = ProcessInfo.processInfo.environment["QLINEAR_FP8_DECODE"] == "cublaslt"

    /// Most rows ``fp8W8A8Decode`` takes: 4. On the H200 (CUDA-graph times, 5B / 14B first layer) it streams
    /// at 0.76 / 0.89 of copy at M = 1, 0.70 / 0.84 at M = 2, 0.61 / 0.76 at M = 4, 0.47 / 0.63 at M = 8 and
    /// 0.27 / 0.43 at M = 16, against 0.58-0.60 / 0.80-0.82 for the quantizer + cuBLASLt at M = 2 and 16 (whose
    /// eager calls are host-bound besides: 44 us at 5B M = 2, four launches); so M <= 4 (NOTES.md, issue 10
    /// session 8).
    static let fp8W8A8DecodeMaximumRows = 4

    /// FP8 x FP8 on a float input (M, K) with M <= ``fp8W8A8DecodeMaximumRows``, quantized inside `gemv_wo_mma`
    /// (mode 4: the FP8 input quantizer's codes and scale, the codes' values staged as float16) and multiplied
    /// on the tensor cores in one launch, `(sum_k qx qw) * (sx * sw) + b`; `nil` where it does not apply (K not a positive multiple of
    /// 16, unaligned operands, or the staged input too large; then quantize and call ``fp8``).
    /// - Returns: `(M, N)` in `outputDType`.
    package static func fp8W8A8Decode(input: Tensor, weightCodes: Tensor, weightScale: Tensor, bias: Tensor?,
                                      outputDType: DType) throws -> Tensor? {
        let (m, k) = (input.shape[0], input.shape[1])
        let n = weightCodes.shape[0]
        guard !forcesFP8BLASLt, m >= 1 && m <= fp8W8A8DecodeMaximumRows,
              [.float32, .float16, .bfloat16].contains(input.dtype),
              [.float32, .float16, .bfloat16].contains(outputDType) else { return nil }
        let x = try GPU(try input.contiguous())
        let w = try GPU(try weightCodes.contiguous())
        guard decodeServes(m: m, k: k, blockColumns: 16, w8a8: false, addresses: [x.address, w.address]),
              weightOnlyMMASharedBytes(m: m, k: k, floatInput: false) <= x.device.maxSharedMemoryPerBlock else {
            return nil
        }
        let y = try GPU.empty([m, n], outputDType, on: x.device)
        guard n > 0 else { return y }
        try weightOnlyMMA(mode: 4, x: x, inputDType: input.dtype, w: w, scales: try GPU(try weightScale.contiguous()),
                          bias: try bias.map { try GPU(try $0.contiguous()) }, biasDType: bias?.dtype, y: try GPU(y),
                          m: m, n: n, k: k, blockRows: 1, blockColumns: 16, outputDType: outputDType)
        return y
    }

    /// The decode kernels, as programmatic dependent launch tells them apart (``decodePrefetchMiB``).
    enum DecodeKernel: String, CaseIterable {
        /// `gemv_stream` (W8A8 at M <= 2, and the SIMT weight-only paths).
        case stream
        /// `gemv_w8a8_mma`.
        case w8a8MMA = "w8a8mma"
        /// `gemv_wo_mma` modes 2 (INT8 weight-only), 3 (FP8 weight-only) and 4 (FP8 W8A8).
        case int8WeightOnlyMMA = "wo2", fp8WeightOnlyMMA = "wo3", fp8W8A8MMA = "fp8"

        static func weightOnly(mode: Int) -> DecodeKernel {
            mode == 2 ? .int8WeightOnlyMMA : mode == 3 ? .fp8WeightOnlyMMA : .fp8W8A8MMA
        }
    }

    /// MiB of weight rows each decode grid asks L2 to prefetch (its CTAs' first rows, shared evenly) before it
    /// waits for the previous kernel: per kernel the fastest of 0, 3, 6, 9, 12 and 18 summed over both WAN
    /// decode shapes at M = 2 and 16 (bench-cuda graph times on the H200, NOTES.md issue 10 session 9; 5B
    /// M = 2: W8A8 18.7 -> 17.3 us at 9, FP8 W8A8 19.5 -> 17.6 at 9, FP8 weight-only 19.0 -> 17.9 at 12).
    /// INT8 weight-only prefetches nothing: every amount made it slower (20.1 us at 0, 21.6-22.5 at 3-18).
    static func decodePrefetchMiB(_ kernel: DecodeKernel) -> Int {
        switch kernel {
        case .stream, .fp8W8A8MMA: 9
        case .fp8WeightOnlyMMA: 12
        case .w8a8MMA: 18
        case .int8WeightOnlyMMA: 0
        }
    }

    /// `QLINEAR_DECODE_PDL`, read once, to compare: `off` launches the decode kernels as before (no
    /// programmatic dependent launch); `P` (a number) prefetches P MiB in every decode kernel; `name=P,...`
    /// (names of ``DecodeKernel``) per kernel, the others at their default.
    static let decodeOverlapOverride: [String: Int]? = {
        guard let text = ProcessInfo.processInfo.environment["QLINEAR_DECODE_PDL"] else { return [:] }
        if text == "off" { return nil }
        if let all = Int(text) {
            return Dictionary(uniqueKeysWithValues: DecodeKernel.allCases.map { ($0.rawValue, all) })
        }
        return Dictionary(text.split(separator: ",").compactMap { item -> (String, Int)? in
            let parts = item.split(separator: "=")
            guard parts.count == 2, let value = Int(parts[1]) else { return nil }
            return (String(parts[0]), value)
        }) { $1 }
    }()

    /// The `-D` options of programmatic dependent launch for `kernel` on `device` (decode.cu's `PDL` and
    /// `PF`), empty where launches do not overlap (before sm_90, or `QLINEAR_DECODE_PDL=off`): every decode
    /// kernel lets the next kernel start early, prefetches its first weight rows into L2 and waits for the
    /// previous kernel before it reads its operands (so its launch, start and first DRAM round trip may overlap
    /// that kernel's tail; the measured gain is the prefetch's, NOTES.md issue 10 session 9).
    static func decodeOverlapDefines(_ kernel: DecodeKernel, on device: CUDADevice) -> [String: Int] {
        guard device.overlapsLaunches, let override = decodeOverlapOverride else { return [:] }
        return ["PDL": 1, "PF": max(0, override[kernel.rawValue] ?? decodePrefetchMiB(kernel))]
    }

    /// Queues `gemv_stream` in `mode`; the caller has checked ``decodeServes(m:k:blockColumns:w8a8:addresses:)``.
    /// `x` is (M, K): int8 codes for mode 0 (with `sx`), else floats of `inputDType`.
    static func gemvStream(_ mode: DecodeMode, x: GPU, inputDType: DType, sx: GPU?, w: GPU, scales: GPU,
                           bias: Tensor?, m: Int, n: Int, k: Int, blockRows: Int, blockColumns: Int,
                           towardZero: Bool, outputDType: DType) throws -> Tensor {
        let device = x.device
        let y = try GPU.empty([m, n], outputDType, on: device)
        guard n > 0 else { return y }
        let b = try bias.map { try GPU(try $0.contiguous()) }
        let w8a8 = mode == .w8a8Codes || mode == .w8a8Float
        if w8a8 && w8a8OnTensorCores(m: m, k: k, blockColumns: blockColumns, device: device) {
            try w8a8MMA(mode, x: x, inputDType: inputDType, sx: sx, w: w, scales: scales, bias: b,
                        biasDType: bias?.dtype, y: try GPU(y), m: m, n: n, k: k, blockRows: blockRows,
                        blockColumns: blockColumns, towardZero: towardZero, outputDType: outputDType)
            return y
        }
        if !w8a8 && weightOnlyOnTensorCores(mode, m: m, k: k, blockColumns: blockColumns,
                                            floatInput: inputDType == .float32, device: device) {
            try weightOnlyMMA(mode: mode.rawValue, x: x,
                              inputDType: inputDType, w: w, scales: scales, bias: b, biasDType: bias?.dtype,
                              y: try GPU(y), m: m, n: n, k: k, blockRows: blockRows, blockColumns: blockColumns,
                              outputDType: outputDType)
            return y
        }
        let inputBytes = mode == .w8a8Codes ? 1 : inputDType.byteSize
        // The input goes to shared memory where it fits (always for mode 1, which quantizes into it).
        let staged = mode == .w8a8Float
            || (w8a8 ? decodeSharedBytes(mode, m: m, k: k, blockColumns: blockColumns, inputBytes: 1, staged: true)
                    <= device.maxSharedMemoryPerBlock
                : m * k * inputBytes <= decodeWeightOnlyStagedBytes)
        var defines = ["MODE": mode.rawValue, "MT": m, "OUT_DT": outputDType.kernelCode, "BR": blockRows,
                       "BC": blockColumns, "BIAS_DT": (bias?.dtype ?? .float32).kernelCode,
                       "U": decodeChunksPerLane(mode, k: k), "XS": staged ? 1 : 0]
        if mode != .w8a8Codes { defines["X_DT"] = inputDType.kernelCode }
        if mode == .w8a8Float { defines["TOWARD_ZERO"] = towardZero ? 1 : 0 }
        let overlap = decodeOverlapDefines(.stream, on: device)
        defines.merge(overlap) { $1 }
        let function = try device.function(DecodeKernels.source, entry: "gemv_stream", defines: defines)
        let shared = decodeSharedBytes(mode, m: m, k: k, blockColumns: blockColumns, inputBytes: inputBytes,
                                       staged: staged)
        if shared > 48 << 10 { try device.setDynamicSharedMemory(function, bytes: shared) }
        // Persistent and all resident: each warp streams rows n, n + warps, ... Of the resident warps,
        // as many as give every warp the same number of rows (ceil(N / resident) rounds), so that no
        // round runs with a fraction of the warps streaming.
        let resident = device.multiprocessorCount
            * (try device.residentBlocks(function, threads: 256, sharedMemory: shared)) * 8
        let rounds = (n + resident - 1) / resident
        let grid = ((n + rounds - 1) / rounds + 7) / 8
        try device.launch(function, grid: (grid, 1, 1), block: (256, 1, 1), sharedMemory: shared,
                          overlapsPrevious: !overlap.isEmpty, [
            x.argument, sx?.argument ?? .null, w.argument, scales.argument, b?.argument ?? .null,
            try GPU(y).argument, .int32(Int32(n)), .int32(Int32(k))])
        return y
    }

    /// Queues `gemv_w8a8_mma` (W8A8 on the tensor cores, decode.cu) into `y`: mode 1 quantizes the float input
    /// inside the kernel, mode 0 reads the given codes and scales `sx`. Persistent: all resident CTAs (at most
    /// one per 16-row tile), CTA i taking tiles i, i + grid, ...; so the SMs' tile counts differ by at most one
    /// per resident CTA (trimming the grid to equal rounds per CTA left some SMs with one CTA and others with
    /// two, as `gemv_wo_mma`'s 5B launch shows).
    private static func w8a8MMA(_ mode: DecodeMode, x: GPU, inputDType: DType, sx: GPU?, w: GPU, scales: GPU,
                                bias: GPU?, biasDType: DType?, y: GPU, m: Int, n: Int, k: Int, blockRows: Int,
                                blockColumns: Int, towardZero: Bool, outputDType: DType) throws {
        let device = x.device
        var defines = ["MODE": mode.rawValue, "MT": m, "OUT_DT": outputDType.kernelCode, "BR": blockRows,
                       "BC": blockColumns, "BIAS_DT": (biasDType ?? .float32).kernelCode, "U": w8a8MMASegments(m: m),
                       "XS": 1, "TC": 1]
        if mode == .w8a8Float {
            defines["X_DT"] = inputDType.kernelCode
            defines["TOWARD_ZERO"] = towardZero ? 1 : 0
        }
        let overlap = decodeOverlapDefines(.w8a8MMA, on: device)
        defines.merge(overlap) { $1 }
        let function = try device.function(DecodeKernels.source, entry: "gemv_w8a8_mma", defines: defines)
        let shared = w8a8MMASharedBytes(m: m, k: k, blockColumns: blockColumns)
        if shared > 48 << 10 { try device.setDynamicSharedMemory(function, bytes: shared) }
        let resident = device.multiprocessorCount
            * (try device.residentBlocks(function, threads: 256, sharedMemory: shared))
        try device.launch(function, grid: (min((n + 15) / 16, resident), 1, 1), block: (256, 1, 1),
                          sharedMemory: shared, overlapsPrevious: !overlap.isEmpty, [
                            x.argument, sx?.argument ?? .null, w.argument, scales.argument, bias?.argument ?? .null,
                            y.argument, .int32(Int32(n)), .int32(Int32(k))])
    }

    /// Queues `gemv_wo_mma` (decode.cu) into `y`: weight-only (modes 2, 3) or FP8 W8A8 (mode 4) on the tensor
    /// cores. Persistent: each CTA takes 16-row tiles blockIdx.x, + grid, ...; of the resident CTAs, as many
    /// as give every CTA the same number of tiles.
    private static func weightOnlyMMA(mode: Int, x: GPU, inputDType: DType, w: GPU, scales: GPU, bias: GPU?,
                                      biasDType: DType?, y: GPU, m: Int, n: Int, k: Int, blockRows: Int,
                                      blockColumns: Int, outputDType: DType) throws {
        let device = x.device
        let overlap = decodeOverlapDefines(.weightOnly(mode: mode), on: device)
        let defines = ["MODE": mode, "MT": m, "OUT_DT": outputDType.kernelCode, "BR": blockRows,
                       "BC": blockColumns, "BIAS_DT": (biasDType ?? .float32).kernelCode, "X_DT": inputDType.kernelCode,
                       "U": weightOnlyMMASegments(mode: mode, m: m), "XS": 1, "TC": 1].merging(overlap) { $1 }
        let function = try device.function(DecodeKernels.source, entry: "gemv_wo_mma", defines: defines)
        let shared = weightOnlyMMASharedBytes(m: m, k: k, floatInput: mode != 4 && inputDType == .float32)
        if shared > 48 << 10 { try device.setDynamicSharedMemory(function, bytes: shared) }
        let tiles = (n + 15) / 16
        let resident = device.multiprocessorCount
            * (try device.residentBlocks(function, threads: 256, sharedMemory: shared))
        let rounds = (tiles + resident - 1) / resident
        try device.launch(function, grid: ((tiles + rounds - 1) / rounds, 1, 1), block: (256, 1, 1),
                          sharedMemory: shared, overlapsPrevious: !overlap.isEmpty, [
                            x.argument, .null, w.argument, scales.argument, bias?.argument ?? .null, y.argument,
                            .int32(Int32(n)), .int32(Int32(k))])
    }
}
