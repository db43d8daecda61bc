import QuantizedLinear

/// A lookup table: token ids `(...)` (int32) become rows of `table` `(...) + (D)`.
///
/// The table is dense, or quantized with a layout whose rows dequantize on their own: block-wise INT8
/// with 1 x B blocks (``BlockWiseINT8Layout/activation(blockSize:rounding:)``) or per-tensor FP8.
/// A lookup then gathers the rows' codes and scales and dequantizes only those rows (bit-identical to
/// dequantizing the table first). Tables stay dense unless asked:
/// ``Module/quantizeLinears(layout:floatInput:include:exclude:)`` walks linear layers only, and
/// ``Module/quantizeEmbeddings(layout:include:exclude:)`` quantizes tables.
public struct Embedding: Module {
    /// `(V, D)`.
    public private(set) var table: AnyTensor

    /// - Throws: ``TensorError/Code/shapeMismatch`` unless `table` is 2-D.
    public init(table: some TensorOperand) throws {
        let table = table.anyTensor
        guard table.shape.count == 2 else {
            throw TensorError(.shapeMismatch, "Embedding: the table must be 2-D (V, D), got \(table.shape)")
        }
        self.table = table
    }

    public var count: Int { table.shape[0] }
    public var dimension: Int { table.shape[1] }
    public var isQuantized: Bool { table.quantizedTensor != nil }
    public var device: Device { table.device }

    /// Bytes of the table (codes and scales when quantized).
    public var byteCount: Int {
        switch table {
        case .dense(let t): t.count * t.dtype.byteSize
        case .quantized(let q): q.byteCount
        }
    }

    /// Rows of the table for `indices` (int32, any shape, on the table's device), in the table's
    /// (original) float dtype.
    /// - Throws: ``TensorError/Code/invalidArgument`` for an index outside `0..<count`.
    public func callAsFunction(_ indices: Tensor) throws -> Tensor {
        try embedding(table, indices: indices)
    }

    /// Replaces a dense table by its quantization with `layout`.
    /// - Throws: ``TensorError/Code/unsupportedOperation`` when the table is already quantized;
    ///   ``TensorError/Code/invalidArgument`` for block-wise INT8 blocks that span several rows (a lookup
    ///   could not dequantize a row alone); the quantizer's errors (non-finite values).
    public mutating func quantize(layout: some QuantizedLayout) throws {
        guard case .dense(let dense) = table else {
            throw TensorError(.unsupportedOperation, "Embedding: the table is already quantized (\(table))")
        }
        if let blockWise = layout as? BlockWiseINT8Layout, !blockWise.isActivationBlocking {
            throw TensorError(.invalidArgument, "Embedding: blocks of \(blockWise.blockRows) x "
                + "\(blockWise.blockColumns) span several rows; quantize tables with 1 x B blocks "
                + "(BlockWiseINT8Layout.activation(blockSize:))")
        }
        table = .quantized(try QuantizedTensor.fromFloat(dense, layout: layout))
    }

    /// The layer with its table on `device`.
    public func moved(to device: Device) throws -> Embedding {
        var copy = self
        copy.table = switch table {
        case .dense(let t): .dense(try t.to(device))
        case .quantized(let q): .quantized(try q.to(device))
        }
        return copy
    }

    public mutating func updateLinears(_ body: (String, inout Linear) throws -> Void) rethrows {}

    /// A dense table, as `weight`; a quantized one is reached through ``updateEmbeddings(_:)``.
    public mutating func updateTensors(_ body: (String, inout Tensor) throws -> Void) rethrows {
        guard case .dense(var dense) = table else { return }
        try body("weight", &dense)
        table = .dense(dense)
    }

    public mutating func updateEmbeddings(_ body: (String, inout Embedding) throws -> Void) rethrows {
        try body("", &self)
    }
}
