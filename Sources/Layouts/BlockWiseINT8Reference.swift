import QLQuantized
import QLTensor

/// The plain-Swift definition of block-wise INT8: the oracle for every fast path and the code
/// the handlers fall back on where no kernel applies.
public enum BlockWiseINT8Reference {
    /// The code of `value` in a block with dequantization factor `scale` (> 0).
    @inline(__always)
    public static func code(_ value: Float, scale: Float, rounding: Rounding) -> Int8 {
        Int8(min(max(rounding.apply(value / scale), -127), 127))
    }

    /// The scale of a block whose largest magnitude is `amax`: `amax / 127`, except where
    /// `127 * (amax / 127)` overflows (amax within about an ulp of `Float.greatestFiniteMagnitude`),
    /// where it is one float step lower, so that every code dequantizes finite (`|q * scale| <= 127 *
    /// scale < infinity`). Bit-identical to `amax / 127` for every other amax.
    @inline(__always)
    public static func scale(forAmax amax: Float) -> Float {
        let scale = amax / 127
        return (scale * 127).isFinite ? scale : scale.nextDown
    }

    /// Codes (same order as `values`) and scales (row-major over the scale grid).
    /// - Throws: ``TensorError/Code/nonFiniteValue`` for NaN or infinity.
    public static func quantize(_ values: UnsafeBufferPointer<Float>, shape: [Int], layout: BlockWiseINT8Layout)
        throws -> (codes: [Int8], scales: [Float]) {
        try QuantizationInput.checkFinite(values, shape: shape, layout: BlockWiseINT8Layout.name)
        let geometry = MatrixGeometry(shape)
        let (batches, rows, columns) = (geometry.batches, geometry.rows, geometry.columns)
        let (br, bc) = (layout.blockRows, layout.blockColumns)
        let rowBlocks = ShapeArithmetic.ceilDiv(rows, br)
        let columnBlocks = ShapeArithmetic.ceilDiv(columns, bc)
        var codes = [Int8](repeating: 0, count: values.count)
        var scales = [Float](repeating: 0, count: batches * rowBlocks * columnBlocks)
        for batch in 0..<batches {
            let base = batch * rows * columns
            for rb in 0..<rowBlocks {
                for cb in 0..<columnBlocks {
                    let rowRange = rb * br..<min(rows, (rb + 1) * br)
                    let columnRange = cb * bc..<min(columns, (cb + 1) * bc)
                    var amax: Float = 0
                    for r in rowRange { for c in columnRange { amax = max(amax, abs(values[base + r * columns + c])) } }
                    let scale = scale(forAmax: amax)
                    scales[(batch * rowBlocks + rb) * columnBlocks + cb] = scale
                    guard scale > 0 else { continue }
                    for r in rowRange {
                        for c in columnRange {
                            codes[base + r * columns + c] = code(values[base + r * columns + c], scale: scale,
                                                                 rounding: layout.rounding)
                        }
                    }
                }
            }
        }
        return (codes, scales)
    }

    /// `q * scale` of each element's block.
    public static func dequantize(_ codes: [Int8], scales: [Float], shape: [Int], layout: BlockWiseINT8Layout)
        -> [Float] {
        let geometry = MatrixGeometry(shape)
        let (batches, rows, columns) = (geometry.batches, geometry.rows, geometry.columns)
        let rowBlocks = ShapeArithmetic.ceilDiv(rows, layout.blockRows)
        let columnBlocks = ShapeArithmetic.ceilDiv(columns, layout.blockColumns)
        var values = [Float](repeating: 0, count: codes.count)
        for batch in 0..<batches {
            for r in 0..<rows {
                let scaleRow = (batch * rowBlocks + r / layout.blockRows) * columnBlocks
                let base = (batch * rows + r) * columns
                for c in 0..<columns {
                    values[base + c] = Float(codes[base + c]) * scales[scaleRow + c / layout.blockColumns]
                }
            }
        }
        return values
    }

    /// W8A8 linear:
    /// `y[m,n] = sum_j float(sum_{k in block j} qx[m,k] qw[n,k]) * (sx[m,j] * sw[n / Bn, j]) + b[n]`,
    /// inner sums exact in int32, outer sum in float32.
    /// - Parameters:
    ///   - input: codes `(M, K)` and scales `(M, ceil(K / Bk))`.
    ///   - weight: codes `(N, K)` and scales `(ceil(N / Bn), ceil(K / Bk))`.
    public static func linear(inputCodes qx: [Int8], inputScales sx: [Float], m: Int, k: Int,
                              weightCodes qw: [Int8], weightScales sw: [Float], n: Int,
                              weightBlockRows bn: Int, blockColumns bk: Int, bias: [Float]?) -> [Float] {
        let kBlocks = ShapeArithmetic.ceilDiv(k, bk)
        var y = [Float](repeating: 0, count: m * n)
        for row in 0..<m {
            for column in 0..<n {
                var total: Float = 0
                for j in 0..<kBlocks {
                    var sum: Int32 = 0
                    for p in j * bk..<min(k, (j + 1) * bk) {
                        sum &+= Int32(qx[row * k + p]) * Int32(qw[column * k + p])
                    }
                    // The scales are multiplied first (NOTES.md, numerics): `(float(sum) * sx) * sw`
                    // overflows for large inputs whose result is finite.
                    total += Float(sum) * (sx[row * kBlocks + j] * sw[(column / bn) * kBlocks + j])
                }
                y[row * n + column] = total + (bias?[column] ?? 0)
            }
        }
        return y
    }
}
