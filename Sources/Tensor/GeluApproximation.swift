/// The two forms of GELU.
public enum GeluApproximation: String, Sendable, Hashable, CaseIterable {
    /// `gelu(x) = x/2 * (1 + erf(x / sqrt(2)))`
    case none
    /// `gelu(x) = x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))`
    case tanh

    /// GELU of one value, in float32: the definition every CPU GELU computes (the vector kernels of
    /// QLCPU and the fused INT8 gelu evaluate exactly these float operations, lane by lane).
    ///
    /// erf is Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7, the form PyTorch's vectorised CPU
    /// erf uses), `erf(x) = sign(x) (1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-x^2))` with
    /// `t = 1 / (1 + p |x|)`; tanh is `1 - 2 / (exp(2z) + 1)`; exp is Cephes' polynomial (0 below -87.3).
    @inline(__always)
    public func apply(_ x: Float) -> Float {
        switch self {
        case .none: return 0.5 * x * (1 + GeluMath.erf(x * 0.70710678118654752))
        case .tanh:
            let inner = Float(0.7978845608028654) * x.addingProduct(Float(0.044715) * x * x, x)
            return 0.5 * x * (1 + GeluMath.tanh(inner))
        }
    }
}

/// The scalar exp, erf and tanh of the CPU GELU kernels (`dense_ops.c`), operation for operation
/// (`addingProduct` is the fused multiply-add the C code calls `fmaf`).
enum GeluMath {
    static func exp(_ x: Float) -> Float {
        if x.isNaN { return x }
        if x < -87.3 { return 0 }
        let v = Swift.min(x, 88.3762626647949)
        let n = (v * 1.44269504088896341).rounded(.toNearestOrEven)
        var r = v.addingProduct(n, -0.693359375)
        r = r.addingProduct(n, 2.12194440e-4)
        var p = Float(1.3981999507e-3).addingProduct(1.9875691500e-4, r)
        p = Float(8.3334519073e-3).addingProduct(p, r)
        p = Float(4.1665795894e-2).addingProduct(p, r)
        p = Float(1.6666665459e-1).addingProduct(p, r)
        p = Float(5.0000001201e-1).addingProduct(p, r)
        let y = r.addingProduct(p, r * r) + 1
        return y * Float(bitPattern: UInt32(bitPattern: (Int32(n) + 127) << 23))
    }

    static func erf(_ x: Float) -> Float {
        let t = 1 / Float(1).addingProduct(0.3275911, abs(x))
        var r = Float(-1.453152027).addingProduct(1.061405429, t)
        r = Float(1.421413741).addingProduct(r, t)
        r = Float(-0.284496736).addingProduct(r, t)
        r = Float(0.254829592).addingProduct(r, t)
        let y = Float(1).addingProduct(-(exp(-(x * x)) * t), r)
        return Float(signOf: x, magnitudeOf: y)
    }

    static func tanh(_ z: Float) -> Float { 1 - 2 / (exp(z + z) + 1) }
}
