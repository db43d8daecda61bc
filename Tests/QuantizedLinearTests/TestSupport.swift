import Foundation
import QLConformance
import QuantizedLinear

/// Shared helpers of the test suite: data generators, a float64 reference, error measures.
enum TestData {
    /// What kind of values a test tensor holds.
    enum Kind: String, Sendable, CaseIterable {
        case gaussian
        /// Gaussian with a few values 100x larger.
        case outliers
        /// Gaussian scaled to about 1e-30.
        case tiny
        /// Gaussian with every other 64-column stripe zeroed (whole blocks of zeros for B <= 64,
        /// partially zero blocks above).
        case zeroStripes
    }

    static func values(_ count: Int, columns: Int, kind: Kind, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        var values = (0..<count).map { _ in generator.nextGaussian() }
        switch kind {
        case .gaussian:
            break
        case .outliers:
            for i in stride(from: Int(seed % 7), to: count, by: 97) { values[i] *= 100 }
        case .tiny:
            values = values.map { $0 * 1e-30 }
        case .zeroStripes:
            for i in values.indices where (i % columns) / 64 % 2 == 1 { values[i] = 0 }
        }
        return values
    }

    static func tensor(_ shape: [Int], kind: Kind = .gaussian, dtype: DType = .float32, scale: Float = 1,
                       seed: UInt64) throws -> Tensor {
        let count = shape.reduce(1, *)
        let values = self.values(count, columns: shape.last ?? 1, kind: kind, seed: seed).map { $0 * scale }
        return try Tensor(values, shape: shape, dtype: dtype)
    }
}

enum Reference64 {
    /// `x W^T + b` in float64 from the tensors' exact values.
    static func linear(_ x: Tensor, _ w: Tensor, bias: Tensor?) throws -> [Double] {
        let k = w.shape[1]
        let n = w.shape[0]
        let xs = try x.floats().map(Double.init)
        let ws = try w.floats().map(Double.init)
        let bs = try bias?.floats().map(Double.init)
        let m = xs.count / k
        var y = [Double](repeating: 0, count: m * n)
        for row in 0..<m {
            for column in 0..<n {
                var sum = 0.0
                for p in 0..<k { sum += xs[row * k + p] * ws[column * k + p] }
                y[row * n + column] = sum + (bs?[column] ?? 0)
            }
        }
        return y
    }

    static func gelu(_ x: [Float], approximation: GeluApproximation) -> [Double] {
        x.map { value in
            let v = Double(value)
            switch approximation {
            case .none: return 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
            case .tanh: return 0.5 * v * (1 + tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)))
            }
        }
    }
}

/// `||a - b|| / ||b||`; 0 when both are zero, infinity when `a` has a non-finite value (the
/// conformance suite's measure).
func relativeError(_ a: [Float], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "compared arrays differ in length: \(a.count) vs \(b.count)")
    return LayoutConformance.relativeError(a, b)
}

func relativeError(_ a: [Float], _ b: [Float]) -> Double { relativeError(a, b.map(Double.init)) }

/// Runs `body` under the `fail` policy: any fallback throws, so a silent fallback cannot pass.
func withoutFallback<R>(_ body: () throws -> R) throws -> R {
    try FallbackPolicy.withPolicy(.fail, body)
}

/// Runs `body` allowing the fallback and returns the fallbacks that happened in it.
func withFallback<R>(_ body: () throws -> R) throws -> (R, [FallbackEvent]) {
    try FallbackPolicy.withPolicy(.dequantize) { try FallbackStatistics.recording(body) }
}
