/// The float8 e4m3fn format used by FP8 tensor cores.
///
/// 1 sign bit, 4 exponent bits (bias 7), 3 mantissa bits; subnormals have exponent field 0; there
/// are no infinities, and `0x7F` / `0xFF` are NaN. The largest finite magnitude is 448.
/// Conversion from `Float` rounds to nearest, ties to even, and **saturates** to +-448 (the
/// `fn` convention of the tensor cores and of PyTorch's `float8_e4m3fn` casts after clamping).
/// NaN converts to NaN (`0x7F`).
public struct Float8E4M3FN: Hashable, Sendable, CustomStringConvertible {
    public var bitPattern: UInt8

    /// The largest finite value, 448.
    public static let greatestFiniteMagnitude: Float = 448

    public init(bitPattern: UInt8) { self.bitPattern = bitPattern }

    public init(_ value: Float) { bitPattern = Float8E4M3FN.encode(value) }

    public var floatValue: Float { Float8E4M3FN.decodeTable[Int(bitPattern)] }

    public var description: String { floatValue.description }

    /// Every code's value, indexed by bit pattern.
    public static let decodeTable: [Float] = (0..<256).map { decodeSlow(UInt8($0)) }

    static func decodeSlow(_ code: UInt8) -> Float {
        let sign: Float = code & 0x80 != 0 ? -1 : 1
        let exponent = Int((code >> 3) & 0xF)
        let mantissa = Float(code & 0x7)
        if exponent == 0xF && code & 0x7 == 0x7 { return .nan }
        if exponent == 0 { return sign * mantissa / 8 * Float(sign: .plus, exponent: -6, significand: 1) }
        return sign * (1 + mantissa / 8) * Float(sign: .plus, exponent: exponent - 7, significand: 1)
    }

    /// Round-to-nearest-even encoding with saturation, on the float32 bit pattern.
    @inline(__always)
    public static func encode(_ value: Float) -> UInt8 {
        if value.isNaN { return 0x7F }
        let bits = value.bitPattern
        let sign = UInt8(truncatingIfNeeded: (bits >> 24) & 0x80)
        let magnitude = bits & 0x7FFF_FFFF
        // 464 is the midpoint between 448 and the next (nonexistent) step 480: ties-to-even would
        // round it up, past the format, so everything at or above 448 saturates.
        if magnitude >= 0x43E0_0000 { return sign | 0x7E }  // >= 448
        // Smallest normal e4m3 is 2^-6 (float exponent field 121).
        let exponentField = Int(magnitude >> 23)
        if exponentField < 121 {
            // Subnormal range: value = m * 2^-9, m in 0...7 (8 rounds up to the smallest normal).
            let scaled = Float(bitPattern: magnitude) * 512  // exact: power-of-two scaling
            let m = scaled.rounded(.toNearestOrEven)
            return sign | UInt8(m)
        }
        // Normal: keep 3 mantissa bits, round to nearest even on the 20 dropped bits.
        let lsb = (magnitude >> 20) & 1
        let rounded = magnitude &+ 0x7FFFF &+ lsb
        let e = Int(rounded >> 23) - 127 + 7
        let m = (rounded >> 20) & 0x7
        return sign | UInt8(e << 3) | UInt8(m)
    }
}
