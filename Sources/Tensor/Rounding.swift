/// How a scaled value becomes an integer code.
public enum Rounding: String, Sendable, Hashable, CaseIterable {
    /// Round half to even: `round(x / scale)`; about half the matmul error of truncation.
    case nearestEven
    /// Truncate toward zero, as ComfyUI's reference does (`(x / scale).to(int8)`).
    case towardZero

    /// `value` rounded to an integer-valued float.
    @inline(__always)
    public func apply(_ value: Float) -> Float {
        switch self {
        case .nearestEven: value.rounded(.toNearestOrEven)
        case .towardZero: value.rounded(.towardZero)
        }
    }
}
