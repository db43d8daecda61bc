import Foundation

/// Float64 references of the transformer ops, on flat row-major arrays of the inputs' exact values:
/// the oracle of the transformer ops' tests on both backends (TransformerOpsTests, CUDATransformerOpsTests).
extension Reference64 {
    /// `(x - mean) / sqrt(var + eps) * w + b` per row of `d`, biased variance.
    static func layerNorm(_ x: [Double], d: Int, weight: [Double]?, bias: [Double]?, epsilon: Double) -> [Double] {
        var y = x
        for start in stride(from: 0, to: x.count, by: d) {
            let row = x[start..<start + d]
            let mean = row.reduce(0, +) / Double(d)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(d)
            let rstd = 1 / (variance + epsilon).squareRoot()
            for i in 0..<d {
                y[start + i] = (x[start + i] - mean) * rstd * (weight?[i] ?? 1) + (bias?[i] ?? 0)
            }
        }
        return y
    }

    /// Softmax of each row of `c` after adding `mask[row / rowsPerBatch]`; a row of all `-inf` gives 0s.
    static func softmax(_ x: [Double], c: Int, mask: [Double]?, rowsPerBatch: Int) -> [Double] {
        var y = x
        for (row, start) in stride(from: 0, to: x.count, by: c).enumerated() {
            let z = (0..<c).map { x[start + $0] + (mask?[(row / rowsPerBatch) * c + $0] ?? 0) }
            let high = z.max() ?? 0
            guard high > -.infinity else {
                for i in 0..<c { y[start + i] = 0 }
                continue
            }
            let e = z.map { exp($0 - high) }
            let sum = e.reduce(0, +)
            for i in 0..<c { y[start + i] = e[i] / sum }
        }
        return y
    }

    /// `a [batches, m, k] x b [batches, k, n]` (or `b [batches, n, k]` when transposed).
    static func batchedMatmul(_ a: [Double], _ b: [Double], batches: Int, m: Int, k: Int, n: Int,
                              transposeB: Bool) -> [Double] {
        var y = [Double](repeating: 0, count: batches * m * n)
        for batch in 0..<batches {
            for row in 0..<m {
                for column in 0..<n {
                    var sum = 0.0
                    for p in 0..<k {
                        let right = transposeB ? b[batch * n * k + column * k + p] : b[batch * k * n + p * n + column]
                        sum += a[batch * m * k + row * k + p] * right
                    }
                    y[batch * m * n + row * n + column] = sum
                }
            }
        }
        return y
    }

    /// `sum_s mask x / max(sum_s mask, 1e-9)` for `x [batches, s, d]`, `mask [batches, s]`; positions
    /// with mask 0 are left out (the CUDA kernel does not read them).
    static func maskedMeanPool(_ x: [Double], mask: [Double], batches: Int, s: Int, d: Int) -> [Double] {
        var y = [Double](repeating: 0, count: batches * d)
        for batch in 0..<batches {
            let weight = (0..<s).reduce(0.0) { $0 + mask[batch * s + $1] }
            for column in 0..<d {
                var sum = 0.0
                for t in 0..<s where mask[batch * s + t] != 0 {
                    sum += mask[batch * s + t] * x[(batch * s + t) * d + column]
                }
                y[batch * d + column] = sum / max(weight, 1e-9)
            }
        }
        return y
    }

    /// `x / max(||x||, eps)` per row of `d`.
    static func l2Normalize(_ x: [Double], d: Int, epsilon: Double) -> [Double] {
        var y = x
        for start in stride(from: 0, to: x.count, by: d) {
            let norm = x[start..<start + d].reduce(0) { $0 + $1 * $1 }.squareRoot()
            for i in 0..<d { y[start + i] = x[start + i] / max(norm, epsilon) }
        }
        return y
    }
}
