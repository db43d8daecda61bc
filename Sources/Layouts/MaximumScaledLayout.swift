import QLQuantized
import QLTensor

/// A layout whose scales follow from absolute maxima: block-wise INT8 `scale = amax(|block|) / 127`,
/// per-tensor FP8 `scale = amax(|x|) / 448` (1 for all zeros; a fixed scale wins).
///
/// The checkpoint converter quantizes a weight with maxima taken over several versions of it (the
/// base and each LoRA-patched copy, so that one scale grid serves them all) through these two calls;
/// `quantize(values, shape:, maxima: blockMaxima(values, shape:), ...)` is the layout's own quantize.
public protocol MaximumScaledLayout: QuantizedLayout {
    /// `amax(|x|)` of each scale's block of `values` (a tensor of `shape`), row-major over the scale grid.
    /// - Throws: ``TensorError/Code/nonFiniteValue`` for NaN or infinity.
    func blockMaxima(of values: UnsafeBufferPointer<Float>, shape: [Int]) throws -> [Float]

    /// `values` quantized with the scales that `maxima` give (each at least its own block's maximum,
    /// so no value clips).
    func quantize(_ values: UnsafeBufferPointer<Float>, shape: [Int], maxima: [Float], originalDType: DType) throws
        -> QuantizedTensor
}

extension BlockWiseINT8Layout: MaximumScaledLayout {
    public func blockMaxima(of values: UnsafeBufferPointer<Float>, shape: [Int]) throws -> [Float] {
        try QuantizationInput.checkFinite(values, shape: shape, layout: Self.name)
        let geometry = MatrixGeometry(shape)
        let (rows, columns) = (geometry.rows, geometry.columns)
        let rowBlocks = ShapeArithmetic.ceilDiv(rows, blockRows)
        let columnBlocks = ShapeArithmetic.ceilDiv(columns, blockColumns)
        var amax = [Float](repeating: 0, count: geometry.batches * rowBlocks * columnBlocks)
        for batch in 0..<geometry.batches {
            for row in 0..<rows {
                let blockRow = (batch * rowBlocks + row / blockRows) * columnBlocks
                let base = (batch * rows + row) * columns
                for block in 0..<columnBlocks {
                    var m = amax[blockRow + block]
                    for column in block * blockColumns..<min(columns, (block + 1) * blockColumns) {
                        m = max(m, abs(values[base + column]))
                    }
                    amax[blockRow + block] = m
                }
            }
        }
        return amax
    }

    public func quantize(_ values: UnsafeBufferPointer<Float>, shape: [Int], maxima: [Float], originalDType: DType)
        throws -> QuantizedTensor {
        let geometry = MatrixGeometry(shape)
        let (rows, columns) = (geometry.rows, geometry.columns)
        let rowBlocks = ShapeArithmetic.ceilDiv(rows, blockRows)
        let columnBlocks = ShapeArithmetic.ceilDiv(columns, blockColumns)
        let scales = maxima.map(BlockWiseINT8Reference.scale(forAmax:))
        var codes = [Int8](repeating: 0, count: values.count)
        for index in values.indices {
            let (matrix, offset) = index.quotientAndRemainder(dividingBy: max(rows * columns, 1))
            let (row, column) = offset.quotientAndRemainder(dividingBy: max(columns, 1))
            let scale = scales[(matrix * rowBlocks + row / blockRows) * columnBlocks + column / blockColumns]
            if scale > 0 { codes[index] = BlockWiseINT8Reference.code(values[index], scale: scale, rounding: rounding) }
        }
        return QuantizedTensor(unchecked: self, data: try Tensor(elements: codes, shape: shape),
                               scale: try Tensor(scales, shape: scaleShape(for: shape)), shape: shape,
                               originalDType: originalDType)
    }
}

extension TensorCoreFP8Layout: MaximumScaledLayout {
    public func blockMaxima(of values: UnsafeBufferPointer<Float>, shape: [Int]) throws -> [Float] {
        try QuantizationInput.checkFinite(values, shape: shape, layout: Self.name)
        return [values.reduce(0) { max($0, abs($1)) }]
    }

    public func quantize(_ values: UnsafeBufferPointer<Float>, shape: [Int], maxima: [Float], originalDType: DType)
        throws -> QuantizedTensor {
        let scale = fixedScale ?? (maxima[0] > 0 ? maxima[0] / Float8E4M3FN.greatestFiniteMagnitude : 1)
        let (codes, _) = try FP8Reference.quantize(values, shape: shape, fixedScale: scale)
        return QuantizedTensor(unchecked: self, data: try Tensor(elements: codes, shape: shape),
                               scale: try Tensor([scale], shape: []), shape: shape, originalDType: originalDType)
    }
}
