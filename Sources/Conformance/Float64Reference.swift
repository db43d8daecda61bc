import Foundation

/// The float64 results the conformance checks compare against.
enum Float64Reference {
    /// `y = x W^T + b`, `x` `(m, k)`, `W` `(n, k)`.
    static func linear(_ x: [Float], _ w: [Float], bias: [Float], m: Int, n: Int, k: Int) -> [Double] {
        var y = [Double](repeating: 0, count: m * n)
        for row in 0..<m {
            for column in 0..<n {
                var sum = Double(bias[column])
                for p in 0..<k { sum += Double(x[row * k + p]) * Double(w[column * k + p]) }
                y[row * n + column] = sum
            }
        }
        return y
    }

    /// Exact (erf) GELU.
    static func gelu(_ x: [Float]) -> [Double] {
        x.map { value in
            let v = Double(value)
            return 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
        }
    }

    /// `||a - b|| / ||b||`; 0 when both are zero, infinity for a non-finite `a` or a length mismatch.
    static func relativeError(_ a: [Float], _ b: [Double]) -> Double {
        guard a.count == b.count else { return .infinity }
        var difference = 0.0
        var norm = 0.0
        for (x, y) in zip(a, b) {
            guard x.isFinite else { return .infinity }
            difference += (Double(x) - y) * (Double(x) - y)
            norm += y * y
        }
        if norm == 0 { return difference == 0 ? 0 : .infinity }
        return (difference / norm).squareRoot()
    }
}
