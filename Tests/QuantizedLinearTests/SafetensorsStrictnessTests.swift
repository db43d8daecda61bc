import Foundation
import QuantizedLinear
import Testing

/// The reader against the official one (`safetensors` 0.8.0, checked by hand for every case here): the
/// header length must match where the data ends, names are kept byte for byte, duplicate keys are
/// refused, and every dtype the official reader knows is read as raw bytes (issue 12, items 4-6, 11).
@Suite struct SafetensorsStrictnessTests {
    static let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#
        + #""b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#

    /// A declared header length shorter than the real header by 1...padding bytes: the JSON still parses
    /// (it ends before the padding), but every tensor would be read shifted. Refused, like the official
    /// reader ("incomplete metadata, file not fully covered"); so is a longer one.
    @Test(arguments: [-1, -3, -7, 1, 2])
    func headerLengthThatDoesNotMatchTheData(delta: Int) throws {
        let scratch = try CheckpointScratch()
        var bytes = safetensorsBytes(header: Self.header + "        ", data: littleEndianBytes([1, 2]))
        bytes[0] = UInt8(Int(bytes[0]) + delta)
        let path = scratch.path("shifted.safetensors")
        try writeFile(bytes, to: path)
        expectCheckpointError(.checkpointFormat, mentioning: [path]) { _ = try SafetensorsFile(path: path) }
        let output = scratch.path("out.safetensors")
        #expect(throws: TensorError.self) { try CheckpointConverter.convert(input: path, output: output) }
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    @Test func shortenedHeaderSaysWhy() throws {
        let scratch = try CheckpointScratch()
        var bytes = safetensorsBytes(header: Self.header + "    ", data: littleEndianBytes([1, 2]))
        bytes[0] -= 2
        let path = scratch.path("shifted.safetensors")
        try writeFile(bytes, to: path)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "shifted", "header length"]) {
            _ = try SafetensorsFile(path: path)
        }
    }

    @Test func trailingBytesAreRefused() throws {
        let scratch = try CheckpointScratch()
        let path = scratch.path("trailing.safetensors")
        try writeFile(safetensorsBytes(header: Self.header, data: littleEndianBytes([1, 2]) + [0]), to: path)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "appended"]) { _ = try SafetensorsFile(path: path) }
    }

    /// `café` in NFC (U+00E9) and NFD (e + U+0301): two tensors, each with its own data, through reading,
    /// loading, converting and exporting.
    @Test func namesThatDifferOnlyInNormalizationStayDistinct() throws {
        let scratch = try CheckpointScratch()
        let (nfc, nfd) = ("caf\u{E9}.weight", "cafe\u{301}.weight")
        #expect(nfc == nfd)   // Swift's String equality: what the reader must not use
        let header = "{\(SafetensorsWriterJSON.quote(nfc)):{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            + "\(SafetensorsWriterJSON.quote(nfd)):{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}"
        let path = scratch.path("names.safetensors")
        try writeFile(safetensorsBytes(header: header, data: littleEndianBytes([1, 2])), to: path)
        let file = try SafetensorsFile(path: path)
        #expect(file.entries.map { Array($0.name.utf8) } == [Array(nfc.utf8), Array(nfd.utf8)])
        #expect(try file.tensor(nfc).floats() == [1])
        #expect(try file.tensor(nfd).floats() == [2])
        let model = try ComfyCheckpoint(contentsOf: path)
        #expect(model.names.map { Array($0.utf8) } == [Array(nfc.utf8), Array(nfd.utf8)])
        #expect(try model[nfd]?.dequantized().floats() == [2])
        let copy = scratch.path("copy.safetensors")
        try model.write(to: copy)
        let converted = scratch.path("converted.safetensors")
        try CheckpointConverter.convert(input: path, output: converted,
                                        options: ConversionOptions(format: .float8E4M3FN))
        for written in [copy, converted] {
            let back = try SafetensorsFile(path: written)
            #expect(back.entries.filter { $0.name.hasSuffix(".weight") }.map { Array($0.name.utf8) }.sorted {
                $0.lexicographicallyPrecedes($1)
            } == [Array(nfd.utf8), Array(nfc.utf8)], "\(written)")
        }
        let exported = scratch.path("exported.safetensors")
        try CheckpointExporter.export(input: converted, output: exported, dtype: .float32)
        let back = try SafetensorsFile(path: exported)
        #expect(try back.tensor(nfc).floats() == [1] && back.tensor(nfd).floats() == [2])
    }

    /// A leading U+FEFF, control characters (escaped), a NUL, quotes and non-BMP characters survive.
    @Test(arguments: ["\u{FEFF}a", "\u{FEFF}", "a\u{1}\n\t\u{0}b", "q\"\\/", "\u{1F600}x", "\u{FEFF}\u{FEFF}z"])
    func unusualNamesAreKeptByteForByte(name: String) throws {
        let scratch = try CheckpointScratch()
        let path = scratch.path("name.safetensors")
        try SafetensorsWriter.write([(name, try Tensor([5], shape: [1]))], to: path)
        let file = try SafetensorsFile(path: path)
        #expect(file.entries.map { Array($0.name.utf8) } == [Array(name.utf8)])
        #expect(try file.tensor(name).floats() == [5])
        // The same name written with \u escapes by another writer.
        let escaped = "\"" + name.unicodeScalars.map { scalar in
            scalar.value > 0xFFFF ? String(scalar) : String(format: "\\u%04x", scalar.value)
        }.joined() + "\""
        let other = scratch.path("escaped.safetensors")
        try writeFile(safetensorsBytes(header: "{\(escaped):{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                                       data: littleEndianBytes([5])), to: other)
        #expect(try SafetensorsFile(path: other).entries.map { Array($0.name.utf8) } == [Array(name.utf8)])
    }

    @Test func aBOMBeforeANameIsNotTheSameName() throws {
        let scratch = try CheckpointScratch()
        let path = scratch.path("bom.safetensors")
        try SafetensorsWriter.write([("\u{FEFF}w", try Tensor([1], shape: [1])), ("w", try Tensor([2], shape: [1]))],
                                    to: path)
        let file = try SafetensorsFile(path: path)
        #expect(try file.tensor("\u{FEFF}w").floats() == [1])
        #expect(try file.tensor("w").floats() == [2])
    }

    /// Duplicate keys: the official reader refuses a repeated field inside an entry and silently keeps one
    /// of two tensors with the same name; this reader refuses both (byte-for-byte duplicates only).
    @Test(arguments: [
        #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
        #"{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
        #"{"__metadata__":{"k":"1","k":"2"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
        #"{"__metadata__":{},"__metadata__":{},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
        #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"\u0061":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
    ])
    func duplicateKeysAreRefused(header: String) throws {
        let scratch = try CheckpointScratch()
        let path = scratch.path("dup.safetensors")
        try writeFile(safetensorsBytes(header: header, data: littleEndianBytes([1])), to: path)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "twice"]) { _ = try SafetensorsFile(path: path) }
    }

    /// Headers the official reader refuses and so does this one (strict JSON, integers, UTF-8).
    @Test(arguments: [
        #"{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}"#,
        #"{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}"#,
        "{\"a\u{1}\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
        #"{"a\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
        #"{"a\x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}\u{0}",
        #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},}"#,
        String(repeating: "[", count: 200) + String(repeating: "]", count: 200),
    ])
    func strictJSON(header: String) throws {
        let scratch = try CheckpointScratch()
        let path = scratch.path("strict.safetensors")
        try writeFile(safetensorsBytes(header: header, data: littleEndianBytes([1])), to: path)
        expectCheckpointError(.checkpointFormat, mentioning: [path]) { _ = try SafetensorsFile(path: path) }
    }

    @Test func invalidUTF8IsRefused() throws {
        let scratch = try CheckpointScratch()
        let path = scratch.path("utf8.safetensors")
        var bytes = safetensorsBytes(header: #"{"aX":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                                     data: littleEndianBytes([1]))
        bytes[8 + 3] = 0xFF
        try writeFile(bytes, to: path)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "UTF-8"]) { _ = try SafetensorsFile(path: path) }
    }

    /// What the official reader accepts and this one does too: whitespace around the JSON, unknown entry
    /// fields, `__metadata__: null`, an empty header, zero-element tensors with huge dimensions.
    @Test func lenientWhereTheOfficialReaderIs() throws {
        let scratch = try CheckpointScratch()
        let path = scratch.path("lenient.safetensors")
        let header = " \n\t{\"__metadata__\":null,\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":[{}]}}\r\n "
        try writeFile(safetensorsBytes(header: header, data: littleEndianBytes([3])), to: path)
        let file = try SafetensorsFile(path: path)
        #expect(file.metadata.isEmpty)
        #expect(try file.tensor("a").floats() == [3])
        try writeFile(safetensorsBytes(header: "{}", data: []), to: path)
        #expect(try SafetensorsFile(path: path).entries.isEmpty)
    }

    /// Every dtype of the official reader, sub-byte ones included, with its size rule.
    @Test(arguments: [
        ("F8_E4M3FNUZ", [3], 3), ("F8_E5M2FNUZ", [2], 2), ("F8_E8M0", [4], 4), ("F4", [2, 3], 3),
        ("F6_E2M3", [4], 3), ("F6_E3M2", [8], 6), ("C64", [2], 16), ("F8_E5M2", [1], 1), ("U16", [1], 2),
    ])
    func dtypesTheLibraryHasNoTensorsOfAreCarriedAsBytes(dtype: String, shape: [Int], bytes: Int) throws {
        let scratch = try CheckpointScratch()
        let input = scratch.path("dtypes.safetensors")
        let payload = (0..<bytes).map { UInt8(0xA0 + $0) }
        let shapeText = shape.map(String.init).joined(separator: ",")
        let header = #"{"odd":{"dtype":"\#(dtype)","shape":[\#(shapeText)],"data_offsets":[0,\#(bytes)]},"#
            + #""w.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[\#(bytes),\#(bytes + 16)]}}"#
        try writeFile(safetensorsBytes(header: header, data: payload + littleEndianBytes([1, 2, 3, 4])), to: input)
        let file = try SafetensorsFile(path: input)
        #expect(file.entry("odd")?.dtype.rawValue == dtype)
        #expect(try file.withRawBytes(of: "odd") { Array($0) } == payload)
        expectCheckpointError(.unsupportedDType, mentioning: [input, "`odd`", dtype]) { _ = try file.tensor("odd") }
        let model = try ComfyCheckpoint(contentsOf: input, options: ComfyLoadOptions(skipUnsupportedDTypes: true))
        #expect(model.skippedTensors == ["odd"])
        let converted = scratch.path("converted.safetensors")
        try CheckpointConverter.convert(input: input, output: converted,
                                        options: ConversionOptions(format: .int8Blockwise(groupSize: 2)))
        let exported = scratch.path("exported.safetensors")
        try CheckpointExporter.export(input: converted, output: exported)
        for path in [converted, exported] {
            let back = try SafetensorsFile(path: path)
            #expect(back.entry("odd")?.dtype.rawValue == dtype && back.entry("odd")?.shape == shape)
            #expect(try back.withRawBytes(of: "odd") { Array($0) } == payload)
        }
    }

    /// A sub-byte tensor must fill its last byte (the official reader's rule).
    @Test(arguments: [("F4", 3, 2), ("F4", 1, 1), ("F6_E2M3", 1, 1), ("F6_E3M2", 2, 2)])
    func subByteTensorsMustFillTheirLastByte(dtype: String, count: Int, bytes: Int) throws {
        let scratch = try CheckpointScratch()
        let path = scratch.path("subbyte.safetensors")
        let header = #"{"odd":{"dtype":"\#(dtype)","shape":[\#(count)],"data_offsets":[0,\#(bytes)]}}"#
        try writeFile(safetensorsBytes(header: header, data: [UInt8](repeating: 0, count: bytes)), to: path)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "`odd`", "whole number of bytes"]) {
            _ = try SafetensorsFile(path: path)
        }
    }

    @Test func everyOfficialDTypeIsKnown() {
        let official = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
                        "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64",
                        "F64", "I64", "U64"]
        #expect(Set(SafetensorsDType.allCases.map(\.rawValue)) == Set(official))
    }
}

/// JSON string literals for hand-built headers (raw UTF-8, no escapes, like most writers).
enum SafetensorsWriterJSON {
    static func quote(_ text: String) -> String { "\"" + text + "\"" }
}
