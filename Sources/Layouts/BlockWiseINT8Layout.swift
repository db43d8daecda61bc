import QLQuantized
import QLTensor

/// DeepSeek-style block-wise INT8: one float32 scale per block of the last two dimensions.
///
/// A tensor of shape `(..., R, C)` is cut into `blockRows x blockColumns` blocks (edge blocks may
/// be partial); a rank-1 tensor `(C)` into `1 x blockColumns` blocks. Weights `(N, K)` use `B x B`
/// blocks (``weight(blockSize:rounding:)``), activations `(..., K)` use `1 x B` blocks along K
/// (``activation(blockSize:rounding:)``). For each block:
///
///     scale = amax(|block|) / 127          (0 for an all-zero block)
///     q     = clamp(round(x / scale), -127, 127)      (never -128)
///     x'    = q * scale
///
/// Scales have shape `(..., ceil(R / blockRows), ceil(C / blockColumns))`.
public struct BlockWiseINT8Layout: QuantizedLayout, Hashable {
    public static let name = "BlockWiseINT8Layout"

    public let blockRows: Int
    public let blockColumns: Int
    public let rounding: Rounding

    /// The largest block dimension, 2^16 = 65536. It keeps every block's int32 sum exact in the W8A8
    /// GEMMs: `127 * 127 * 65536 < 2^31`, and `255 * 127 * 65536 < 2^31` for the VNNI kernel's unsigned
    /// trick (a block along K of 2^24 could wrap). Checkpoint readers refuse larger `group_size`s with
    /// the same limit, so nothing this library writes is refused by its own reader.
    public static let maximumBlockDimension = 1 << 16

    /// - Throws: ``TensorError/Code/invalidBlockSize`` when a block dimension is not in
    ///   `1...maximumBlockDimension`.
    public init(blockRows: Int, blockColumns: Int, rounding: Rounding = .nearestEven) throws {
        let limit = Self.maximumBlockDimension
        guard (1...limit).contains(blockRows), (1...limit).contains(blockColumns) else {
            throw TensorError(.invalidBlockSize, "block shape \(blockRows) x \(blockColumns) is outside 1...\(limit) "
                + "per dimension; use a block size of at least 1 and at most \(limit) (128 is the usual choice)")
        }
        self.blockRows = blockRows
        self.blockColumns = blockColumns
        self.rounding = rounding
    }

    /// `B x B` blocks over `(N, K)`, for weights.
    public static func weight(blockSize: Int = 128, rounding: Rounding = .nearestEven) throws -> Self {
        try Self(blockRows: blockSize, blockColumns: blockSize, rounding: rounding)
    }

    /// `1 x B` blocks along the last dimension, for activations.
    public static func activation(blockSize: Int = 128, rounding: Rounding = .nearestEven) throws -> Self {
        try Self(blockRows: 1, blockColumns: blockSize, rounding: rounding)
    }

    /// The layout after swapping the last two dimensions: the block shape swaps too.
    public var transposed: Self {
        // Safe: both dimensions are already positive.
        try! Self(blockRows: blockColumns, blockColumns: blockRows, rounding: rounding)
    }

    /// Whether blocks are `1 x B` along the last dimension (what the INT8 GEMM needs of its input).
    public var isActivationBlocking: Bool { blockRows == 1 }

    public var description: String {
        "BlockWiseINT8Layout(block: \(blockRows)x\(blockColumns), rounding: \(rounding.rawValue))"
    }

    /// The block shape and rounding, as the backends' kernels take them.
    package var blocks: INT8Blocks { INT8Blocks(rows: blockRows, columns: blockColumns, rounding: rounding) }

    /// The shape of the scale grid for a tensor of `shape`.
    public func scaleShape(for shape: [Int]) -> [Int] { blocks.scaleShape(for: shape) }

    public func quantize(_ tensor: Tensor) throws -> QuantizedTensor {
        try QuantizationInput.check(tensor, layout: Self.name)
        guard tensor.rank >= 1 else {
            throw TensorError(.shapeMismatch, "block-wise INT8 needs a tensor of rank >= 1, got a scalar")
        }
        let (codes, scales) = try tensor.to(.cpu).withUnsafeFloats { values in
            try BlockWiseINT8Reference.quantize(values, shape: tensor.shape, layout: self)
        }
        return QuantizedTensor(
            unchecked: self, data: try Tensor(elements: codes, shape: tensor.shape).to(tensor.device),
            scale: try Tensor(scales, shape: scaleShape(for: tensor.shape)).to(tensor.device),
            shape: tensor.shape, originalDType: tensor.dtype)
    }

    public func dequantize(_ tensor: QuantizedTensor, to dtype: DType) throws -> Tensor {
        let codes = try tensor.data.elements(as: Int8.self)
        let scales = try tensor.scale.floats()
        let values = BlockWiseINT8Reference.dequantize(codes, scales: scales, shape: tensor.shape, layout: self)
        return try Tensor(values, shape: tensor.shape, dtype: dtype).to(tensor.device)
    }

    public func validate(data: Tensor, scale: Tensor, shape: [Int]) throws {
        guard data.dtype == .int8 else {
            throw TensorError(.unsupportedDType, "block-wise INT8 codes must be int8, got \(data.dtype)")
        }
        guard data.shape == shape else {
            throw TensorError(.shapeMismatch, "block-wise INT8 codes have shape \(data.shape), expected \(shape)")
        }
        guard scale.dtype == .float32 else {
            throw TensorError(.unsupportedDType, "block-wise INT8 scales must be float32, got \(scale.dtype)")
        }
        let expected = scaleShape(for: shape)
        guard scale.shape == expected else {
            throw TensorError(.shapeMismatch, "block-wise INT8 scales have shape \(scale.shape); a tensor \(shape) "
                + "with \(blockRows)x\(blockColumns) blocks needs \(expected)")
        }
    }
}
