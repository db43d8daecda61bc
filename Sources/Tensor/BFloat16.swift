/// The bfloat16 format: the top 16 bits of an IEEE float32.
///
/// Conversion from `Float` rounds to nearest, ties to even; NaN stays NaN (quiet), infinities stay
/// infinite, and values past the largest finite bfloat16 round to infinity as IEEE rounding says.
public struct BFloat16: Hashable, Sendable, CustomStringConvertible {
    public var bitPattern: UInt16

    public init(bitPattern: UInt16) { self.bitPattern = bitPattern }

    public init(_ value: Float) {
        let bits = value.bitPattern
        if value.isNaN {
            bitPattern = UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
            return
        }
        // Round to nearest even on the 16 dropped bits.
        let lsb = (bits >> 16) & 1
        let rounded = bits &+ 0x7FFF &+ lsb
        bitPattern = UInt16(truncatingIfNeeded: rounded >> 16)
    }

    public var floatValue: Float { Float(bitPattern: UInt32(bitPattern) << 16) }

    public var description: String { floatValue.description }
}
