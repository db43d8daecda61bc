import CQLKernels
import Foundation
import QLTensor

/// The block-wise INT8 CPU kernels (C, in CQLKernels) behind ``CPUBackend``'s kernel contract.
/// Every entry point checks sizes and passes contiguous buffers; raw pointers stay here.
/// The layout's reference (`BlockWiseINT8Reference` in QLLayouts) defines the results: quantize and
/// dequantize are bit-identical to it, the GEMMs equal it up to float32 summation order.
enum BlockWiseINT8CPU {
    /// Inputs with at most this many rows run the weight-streaming GEMV kernels (decode shapes),
    /// which read each weight row once for all rows and need no packing.
    static let decodeRows = 16

    /// The most rows for which W8A8 runs the decode GEMV on `path`. On the AVX-512 VNNI path the GEMM
    /// reads the weight in place (no per-call packing), and from 5 rows it beats the GEMV, whose
    /// activation reads grow with every row: 18432 x 3072 on the 2-core Zen 4, CPU time per call,
    /// GEMV 4.5 / 7.3 / 12 ms at M = 2 / 4 / 6 against the GEMM's 8.4-9 ms for any M <= 16
    /// (NOTES.md "Issue 11, session 9"). The other paths pack the weight per call: ``decodeRows``.
    static func w8a8DecodeRows(path: CPUKernelPath) -> Int {
        path == .avx512vnni ? 4 : decodeRows
    }

    /// Quantizes a CPU float tensor of rank >= 1 with the vectorised kernel, bands of block rows in
    /// parallel.
    /// - Throws: ``TensorError/Code/nonFiniteValue`` for NaN or infinity (the reference's message).
    static func quantize(_ tensor: Tensor, blocks: INT8Blocks) throws -> INT8Parts {
        try QuantizationInput.check(tensor, layout: layoutName)
        let geometry = MatrixGeometry(tensor.shape)
        let (batches, rows, columns) = (geometry.batches, geometry.rows, geometry.columns)
        let rowBlocks = ShapeArithmetic.ceilDiv(rows, blocks.rows)
        // The kernel writes every code (zeros for all-zero blocks) and every scale.
        let codes = try Tensor(uninitializedShape: tensor.shape, dtype: .int8)
        let scales = try Tensor(uninitializedShape: blocks.scaleShape(for: tensor.shape), dtype: .float32)
        let path = CPUKernelPath.current.code
        let rounding: Int32 = blocks.rounding == .towardZero ? 1 : 0
        let nonFinite = KernelFlag()
        try tensor.withUnsafeFloats { x in
            guard let base = x.baseAddress, !x.isEmpty else { return }
            let q = codes.storage.hostPointer.assumingMemoryBound(to: Int8.self)
            let s = scales.storage.hostPointer.assumingMemoryBound(to: Float.self)
            let bandElements = blocks.rows * max(columns, 1)
            CPUKernels.parallelRanges(count: batches * rowBlocks, minimumPerThread: max(1, 32768 / bandElements)) {
                range in
                let status = ck_i8_quantize(base, Int64(rows), Int64(columns), Int64(blocks.rows),
                                            Int64(blocks.columns), rounding, Int64(range.lowerBound),
                                            Int64(range.upperBound), q, s, path)
                if status != 0 { nonFinite.set() }
            }
            if nonFinite.isSet {
                try QuantizationInput.checkFinite(x, shape: tensor.shape, layout: layoutName)
            }
        }
        return INT8Parts(codes: codes, scales: scales)
    }

    /// The name errors give the layout.
    static let layoutName = "BlockWiseINT8Layout"

    /// Fused gelu on an activation (1 x B blocks): each block is dequantized, passed through gelu,
    /// rounded to `roundTo` and re-quantized in one pass over L1-resident data, rows in parallel;
    /// bit-identical to dequantize, ``DenseOps/gelu(_:approximation:)``, quantize.
    /// Returns `nil` for tensors it does not take (other blockings, blocks over `CK_GELU_MAX_BLOCK`,
    /// a `roundTo` it does not write), which ``CPUBackend`` then serves in three passes.
    static func gelu(_ source: INT8Parts, shape: [Int], blocks: INT8Blocks, roundTo: DType,
                     approximation: GeluApproximation) throws -> INT8Parts? {
        guard blocks.alongRows, blocks.columns <= Int(CK_GELU_MAX_BLOCK),
              let roundCode = CPUKernels.outputCode(roundTo) else { return nil }
        let columns = shape.last ?? 1
        let rows = source.codes.count / max(columns, 1)
        // The kernel writes every code and every scale.
        let codes = try Tensor(uninitializedShape: shape, dtype: .int8)
        let scales = try Tensor(uninitializedShape: source.scales.shape, dtype: .float32)
        let tanhForm: Int32 = approximation == .tanh ? 1 : 0
        let towardZero: Int32 = blocks.rounding == .towardZero ? 1 : 0
        try source.codes.withUnsafeContiguousBytes { input in
            try source.scales.withUnsafeContiguousBytes { inputScales in
                guard let input = input.baseAddress, let inputScales = inputScales.baseAddress, rows > 0, columns > 0
                else { return }
                let codesIn = input.assumingMemoryBound(to: Int8.self)
                let scalesIn = inputScales.assumingMemoryBound(to: Float.self)
                let codesOut = codes.storage.hostPointer.assumingMemoryBound(to: Int8.self)
                let scalesOut = scales.storage.hostPointer.assumingMemoryBound(to: Float.self)
                CPUKernels.parallelRanges(count: rows, minimumPerThread: max(1, 16384 / columns)) { range in
                    ck_i8_gelu_requantize_rows(codesIn, scalesIn, Int64(columns), Int64(blocks.columns), tanhForm,
                                               roundCode, towardZero, Int64(range.lowerBound),
                                               Int64(range.upperBound), codesOut, scalesOut)
                }
            }
        }
        // The kernel marks a block that met a NaN or infinity with scale NaN; like quantizing that
        // tensor with fromFloat, this is an error, never a silent zero.
        try scales.withUnsafeFloats { values in
            if let index = values.firstIndex(where: { $0.isNaN }) {
                throw TensorError(.nonFiniteValue, "gelu on a block-wise INT8 tensor: block \(index) of the result "
                    + "holds NaN or infinity (is the input's scale \(try source.scales.floats()[index])?); "
                    + "quantizing it would write garbage. Check the input's scales for NaN/infinity")
            }
        }
        return INT8Parts(codes: codes, scales: scales)
    }

    /// `q * scale` of each element's block, written straight in `dtype` (float32, float16 or
    /// bfloat16; `nil` for other dtypes), rows in parallel.
    static func dequantize(_ source: INT8Parts, blocks: INT8Blocks, to dtype: DType) throws -> Tensor? {
        guard let outputCode = CPUKernels.outputCode(dtype) else { return nil }
        let shape = source.codes.shape
        let geometry = MatrixGeometry(shape)
        let (batches, rows, columns) = (geometry.batches, geometry.rows, geometry.columns)
        // The kernel writes every element, so the buffer is not zero-filled first.
        let result = try Tensor(uninitializedShape: shape, dtype: dtype)
        let path = CPUKernelPath.current.code
        try source.codes.withUnsafeContiguousBytes { codes in
            try source.scales.withUnsafeContiguousBytes { scales in
                guard let codes = codes.baseAddress, let scales = scales.baseAddress, source.codes.count > 0
                else { return }
                let out = result.storage.hostPointer
                CPUKernels.parallelRanges(count: batches * rows, minimumPerThread: max(1, 65536 / max(columns, 1))) {
                    range in
                    _ = ck_i8_dequantize(codes.assumingMemoryBound(to: Int8.self),
                                         scales.assumingMemoryBound(to: Float.self), Int64(rows), Int64(columns),
                                         Int64(blocks.rows), Int64(blocks.columns), Int64(range.lowerBound),
                                         Int64(range.upperBound), out + range.lowerBound * columns * dtype.byteSize,
                                         outputCode, path)
                }
            }
        }
        return result
    }

    /// W8A8: `y[m,n] = sum_j float(sum_{k in block j} qx[m,k] qw[n,k]) * (sx[m,j] * sw[n/Bn,j]) + b[n]`
    /// with activation codes `(M, K)` in 1 x Bk blocks. GEMV kernels for decode shapes, else the
    /// packed GEMM of the current path, columns split across cores.
    /// - Returns: `(M, N)` in `outputDType`.
    static func linearW8A8(inputCodes: Tensor, inputScales: Tensor, weight: INT8Parts, blocks: INT8Blocks,
                           bias: Tensor?, outputDType: DType) throws -> Tensor {
        let (m, k, n) = (inputCodes.shape[0], inputCodes.shape[1], weight.codes.shape[0])
        let bias = try bias?.floats()
        return try LinearOutput.make(shape: [m, n], dtype: outputDType, m: m, n: n, k: k, bias: bias) {
            out, outputCode in
            try inputCodes.withUnsafeContiguousBytes { xq in
                try inputScales.withUnsafeContiguousBytes { sx in
                    try weight.codes.withUnsafeContiguousBytes { wq in
                        try weight.scales.withUnsafeContiguousBytes { sw in
                            try CPUKernels.withOptionalFloats(bias) { biasPointer in
                                let args = ck_i8_gemm_args(
                                    m: Int64(m), n: Int64(n), k: Int64(k), bk: Int64(blocks.columns),
                                    bn: Int64(blocks.rows), x: xq.baseAddress?.assumingMemoryBound(to: Int8.self),
                                    sx: sx.baseAddress?.assumingMemoryBound(to: Float.self), apack: nil, sxpack: nil,
                                    w: wq.baseAddress?.assumingMemoryBound(to: Int8.self),
                                    sw: sw.baseAddress?.assumingMemoryBound(to: Float.self), bias: biasPointer,
                                    out: out, out_dtype: outputCode)
                                try gemm(args, path: CPUKernelPath.current)
                            }
                        }
                    }
                }
            }
        }
    }

    /// The least activation bytes a thread packs (smaller packs run on the calling thread).
    static let packBytesPerThread = 256 << 10
    /// The least multiply-adds a thread of the W8A8 GEMM gets (2^24, ~25 us at 650 GOP/s): below that,
    /// waking a worker costs more than it saves (M = 64, 256 x 256 took 0.19 ms on two cores, 0.07 ms on
    /// one, on the 2-core VM).
    static let multiplyAddsPerThread = 1 << 24

    /// The largest packed activation (bytes) for which the W8A8 GEMM splits its columns into 8 ranges
    /// per core instead of 4 (``GEMMPlan/rangesPerCore``).
    static let smallActivationBytes = 1 << 20

    /// Runs the W8A8 kernels on checked operands (m, n, k > 0).
    private static func gemm(_ args: ck_i8_gemm_args, path: CPUKernelPath) throws {
        var args = args
        let n = Int(args.n)
        if args.m <= w8a8DecodeRows(path: path) {
            withUnsafePointer(to: args) { pointer in
                CPUKernels.parallelRanges(count: n, minimumPerThread: 64) { range in
                    ck_i8_gemv_run(pointer, Int64(range.lowerBound), Int64(range.upperBound), path.code)
                }
            }
            return
        }
        let plan = try GEMMPlan(args, path: path)
        if plan.packing {
            // Ranges of whole 16-row vectors: the in-place VNNI packer transposes 16 rows at a time. At
            // least 256 KB of codes per thread: handing a smaller pack to a worker costs more (waking a
            // parked worker took ~40 us on the 2-core VM) than packing it here.
            CPUKernels.parallelRanges(count: plan.rows, granule: 16,
                                      minimumPerThread: max(16, Self.packBytesPerThread / Int(args.k))) { range in
                plan.pack(args, range)
            }
        }
        plan.attach(&args)
        let failed = KernelFlag()
        withExtendedLifetime(plan) {
            withUnsafePointer(to: args) { pointer in
                CPUKernels.parallelRanges(count: n, granule: plan.granule, minimumPerThread: plan.minimumColumns,
                                          rangesPerCore: plan.rangesPerCore) { range in
                    if !GEMMPlan.run(pointer, range, path: path) { failed.set() }
                }
            }
        }
        try GEMMPlan.check(failed)
    }

    /// The packed activation of one W8A8 GEMM (M > ``w8a8DecodeRows(path:)``) and how its columns are split.
    private struct GEMMPlan {
        /// Rows of the packed activation (M rounded up to the path's micro-tile).
        let rows: Int
        /// Whether the path packs the activation (every SIMD path but AMX reading it in place).
        let packing: Bool
        let path: CPUKernelPath
        /// A tensor's storage: buffers of 2 MB and more get huge pages, so first touch is cheap.
        let packed: Tensor
        let packedScales: Tensor
        let granule: Int
        /// Column ranges per core. Every range streams the whole packed activation once: AMX takes one
        /// wide range per core; the other paths take 8 while the activation is small (at most
        /// ``smallActivationBytes``; M = 64: the ranges finish ~8 times closer together, so a worker that
        /// starts late or is preempted leaves less of the last range to wait for), else 4 (M = 1024,
        /// K = 14336: 8 ranges per core re-read its 14.7 MB once more per range and ran 10-25 % slower,
        /// one core's share, thread CPU time).
        let rangesPerCore: Int
        /// The least columns a thread takes (``multiplyAddsPerThread``).
        let minimumColumns: Int
        /// The threads the column split can use.
        let threads: Int

        init(_ args: ck_i8_gemm_args, path: CPUKernelPath) throws {
            var rows: Int64 = 0
            var rowBytes: Int64 = 0
            ck_i8_gemm_activation_size(args.m, args.k, args.bk, path.code, &rows, &rowBytes)
            let kBlocks = (args.k + args.bk - 1) / args.bk
            // AMX reads the codes in place where its packed rows would be the rows as they are (K blocks
            // of multiples of 64): no packing pass, no buffer.
            let inPlace = ck_i8_gemm_activation_in_place(args.k, args.bk, path.code) == 1
            packing = path != .portable && !inPlace
            self.rows = Int(rows)
            self.path = path
            packed = try Tensor(uninitializedShape: [packing ? max(Int(rows * rowBytes), 1) : 1], dtype: .int8)
            packedScales = try Tensor(uninitializedShape: [packing ? max(Int(rows * kBlocks), 1) : 1],
                                      dtype: .float32)
            granule = Int(ck_i8_gemm_granule(path.code))
            rangesPerCore = path == .amx ? 1 : rows * rowBytes <= BlockWiseINT8CPU.smallActivationBytes ? 8 : 4
            minimumColumns = max(1, BlockWiseINT8CPU.multiplyAddsPerThread / Int(args.m * args.k))
            let units = (Int(args.n) + granule - 1) / granule
            threads = min(CPUKernels.threadCount, units, max(1, Int(args.n) / minimumColumns))
        }

        /// Packs activation rows `range` (of ``rows``; ranges of whole 16-row vectors) of `args.x`.
        func pack(_ args: ck_i8_gemm_args, _ range: Range<Int>) {
            ck_i8_gemm_pack_activation(args.x, args.sx, args.m, args.k, args.bk, path.code, Int64(range.lowerBound),
                                       Int64(range.upperBound), packed.storage.hostPointer,
                                       packedScales.storage.hostPointer.assumingMemoryBound(to: Float.self))
        }

        /// Points `args` at the packed activation (when the path packs it).
        func attach(_ args: inout ck_i8_gemm_args) {
            guard packing else { return }
            args.apack = UnsafeRawPointer(packed.storage.hostPointer)
            args.sxpack = UnsafePointer(packedScales.storage.hostPointer.assumingMemoryBound(to: Float.self))
        }

        /// Output columns `range`; false when the kernel could not allocate its buffers.
        static func run(_ args: UnsafePointer<ck_i8_gemm_args>, _ range: Range<Int>, path: CPUKernelPath) -> Bool {
            ck_i8_gemm_run(args, Int64(range.lowerBound), Int64(range.upperBound), path.code) == 0
        }

        static func check(_ failed: KernelFlag) throws {
            if failed.isSet {
                throw TensorError(.backendFailure,
                                  "INT8 GEMM: could not allocate its packing buffers (out of memory)")
            }
        }
    }

    /// The most rows ``linearW8A8QuantizingInput(_:weight:blocks:bias:outputDType:)`` takes: 256. Its one
    /// region saves two hand-overs (~100 us), which matters for short calls (M = 64: 1.3-1.9 ms on the 2-core
    /// VM, 0.4-2 ms on the 16-core AMX host); at M = 1024 on the AMX host (16 threads) three interleaved
    /// rounds against the three-region path gave W8A8 medians of 4.64 against 2.93 ms (3072 x 3072) and
    /// 16.0 against 14.5 ms (14336 x 3072), and on the 2-core VM it was undecided (0.89-1.11x), so large
    /// inputs keep the three regions (NOTES.md, issue 11 session 8).
    static let fusedQuantizationMaximumRows = 256

    /// W8A8 on a float input `(M, K)` (M > ``w8a8DecodeRows(path:)``) that is quantized here into 1 x `blocks.columns`
    /// blocks with `blocks.rounding`: the codes and scales of ``quantize(_:blocks:)`` and the GEMM of
    /// ``linearW8A8(inputCodes:inputScales:weight:blocks:bias:outputDType:)``, bit for bit, in one parallel
    /// region of two phases (``CPUKernels/parallelPhases(_:threads:)``): 16-row vectors of the input
    /// quantized and packed right away (the codes still in cache), then the columns of the GEMM. Three
    /// regions (quantize, pack, GEMM) cost two more hand-overs to the worker: on the 2-core VM at
    /// 64 x 3072 x 3072 the worker started each region 40-60 us after its caller. Like ``quantize(_:blocks:)``,
    /// it throws for NaN or infinity in the input. `nil` for decode shapes (the GEMV reads the codes unpacked)
    /// and above ``fusedQuantizationMaximumRows`` rows (the caller then quantizes and calls the GEMM).
    static func linearW8A8QuantizingInput(_ input: Tensor, weight: INT8Parts, blocks: INT8Blocks, bias: Tensor?,
                                          outputDType: DType) throws -> Tensor? {
        let (m, k, n) = (input.shape[0], input.shape[1], weight.codes.shape[0])
        let path = CPUKernelPath.current
        guard m > w8a8DecodeRows(path: path), m <= fusedQuantizationMaximumRows else { return nil }
        try QuantizationInput.check(input, layout: layoutName)
        let activationBlocks = INT8Blocks(rows: 1, columns: blocks.columns, rounding: blocks.rounding)
        let bias = try bias?.floats()
        return try LinearOutput.make(shape: [m, n], dtype: outputDType, m: m, n: n, k: k, bias: bias) {
            out, outputCode in
            // The kernels write every code and every scale.
            let codes = try Tensor(uninitializedShape: [m, k], dtype: .int8)
            let scales = try Tensor(uninitializedShape: activationBlocks.scaleShape(for: [m, k]), dtype: .float32)
            let q = codes.storage.hostPointer.assumingMemoryBound(to: Int8.self)
            let s = scales.storage.hostPointer.assumingMemoryBound(to: Float.self)
            let rounding: Int32 = blocks.rounding == .towardZero ? 1 : 0
            try input.withUnsafeFloats { x in
                try weight.codes.withUnsafeContiguousBytes { wq in
                    try weight.scales.withUnsafeContiguousBytes { sw in
                        try CPUKernels.withOptionalFloats(bias) { biasPointer in
                            var args = ck_i8_gemm_args(
                                m: Int64(m), n: Int64(n), k: Int64(k), bk: Int64(blocks.columns),
                                bn: Int64(blocks.rows), x: UnsafePointer(q), sx: UnsafePointer(s), apack: nil,
                                sxpack: nil, w: wq.baseAddress?.assumingMemoryBound(to: Int8.self),
                                sw: sw.baseAddress?.assumingMemoryBound(to: Float.self), bias: biasPointer,
                                out: out, out_dtype: outputCode)
                            let plan = try GEMMPlan(args, path: path)
                            plan.attach(&args)
                            let nonFinite = KernelFlag()
                            let failed = KernelFlag()
                            let xBase = x.baseAddress!
                            try withExtendedLifetime((plan, codes, scales)) {
                                try withUnsafePointer(to: args) { pointer in
                                    let quantizeAndPack = CPUKernels.RangePhase(
                                        count: plan.packing ? plan.rows : m, granule: 16) { range in
                                        if range.lowerBound < m {
                                            let status = ck_i8_quantize(
                                                xBase, Int64(m), Int64(k), 1, Int64(blocks.columns), rounding,
                                                Int64(range.lowerBound), Int64(min(range.upperBound, m)), q, s,
                                                path.code)
                                            if status != 0 { nonFinite.set() }
                                        }
                                        if plan.packing { plan.pack(pointer.pointee, range) }
                                    }
                                    let columns = CPUKernels.RangePhase(count: n, granule: plan.granule,
                                                                        rangesPerCore: plan.rangesPerCore) { range in
                                        if !GEMMPlan.run(pointer, range, path: path) { failed.set() }
                                    }
                                    CPUKernels.parallelPhases([quantizeAndPack, columns], threads: plan.threads)
                                }
                                if nonFinite.isSet {
                                    try QuantizationInput.checkFinite(x, shape: input.shape, layout: layoutName)
                                }
                                try GEMMPlan.check(failed)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Weight-only: `y = x (q * s)^T + b` with a float input `(M, K)`. GEMV kernels for decode
    /// shapes; otherwise our FMA GEMM, which decodes the weight into cache-sized float panels as it
    /// goes (`ck_decoded_gemm`). Neither holds a float copy of the whole weight.
    /// - Returns: `(M, N)` in the input's dtype.
    static func linearWeightOnly(_ input: Tensor, weight: INT8Parts, blocks: INT8Blocks, bias: Tensor?) throws
        -> Tensor {
        let (m, k, n) = (input.shape[0], input.shape[1], weight.codes.shape[0])
        let bias = try bias?.floats()
        let path = CPUKernelPath.current
        return try LinearOutput.make(shape: [m, n], dtype: input.dtype, m: m, n: n, k: k, bias: bias) {
            out, outputCode in
            try input.withUnsafeFloats { x in
                try weight.codes.withUnsafeContiguousBytes { wq in
                    try weight.scales.withUnsafeContiguousBytes { sw in
                        try CPUKernels.withOptionalFloats(bias) { biasPointer in
                            let w = wq.baseAddress!.assumingMemoryBound(to: Int8.self)
                            let s = sw.baseAddress!.assumingMemoryBound(to: Float.self)
                            let (bn, bk) = (Int64(blocks.rows), Int64(blocks.columns))
                            if m <= decodeRows {
                                CPUKernels.parallelRanges(count: n, minimumPerThread: 64) { range in
                                    ck_i8_gemv_weight_only(x.baseAddress, Int64(m), Int64(k), w, s, Int64(n), bn, bk,
                                                           biasPointer, out, outputCode, Int64(range.lowerBound),
                                                           Int64(range.upperBound), path.code)
                                }
                                return
                            }
                            var weight = ck_decoded_weight(kind: Int32(CK_WEIGHT_INT8), codes: w, scales: s,
                                                           scale: 1, bn: bn, bk: bk)
                            try CPUKernels.decodedGEMM(x: .floats(x.baseAddress!), m: m, n: n, k: k,
                                                       weight: &weight, alpha: 1, bias: biasPointer, output: out,
                                                       outputCode: outputCode, path: path)
                        }
                    }
                }
            }
        }
    }
}

/// The output buffer of the CPU linear kernels of both layouts.
enum LinearOutput {
    static func make(shape: [Int], dtype: DType, m: Int, n: Int, k: Int, bias: [Float]?,
                     _ body: (UnsafeMutableRawPointer, Int32) throws -> Void) throws -> Tensor {
        guard m > 0, n > 0, k > 0 else {
            let row = bias ?? [Float](repeating: 0, count: n)
            let values = (0..<m).flatMap { _ in row }
            return try Tensor(values, shape: shape, dtype: dtype)
        }
        let direct = CPUKernels.outputCode(dtype)
        // Every kernel `body` runs (GEMMs, GEMVs, on every path) stores each of the m x n outputs
        // once, so the buffer is not zero-filled first (a fill is a pass over fresh pages).
        let result = try Tensor(uninitializedShape: shape, dtype: direct == nil ? .float32 : dtype)
        try body(result.storage.hostPointer, direct ?? Int32(CK_OUT_F32))
        return direct == nil ? try result.converted(to: dtype) : result
    }
}

/// A flag that kernel workers raise (a non-finite value met, an allocation that failed).
final class KernelFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var raised = false
    func set() { lock.withLock { raised = true } }
    var isSet: Bool { lock.withLock { raised } }
}
