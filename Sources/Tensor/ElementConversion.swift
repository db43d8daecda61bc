/// Bulk conversions between element types, one `switch` per buffer rather than per element.
///
/// Float types convert through `Float` with round-to-nearest-even. Conversion to an integer type
/// truncates toward zero and saturates, as a cast does; the quantizers never rely on it.
enum ElementConversion {
    static func toFloat(_ source: UnsafeRawPointer, _ dtype: DType, _ destination: UnsafeMutablePointer<Float>,
                        count: Int) {
        switch dtype {
        case .float32:
            destination.update(from: source.assumingMemoryBound(to: Float.self), count: count)
        case .float16:
            let s = source.assumingMemoryBound(to: Float16.self)
            for i in 0..<count { destination[i] = Float(s[i]) }
        case .bfloat16:
            let s = source.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { destination[i] = Float(bitPattern: UInt32(s[i]) << 16) }
        case .float8E4M3FN:
            let s = source.assumingMemoryBound(to: UInt8.self)
            Float8E4M3FN.decodeTable.withUnsafeBufferPointer { table in
                for i in 0..<count { destination[i] = table[Int(s[i])] }
            }
        case .int8:
            let s = source.assumingMemoryBound(to: Int8.self)
            for i in 0..<count { destination[i] = Float(s[i]) }
        case .uint8:
            let s = source.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { destination[i] = Float(s[i]) }
        case .int32:
            let s = source.assumingMemoryBound(to: Int32.self)
            for i in 0..<count { destination[i] = Float(s[i]) }
        }
    }

    static func fromFloat(_ source: UnsafePointer<Float>, _ destination: UnsafeMutableRawPointer, _ dtype: DType,
                          count: Int) {
        switch dtype {
        case .float32:
            destination.assumingMemoryBound(to: Float.self).update(from: source, count: count)
        case .float16:
            let d = destination.assumingMemoryBound(to: Float16.self)
            for i in 0..<count { d[i] = Float16(source[i]) }
        case .bfloat16:
            let d = destination.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { d[i] = BFloat16(source[i]).bitPattern }
        case .float8E4M3FN:
            let d = destination.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { d[i] = Float8E4M3FN.encode(source[i]) }
        case .int8:
            let d = destination.assumingMemoryBound(to: Int8.self)
            for i in 0..<count { d[i] = Int8(saturatingTruncating: source[i], min: -128, max: 127) }
        case .uint8:
            let d = destination.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { d[i] = UInt8(saturatingTruncating: source[i], min: 0, max: 255) }
        case .int32:
            let d = destination.assumingMemoryBound(to: Int32.self)
            for i in 0..<count {
                d[i] = Int32(saturatingTruncating: source[i], min: -2_147_483_648, max: 2_147_483_520)
            }
        }
    }
}

extension FixedWidthInteger {
    /// Cast semantics: NaN becomes 0, the rest truncates toward zero and clamps to the type.
    init(saturatingTruncating value: Float, min: Float, max: Float) {
        if value.isNaN { self = 0; return }
        self.init(Swift.min(Swift.max(value, min), max).rounded(.towardZero))
    }
}
