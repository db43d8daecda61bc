import Foundation
import QLTensor

/// Decode shapes (1 <= M <= 16): every quantized linear runs ``DecodeKernels``' `gemv_stream`,
/// which streams each weight row once (see there for the arithmetic and the launch contract).
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

    /// Dynamic shared memory of mode 1: the input's codes (16-byte aligned) and its scales.
    static func decodeSharedBytes(m: Int, k: Int, blockColumns: Int) -> Int {
        ((m * k + 15) & ~15) + 4 * m * ((k + blockColumns - 1) / blockColumns)
    }

    /// INT8 W8A8 on a float input (M, K) with M <= 16, quantized like the activation quantizer
    /// (1 x `blockColumns` blocks, the weight's rounding) and multiplied in one launch; `nil` when the
    /// decode kernel does not take the problem (then quantize and call ``blockwiseW8A8``).
    /// - Returns: `(M, N)` in `outputDType`.
    package static func blockwiseW8A8Decode(input: Tensor, weightCodes: Tensor, weightScales: Tensor,
                                           weightBlockRows: Int, blockColumns: Int, towardZero: Bool, bias: Tensor?,
                                           outputDType: DType) throws -> Tensor? {
        let (m, k) = (input.shape[0], input.shape[1])
        guard [.float32, .float16, .bfloat16].contains(input.dtype) else { return nil }
        let x = try GPU(try input.contiguous())
        let w = try GPU(try weightCodes.contiguous())
        guard decodeServes(m: m, k: k, blockColumns: blockColumns, w8a8: true, addresses: [x.address, w.address]),
              decodeSharedBytes(m: m, k: k, blockColumns: blockColumns) <= x.device.maxSharedMemoryPerBlock else {
            return nil
        }
        return try gemvStream(.w8a8Float, x: x, inputDType: input.dtype, sx: nil, w: w,
                              scales: try GPU(try weightScales.contiguous()), bias: bias, m: m, n: weightCodes.shape[0], k: k,
                              blockRows: weightBlockRows, blockColumns: blockColumns, towardZero: towardZero,
                              outputDType: outputDType)
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
        var defines = ["MODE": mode.rawValue, "MT": m, "OUT_DT": outputDType.kernelCode, "BR": blockRows,
                       "BC": blockColumns, "BIAS_DT": (bias?.dtype ?? .float32).kernelCode]
        if mode != .w8a8Codes { defines["X_DT"] = inputDType.kernelCode }
        if mode == .w8a8Float { defines["TOWARD_ZERO"] = towardZero ? 1 : 0 }
        let function = try device.function(DecodeKernels.source, entry: "gemv_stream", defines: defines)
        let shared = mode == .w8a8Float ? decodeSharedBytes(m: m, k: k, blockColumns: blockColumns) : 0
        if shared > 48 << 10 { try device.setDynamicSharedMemory(function, bytes: shared) }
        // Persistent: as many 256-thread blocks as are resident at once (ptxas: 93-98 registers for
        // M <= 8, so two per multiprocessor; 128-134 for M = 16, one), each warp streaming rows
        // n, n + warps, ...
        let grid = min((n + 7) / 8, device.multiprocessorCount * (m <= 8 ? 2 : 1))
        try device.launch(function, grid: (grid, 1, 1), block: (256, 1, 1), sharedMemory: shared, [
            x.argument, sx?.argument ?? .null, w.argument, scales.argument, b?.argument ?? .null,
            try GPU(y).argument, .int32(Int32(n)), .int32(Int32(k))])
        return y
    }
}
