import Foundation

/// The two forms of GELU.
public enum GeluApproximation: String, Sendable, Hashable, CaseIterable {
    /// `gelu(x) = x/2 * (1 + erf(x / sqrt(2)))`
    case none
    /// `gelu(x) = x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))`
    case tanh

    /// GELU of one value, in float32.
    @inline(__always)
    public func apply(_ x: Float) -> Float {
        switch self {
        case .none: 0.5 * x * (1 + erff(x * 0.70710678118654752))
        case .tanh: 0.5 * x * (1 + tanhf(0.7978845608028654 * (x + 0.044715 * x * x * x)))
        }
    }
}
