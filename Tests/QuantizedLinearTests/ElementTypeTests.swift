import QuantizedLinear
import Testing

@Suite("Element types: bfloat16 and float8 e4m3fn conversions")
struct ElementTypeTests {
    @Test("bfloat16 rounds to nearest, ties to even", arguments: [
        (Float(1.0), UInt16(0x3F80)),
        (Float(1.0) + Float(0x1p-8), UInt16(0x3F80)),  // tie between 0x3F80 and 0x3F81: even is 0x3F80
        (Float(1.0) + 3 * Float(0x1p-8), UInt16(0x3F82)),  // tie between 0x3F81 and 0x3F82: even is 0x3F82
        (Float(-2.0), UInt16(0xC000)),
        (Float.greatestFiniteMagnitude, UInt16(0x7F80)),  // rounds past the largest bfloat16: infinity
        (Float.infinity, UInt16(0x7F80)),
    ])
    func bfloat16Rounding(value: Float, bits: UInt16) {
        #expect(BFloat16(value).bitPattern == bits)
    }

    @Test("bfloat16 keeps NaN")
    func bfloat16NaN() {
        #expect(BFloat16(Float.nan).floatValue.isNaN)
    }

    @Test("e4m3fn encodes hand-computed values", arguments: [
        (Float(1.0), UInt8(0x38)),
        (Float(1.0625), UInt8(0x38)),  // tie between 1 and 1.125: even mantissa 0
        (Float(1.1875), UInt8(0x3A)),  // tie between 1.125 and 1.25: even mantissa 2
        (Float(448), UInt8(0x7E)),
        (Float(464), UInt8(0x7E)),  // saturates instead of rounding to the NaN code
        (Float(1e6), UInt8(0x7E)),
        (Float(-1e6), UInt8(0xFE)),
        (Float(-112), UInt8(0xEE)),
        (Float(0x1p-6), UInt8(0x08)),  // smallest normal
        (Float(0x1p-9), UInt8(0x01)),  // smallest subnormal
        (Float(0x1p-10), UInt8(0x00)),  // tie between 0 and 2^-9: even is 0
        (Float(3 * 0x1p-10), UInt8(0x02)),  // tie between 1 and 2 (x 2^-9): even is 2
        (Float(0), UInt8(0x00)),
    ])
    func float8Encoding(value: Float, bits: UInt8) {
        #expect(Float8E4M3FN(value).bitPattern == bits)
    }

    @Test("e4m3fn NaN codes and the decode table")
    func float8Decoding() {
        #expect(Float8E4M3FN(Float.nan).bitPattern == 0x7F)
        #expect(Float8E4M3FN(bitPattern: 0x7F).floatValue.isNaN)
        #expect(Float8E4M3FN(bitPattern: 0xFF).floatValue.isNaN)
        #expect(Float8E4M3FN(bitPattern: 0x7E).floatValue == 448)
        #expect(Float8E4M3FN(bitPattern: 0x01).floatValue == 0x1p-9)
        #expect(Float8E4M3FN(bitPattern: 0xB8).floatValue == -1)
    }

    @Test("every finite e4m3fn code survives decode then encode")
    func float8RoundTrip() {
        for code in 0...255 where code & 0x7F != 0x7F {
            let value = Float8E4M3FN(bitPattern: UInt8(code)).floatValue
            #expect(Float8E4M3FN(value).bitPattern == UInt8(code), "code \(code) decodes to \(value)")
        }
    }

    @Test("tensor dtype conversions round trip through float32", arguments: [DType.float16, .bfloat16, .float8E4M3FN])
    func tensorConversion(dtype: DType) throws {
        let values: [Float] = [0, 1, -1.5, 3.25, -0.125, 96]
        let t = try Tensor(values, shape: [2, 3], dtype: dtype)
        #expect(try t.floats() == values)  // all exactly representable in each type
        #expect(try t.converted(to: .float32).converted(to: dtype).floats() == values)
    }
}
