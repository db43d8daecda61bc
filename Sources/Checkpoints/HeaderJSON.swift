/// The JSON of a safetensors header, parsed from its bytes by this module rather than by Foundation.
///
/// Why not `JSONSerialization`: it returns objects as `[String: Any]`, which merges keys that are equal
/// under Unicode canonical equivalence (NFC and NFD spellings of one name) and silently keeps one of two
/// duplicate keys, and it may drop a leading U+FEFF from a string. Here object members stay an ordered
/// list of (key, value) with keys exactly as written (escapes decoded, nothing normalised), and a key
/// that occurs twice in one object (byte for byte) is an error.
///
/// Grammar: RFC 8259, strictly. UTF-8 only (invalid sequences are errors), no raw control characters in
/// strings, escapes `\" \\ \/ \b \f \n \r \t \uXXXX` with surrogate pairs (a lone surrogate is an error,
/// as in the official reader), nesting at most ``maximumDepth`` deep, and nothing but whitespace
/// (space, tab, LF, CR) after the top-level value.
enum HeaderJSON: Equatable {
    case object([(key: String, value: HeaderJSON)])
    case array([HeaderJSON])
    case string(String)
    /// A number written as an integer (no fraction or exponent) that fits in `Int`.
    case integer(Int)
    /// Any other number, as written.
    case number(String)
    case bool(Bool)
    case null

    /// Deeper nesting is refused (it would otherwise grow the parser's stack without bound).
    static let maximumDepth = 128

    static func == (a: HeaderJSON, b: HeaderJSON) -> Bool {
        switch (a, b) {
        case let (.object(x), .object(y)):
            x.count == y.count && zip(x, y).allSatisfy { $0.key.utf8.elementsEqual($1.key.utf8) && $0.value == $1.value }
        case let (.array(x), .array(y)): x == y
        case let (.string(x), .string(y)): x.utf8.elementsEqual(y.utf8)
        case let (.integer(x), .integer(y)): x == y
        case let (.number(x), .number(y)): x == y
        case let (.bool(x), .bool(y)): x == y
        case (.null, .null): true
        default: false
        }
    }

    /// A short name of the value's kind, for error messages.
    var kind: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .integer, .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }

    /// The value as written, for error messages (strings quoted, containers by kind).
    var written: String {
        switch self {
        case .integer(let value): String(value)
        case .number(let text): text
        case .string(let text): SafetensorsWriter.jsonString(text)
        case .bool(let value): String(value)
        case .null: "null"
        case .object, .array: kind
        }
    }

    /// Parses `bytes` as one JSON value.
    /// - Throws: ``ParseError`` with the byte offset and what was wrong.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> HeaderJSON {
        var parser = Parser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw parser.error("unexpected bytes after the JSON value") }
        return value
    }

    struct ParseError: Error {
        let offset: Int
        let problem: String
    }

    private struct Parser {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        func error(_ problem: String) -> ParseError { ParseError(offset: position, problem: problem) }

        var current: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skipWhitespace() {
            while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { position += 1 }
        }

        mutating func expect(_ literal: String) throws {
            for byte in literal.utf8 {
                guard current == byte else { throw error("expected `\(literal)`") }
                position += 1
            }
        }

        mutating func value(depth: Int) throws -> HeaderJSON {
            guard depth < HeaderJSON.maximumDepth else {
                throw error("nesting deeper than \(HeaderJSON.maximumDepth) levels")
            }
            switch current {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            case let byte? where byte == UInt8(ascii: "-") || (0x30...0x39).contains(byte): return try number()
            case nil: throw error("unexpected end of the header")
            default: throw error("unexpected byte 0x\(String(current!, radix: 16))")
            }
        }

        mutating func object(depth: Int) throws -> HeaderJSON {
            position += 1
            var members: [(key: String, value: HeaderJSON)] = []
            var seen = Set<TensorName>()
            skipWhitespace()
            if current == UInt8(ascii: "}") { position += 1; return .object([]) }
            while true {
                skipWhitespace()
                guard current == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let keyOffset = position
                let key = try string()
                guard seen.insert(TensorName(key)).inserted else {
                    throw ParseError(offset: keyOffset, problem: "key \(SafetensorsWriter.jsonString(key)) occurs "
                        + "twice in one object; duplicate keys are ambiguous")
                }
                skipWhitespace()
                try expect(":")
                skipWhitespace()
                members.append((key, try value(depth: depth + 1)))
                skipWhitespace()
                if current == UInt8(ascii: ",") { position += 1; continue }
                try expect("}")
                return .object(members)
            }
        }

        mutating func array(depth: Int) throws -> HeaderJSON {
            position += 1
            var items: [HeaderJSON] = []
            skipWhitespace()
            if current == UInt8(ascii: "]") { position += 1; return .array([]) }
            while true {
                skipWhitespace()
                items.append(try value(depth: depth + 1))
                skipWhitespace()
                if current == UInt8(ascii: ",") { position += 1; continue }
                try expect("]")
                return .array(items)
            }
        }

        mutating func number() throws -> HeaderJSON {
            let start = position
            if current == UInt8(ascii: "-") { position += 1 }
            guard let first = current, (0x30...0x39).contains(first) else { throw error("a digit must follow `-`") }
            position += 1
            if first != 0x30 { skipDigits() }
            var isInteger = true
            if current == UInt8(ascii: ".") {
                position += 1
                guard try skipRequiredDigits() else { throw error("a digit must follow `.`") }
                isInteger = false
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                position += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
                guard try skipRequiredDigits() else { throw error("a digit must follow the exponent") }
                isInteger = false
            }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
            if isInteger, let value = Int(text) { return .integer(value) }
            return .number(text)
        }

        mutating func skipDigits() {
            while let byte = current, (0x30...0x39).contains(byte) { position += 1 }
        }

        mutating func skipRequiredDigits() throws -> Bool {
            let start = position
            skipDigits()
            return position > start
        }

        mutating func string() throws -> String {
            position += 1
            var scalars = String.UnicodeScalarView()
            while true {
                guard let byte = current else { throw error("unterminated string") }
                switch byte {
                case UInt8(ascii: "\""):
                    position += 1
                    return String(scalars)
                case UInt8(ascii: "\\"):
                    position += 1
                    scalars.append(try escape())
                case 0..<0x20:
                    throw error("raw control character 0x\(String(byte, radix: 16)) in a string (write it as \\u00XX)")
                case 0..<0x80:
                    scalars.append(Unicode.Scalar(byte))
                    position += 1
                default:
                    scalars.append(try utf8Scalar())
                }
            }
        }

        /// One multi-byte UTF-8 sequence, strictly (no overlong forms, no surrogates, at most U+10FFFF).
        mutating func utf8Scalar() throws -> Unicode.Scalar {
            let lead = bytes[position]
            let (length, minimum, initial): (Int, UInt32, UInt32) = switch lead {
            case 0xC2...0xDF: (2, 0x80, UInt32(lead & 0x1F))
            case 0xE0...0xEF: (3, 0x800, UInt32(lead & 0x0F))
            case 0xF0...0xF4: (4, 0x10000, UInt32(lead & 0x07))
            default: (0, 0, 0)
            }
            guard length > 0, position + length <= bytes.count else { throw error("invalid UTF-8") }
            var value = initial
            for offset in 1..<length {
                let next = bytes[position + offset]
                guard next & 0xC0 == 0x80 else { throw error("invalid UTF-8") }
                value = value << 6 | UInt32(next & 0x3F)
            }
            guard value >= minimum, let scalar = Unicode.Scalar(value) else { throw error("invalid UTF-8") }
            position += length
            return scalar
        }

        mutating func escape() throws -> Unicode.Scalar {
            guard let byte = current else { throw error("unterminated escape") }
            position += 1
            switch byte {
            case UInt8(ascii: "\""): return "\""
            case UInt8(ascii: "\\"): return "\\"
            case UInt8(ascii: "/"): return "/"
            case UInt8(ascii: "b"): return "\u{08}"
            case UInt8(ascii: "f"): return "\u{0C}"
            case UInt8(ascii: "n"): return "\n"
            case UInt8(ascii: "r"): return "\r"
            case UInt8(ascii: "t"): return "\t"
            case UInt8(ascii: "u"):
                let unit = try hex4()
                if (0xD800..<0xDC00).contains(unit) {
                    guard current == UInt8(ascii: "\\") else { throw error("lone high surrogate in a \\u escape") }
                    position += 1
                    guard current == UInt8(ascii: "u") else { throw error("lone high surrogate in a \\u escape") }
                    position += 1
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw error("high surrogate without a low one") }
                    return Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))!
                }
                guard let scalar = Unicode.Scalar(unit) else { throw error("lone low surrogate in a \\u escape") }
                return scalar
            default:
                throw error("invalid escape `\\\(Character(Unicode.Scalar(byte)))`")
            }
        }

        mutating func hex4() throws -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard let byte = current, let digit = Self.hexDigit(byte) else {
                    throw error("\\u needs four hex digits")
                }
                value = value << 4 | digit
                position += 1
            }
            return value
        }

        static func hexDigit(_ byte: UInt8) -> UInt32? {
            switch byte {
            case 0x30...0x39: UInt32(byte - 0x30)
            case 0x41...0x46: UInt32(byte - 0x41 + 10)
            case 0x61...0x66: UInt32(byte - 0x61 + 10)
            default: nil
            }
        }
    }
}
