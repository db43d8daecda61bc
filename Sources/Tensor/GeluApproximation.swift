import CKernels

/// The two forms of GELU.
public enum GeluApproximation: String, Sendable, Hashable, CaseIterable {
    /// `gelu(x) = x/2 * (1 + erf(x / sqrt(2)))`
    case none
    /// `gelu(x) = x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))`
    case tanh

    /// GELU of one value, in float32: the definition every CPU GELU (dense, fused INT8) computes.
    ///
    /// erf is Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7, the form PyTorch's vectorised
    /// CPU erf uses) and tanh is `1 - 2 / (exp(2z) + 1)`, both with a Cephes exp polynomial, so the
    /// vector kernels compute exactly these values lane by lane.
    @inline(__always)
    public func apply(_ x: Float) -> Float {
        ck_gelu_scalar(x, self == .tanh ? 1 : 0)
    }
}
