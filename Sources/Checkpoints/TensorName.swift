/// A tensor name compared and hashed byte for byte (its UTF-8), for dictionaries of names.
///
/// `String`'s `==` and hashing use Unicode canonical equivalence, so `"café"` spelled with U+00E9 (NFC)
/// and with `e` + U+0301 (NFD) are one key in a `[String: T]`; in a safetensors file they are two
/// tensors (the format's names are byte strings, and the official reader keeps both). Every name
/// lookup in this module goes through this type, so such names stay distinct and are written back
/// exactly as read.
public struct TensorName: Hashable, Sendable, Comparable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let string: String

    public init(_ string: String) { self.string = string }
    public init(stringLiteral value: String) { string = value }

    public static func == (a: TensorName, b: TensorName) -> Bool { a.string.utf8.elementsEqual(b.string.utf8) }

    public func hash(into hasher: inout Hasher) {
        for byte in string.utf8 { hasher.combine(byte) }
        hasher.combine(0xFF as UInt8)   // never a UTF-8 byte: ends the name
    }

    /// Byte-wise order of the UTF-8.
    public static func < (a: TensorName, b: TensorName) -> Bool {
        a.string.utf8.lexicographicallyPrecedes(b.string.utf8)
    }

    public var description: String { string }
}
