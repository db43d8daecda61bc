import Foundation
import QLTensor

/// The quantized kernels of the CUDA backend, on tensors that already live on one CUDA device.
///
/// The layouts' CUDA handlers call these; raw device pointers never leave this module. Every
/// function checks what it supports before launching anything.
package enum CUDAQuantizedOps {
    // MARK: Block-wise INT8

    /// Block-wise INT8 quantization of `source` (of logical shape `shape`) into `blockRows x
    /// blockColumns` blocks: `scale = amax / 127`, `q = clamp(round(x / scale), -127, 127)`.
    ///
    /// The transformed value is rounded to `roundTo` first (the dtype the CPU path materialises it in).
    /// 1 x B blocks with B a power-of-two number of 16-byte accesses (every activation layout a linear
    /// quantizes its input with, and gelu / weight update on them) run `quant_rows`, where each warp
    /// reads and writes contiguous runs (0.79 of the copy bandwidth on the H200 for bf16, NOTES.md issue 10);
    /// every other block shape runs `quant_blocks`. Both give the CPU reference's bits.
    /// - Parameters:
    ///   - scaleShape: the scale grid's shape (`BlockWiseINT8Layout.scaleShape(for:)`).
    ///   - checkFinite: when true, NaN or infinity throws (this waits for the kernel); when false the
    ///     scales of such blocks are non-finite (NaN for a NaN, infinity for an infinity), so the
    ///     rows a GEMM computes from them are non-finite, as a float op would propagate them.
    /// - Returns: int8 codes of `shape` and float32 scales of `scaleShape`, on the source's device.
    /// - Throws: ``TensorError/Code/nonFiniteValue``, or a CUDA error.
    package static func quantizeBlockwise(_ source: QuantizationSource, shape: [Int], scaleShape: [Int],
                                          blockRows: Int, blockColumns: Int, towardZero: Bool,
                                          transform: QuantizationTransform = .none, roundTo: DType = .float32,
                                          checkFinite: Bool) throws -> (codes: Tensor, scales: Tensor) {
        let geometry = MatrixGeometry(shape)
        let (batches, rows, columns) = (geometry.batches, geometry.rows, geometry.columns)
        let input = try prepared(source, transform: transform)
        let device = input.main.device
        let codes = try GPU.empty(shape, .int8, on: device)
        let scales = try GPU.empty(scaleShape, .float32, on: device)
        let count = shape.reduce(1, *)
        guard count > 0 else { return (codes, scales) }
        let flag = checkFinite ? try zeroedWord(device) : nil
        var defines = input.defines.merging(transformDefines(transform, roundTo: roundTo)) { $1 }
        defines["TOWARD_ZERO"] = towardZero ? 1 : 0
        defines["BC"] = blockColumns
        let rowBlocks = (rows + blockRows - 1) / blockRows
        let columnBlocks = (columns + blockColumns - 1) / blockColumns
        let common: [KernelArgument] = [input.main.argument, input.scales, input.delta,
                                        .float(input.strength), try GPU(codes).argument,
                                        try GPU(scales).argument]
        let flagArgument = try flag.map { try GPU($0).argument } ?? KernelArgument.null
        if blockRows == 1, let plan = rowPlan(rows: batches * rows, columns: columns, blockColumns: blockColumns,
                                              input: input, multiprocessors: device.multiprocessorCount) {
            defines["ROWS"] = 1
            defines["EPT"] = plan.ept
            defines["G"] = blockColumns / plan.ept
            defines["U"] = plan.chunks
            let function = try device.function(QuantizationKernels.source, entry: "quant_rows", defines: defines)
            let span = plan.chunks * 32 * plan.ept
            let items = batches * rows * ((columns + span - 1) / span)
            try device.launch(function, grid: (device.gridSize(work: items * 32, perBlock: 256, blocksPerSM: 8), 1, 1),
                              block: (256, 1, 1),
                              common + [.int(batches * rows), .int(columns), .int(columnBlocks), flagArgument])
        } else {
            defines["BLOCKS"] = 1
            defines["BR"] = blockRows
            let function = try device.function(QuantizationKernels.source, entry: "quant_blocks", defines: defines)
            let totalBlocks = batches * rowBlocks * columnBlocks
            try device.launch(function, grid: (min(totalBlocks, device.multiprocessorCount * 64), 1, 1),
                              block: (256, 1, 1),
                              common + [.int(batches), .int(rows), .int(columns), .int(rowBlocks), .int(columnBlocks),
                                        flagArgument])
        }
        if let flag, try readWord(flag) != 0 { throw nonFinite("BlockWiseINT8Layout", shape) }
        return (codes, scales)
    }

    /// `q * scale` of each element's block, in `dtype`.
    package static func dequantizeBlockwise(codes: Tensor, scales: Tensor, blockRows: Int, blockColumns: Int,
                                            to dtype: DType) throws -> Tensor {
        let q = try GPU(try codes.contiguous())
        let s = try GPU(try scales.contiguous())
        let geometry = MatrixGeometry(codes.shape)
        let (rows, columns) = (geometry.rows, geometry.columns)
        let result = try GPU.empty(codes.shape, dtype, on: q.device)
        let count = codes.count
        guard count > 0 else { return result }
        let plan = dequantPlan(columns: columns, codes: q.address, output: dtype)
        let function = try q.device.function(QuantizationKernels.source, entry: "dequant", defines: [
            "DEQUANT": 1, "OUT_DT": dtype.kernelCode, "EPT": plan.ept, "U": plan.chunks, "BR": blockRows,
            "BC": blockColumns, "SRC": 1, "TOWARD_ZERO": 0])
        let threads = (count / plan.ept + plan.chunks - 1) / plan.chunks
        try q.device.launch(function, grid: (q.device.gridSize(work: threads, perBlock: 256, blocksPerSM: 8), 1, 1),
                            block: (256, 1, 1),
                            [q.argument, s.argument, try GPU(result).argument, .int(count),
                             .int(rows), .int(columns), .int((rows + blockRows - 1) / blockRows),
                             .int((columns + blockColumns - 1) / blockColumns)])
        return result
    }

    // MARK: FP8

    /// Per-tensor FP8 e4m3fn quantization: `scale = fixedScale ?? amax / 448` (1 for all zeros),
    /// `q = e4m3(clamp(x / scale, -448, 448))`. Two passes (amax, encode), both on the device.
    /// - Returns: codes of the source's shape and a scalar float32 scale tensor.
    /// - Throws: ``TensorError/Code/nonFiniteValue`` when `checkFinite` and a value is NaN or infinite.
    package static func quantizeFP8(_ source: QuantizationSource, fixedScale: Float?,
                                    transform: QuantizationTransform = .none, roundTo: DType = .float32,
                                    checkFinite: Bool) throws -> (codes: Tensor, scale: Tensor) {
        let input = try prepared(source, transform: transform)
        let device = input.main.device
        let shape = source.primary.shape
        let count = shape.reduce(1, *)
        let codes = try GPU.empty(shape, .float8E4M3FN, on: device)
        let scale = try GPU.empty([], .float32, on: device)
        let amax = try zeroedWord(device)
        var defines = input.defines.merging(transformDefines(transform, roundTo: roundTo)) { $1 }
        defines["FP8"] = 1
        defines["TOWARD_ZERO"] = 0
        defines["EPT"] = [16, 8, 4, 2, 1].first { e in
            count % e == 0 && input.alignedAddresses.allSatisfy { $0.address % UInt64(e * $0.size) == 0 }
        }!
        let ept = defines["EPT"]!
        let grid = (device.gridSize(work: max(count / ept, 1), perBlock: 256, blocksPerSM: 16), 1, 1)
        let common: [KernelArgument] = [input.main.argument, input.scales, input.delta,
                                        .float(input.strength), .int(count), try GPU(amax).argument]
        if fixedScale == nil || checkFinite {
            let pass1 = try device.function(QuantizationKernels.source, entry: "fp8_amax", defines: defines)
            try device.launch(pass1, grid: grid, block: (256, 1, 1), common)
        }
        let pass2 = try device.function(QuantizationKernels.source, entry: "fp8_encode", defines: defines)
        try device.launch(pass2, grid: grid, block: (256, 1, 1),
                          common + [.float(fixedScale ?? 0), try GPU(codes).argument,
                                    try GPU(scale).argument])
        if checkFinite, try readWord(amax) >= 0x7F80_0000 { throw nonFinite("TensorCoreFP8Layout", shape) }
        return (codes, scale)
    }

    /// `float(q) * scale`, in `dtype`.
    package static func dequantizeFP8(codes: Tensor, scale: Tensor, to dtype: DType) throws -> Tensor {
        let q = try GPU(try codes.contiguous())
        let s = try GPU(scale)
        let result = try GPU.empty(codes.shape, dtype, on: q.device)
        let count = codes.count
        guard count > 0 else { return result }
        let plan = dequantPlan(columns: count, codes: q.address, output: dtype)
        let function = try q.device.function(QuantizationKernels.source, entry: "fp8_dequant", defines: [
            "FP8": 1, "SRC": 2, "OUT_DT": dtype.kernelCode, "EPT": plan.ept, "U": plan.chunks, "TOWARD_ZERO": 0])
        let threads = (count / plan.ept + plan.chunks - 1) / plan.chunks
        try q.device.launch(function, grid: (q.device.gridSize(work: threads, perBlock: 256, blocksPerSM: 8), 1, 1),
                            block: (256, 1, 1),
                            [q.argument, s.argument, try GPU(result).argument, .int(count)])
        return result
    }

    // MARK: Helpers

    struct PreparedSource {
        let main: GPU
        let scales: KernelArgument
        let delta: KernelArgument
        let strength: Float
        let defines: [String: Int]
        /// Element size of what is read per element (source, delta), for vector-width choices.
        let alignedAddresses: [(address: CUDeviceAddress, size: Int)]
    }

    /// Contiguous inputs, their addresses, and the `-D` values that describe them.
    private static func prepared(_ source: QuantizationSource, transform: QuantizationTransform) throws
        -> PreparedSource {
        var defines: [String: Int] = [:]
        var scales = KernelArgument.null
        let main: Tensor
        switch source {
        case .dense(let x):
            main = try x.contiguous()
            defines["SRC"] = 0
            defines["IN_DT"] = x.dtype.kernelCode
        case .int8(let parts):
            main = try parts.codes.contiguous()
            scales = try GPU(try parts.scales.contiguous()).argument
            defines["SRC"] = 1
        case .fp8(let parts):
            main = try parts.codes.contiguous()
            scales = try GPU(parts.scale).argument
            defines["SRC"] = 2
        }
        let gpu = try GPU(main)
        var aligned = [(gpu.address, main.dtype.byteSize)]
        var delta = KernelArgument.null
        var strength: Float = 0
        switch transform {
        case .none:
            defines["OPK"] = 0
        case .gelu(let approximation):
            defines["OPK"] = approximation == .tanh ? 2 : 1
        case .addDelta(let d, let factor):
            guard d.shape == source.primary.shape else {
                throw TensorError(.shapeMismatch, "weight update: delta \(d.shape) does not match \(source.primary.shape)")
            }
            let dense = try GPU(try d.contiguous())
            delta = dense.argument
            guard dense.device === gpu.device else {
                throw TensorError(.deviceMismatch, "weight update: the delta is on \(d.device), the weight on "
                    + "\(main.device); move the delta with `.to(_:)`")
            }
            aligned.append((dense.address, d.dtype.byteSize))
            strength = factor
            defines["OPK"] = 3
            defines["DELTA_DT"] = d.dtype.kernelCode
        }
        return PreparedSource(main: gpu, scales: scales, delta: delta, strength: strength, defines: defines,
                              alignedAddresses: aligned)
    }

    /// `quant_rows`' shape for 1 x `blockColumns` blocks: elements per 16-byte access of the source
    /// (narrower where the row length, the block or an address needs it) and chunks per lane
    /// (``rowChunks(rows:columns:ept:lanes:packed:multiprocessors:)``); `nil` when the block is not a
    /// power-of-two number of accesses (the general kernel then runs).
    static func rowPlan(rows: Int, columns: Int, blockColumns: Int, input: PreparedSource, multiprocessors: Int)
        -> (ept: Int, chunks: Int)? {
        let widest = 16 / (input.alignedAddresses.map(\.size).max() ?? 1)
        for ept in [16, 8, 4, 2, 1] where ept <= widest {
            guard columns % ept == 0, blockColumns % ept == 0,
                  input.alignedAddresses.allSatisfy({ $0.address % UInt64(ept * $0.size) == 0 }) else { continue }
            let lanes = blockColumns / ept
            guard lanes & (lanes - 1) == 0 && lanes <= 256 else { return nil }
            let packed = input.defines["SRC"] == 0 && input.defines["IN_DT"] == DType.bfloat16.kernelCode
                && input.defines["OPK"] == 0 && ept % 2 == 0 && ept <= 8
            return (ept, rowChunks(rows: rows, columns: columns, ept: ept, lanes: lanes, packed: packed,
                                   multiprocessors: multiprocessors))
        }
        return nil
    }

    /// Chunks per lane (U) of `quant_rows`: 2 in flight, or 4 for a plain bfloat16 source (`packed`: the
    /// kernel keeps it packed, 62 registers, 4 blocks of 256 threads per SM) with at least
    /// ``rowWarpsPerSMForFourChunks`` warps of work per SM; at least `lanes / 32`, so that a span holds
    /// whole blocks. On the H200 at 54560 x 3072 U = 4 ran at 0.79 of the copy bandwidth against 0.73 for
    /// U = 2, while at M = 1024 (one round of warps or less) it was 0.6 us slower (NOTES.md, issue 10
    /// round 4).
    static func rowChunks(rows: Int, columns: Int, ept: Int, lanes: Int, packed: Bool, multiprocessors: Int) -> Int {
        let span = 4 * 32 * ept
        let warps = rows * ((columns + span - 1) / span)
        let chunks = packed && warps >= rowWarpsPerSMForFourChunks * multiprocessors ? 4 : rowChunksPerLane
        return max(chunks, lanes / 32)
    }

    /// Chunks each lane of `quant_rows` loads before it quantizes (every source but the plain bfloat16
    /// one at large row counts).
    static let rowChunksPerLane = 2

    /// Warps of U = 4 work per SM from which `quant_rows` takes U = 4 on a plain bfloat16 source: two
    /// rounds of the 32 warps that fit an SM at its 62 registers (4224 warps on 132 SMs; M = 1024 rows of
    /// 3072 are 3072 warps, M = 4096 are 12288).
    static let rowWarpsPerSMForFourChunks = 64

    /// `dequant` / `fp8_dequant`: elements per chunk, 16 bytes of the output where the row length and the
    /// codes' address allow it, and chunks per lane per step.
    static func dequantPlan(columns: Int, codes: CUDeviceAddress, output: DType) -> (ept: Int, chunks: Int) {
        let ept = [16, 8, 4, 2, 1].first { e in
            e * output.byteSize <= 16 && columns % e == 0 && codes % UInt64(e) == 0
        }!
        return (ept, 4)
    }

    /// `-D` values of a transform: the op and the dtype its result is rounded to.
    static func transformDefines(_ transform: QuantizationTransform, roundTo: DType) -> [String: Int] {
        if case .none = transform { return ["ROUND_DT": DType.float32.kernelCode] }
        return ["ROUND_DT": roundTo.kernelCode]
    }

    static func nonFinite(_ layout: String, _ shape: [Int]) -> TensorError {
        TensorError(.nonFiniteValue, "\(layout): a tensor \(shape) on the GPU holds NaN or infinity; quantizing "
            + "it would write garbage. Remove NaN/infinity (check for overflow upstream) first")
    }

    static func zeroedWord(_ device: CUDADevice) throws -> Tensor {
        let word = try GPU.empty([1], .int32, on: device)
        try device.fill(try GPU(word).address, byte: 0, byteCount: 4)
        return word
    }

    static func readWord(_ word: Tensor) throws -> UInt32 {
        let gpu = try GPU(word)
        var value: UInt32 = 0
        try gpu.device.copyToHost(from: gpu.address, byteCount: 4, into: &value)
        return value
    }
}
