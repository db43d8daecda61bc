import Foundation
import QuantizedLinear
import Testing

/// safetensors reading and writing, and ComfyUI's quantized formats, against files built by hand.
@Suite struct CheckpointFormatTests {
    /// The header our writer produces for `json`: padded with spaces so the data starts at byte 64k.
    static func header(_ json: String) -> String { json }

    @Test func readsEveryDTypeFromAHandBuiltFile() throws {
        let scratch = try CheckpointScratch()
        let f16: [Float16] = [1.5, -2]
        let bf16 = [BFloat16(3.25), BFloat16(-0.5)]
        var data: [UInt8] = littleEndianBytes([1, -2.5])                            // F32 [2]      0..8
        data += f16.flatMap { v in [UInt8(v.bitPattern & 0xFF), UInt8(v.bitPattern >> 8)] }  // F16 [2] 8..12
        data += bf16.flatMap { v in [UInt8(v.bitPattern & 0xFF), UInt8(v.bitPattern >> 8)] } // BF16 [2] 12..16
        data += [0xFF, 0x05]                                                        // I8 [2]       16..18
        data += [0x07, 0xF0]                                                        // U8 [2]       18..20
        data += [0x38, 0xD4]                                                        // F8_E4M3 [2]  20..22
        data += [0, 0]                                                              // gap          22..24
        data += [0xFE, 0xFF, 0xFF, 0xFF]                                            // I32 [1]      24..28
        data += Array(repeating: 0, count: 8)                                       // I64 [1]      28..36
        let header = """
            {"__metadata__":{"format":"pt","note":"hi \\"there\\""},\
            "f32":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},\
            "f16":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},\
            "bf16":{"dtype":"BF16","shape":[1,2],"data_offsets":[12,16]},\
            "i8":{"dtype":"I8","shape":[2],"data_offsets":[16,18]},\
            "u8":{"dtype":"U8","shape":[2],"data_offsets":[18,20]},\
            "f8":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[20,22]},\
            "i32":{"dtype":"I32","shape":[],"data_offsets":[24,28]},\
            "i64":{"dtype":"I64","shape":[1],"data_offsets":[28,36]},\
            "empty":{"dtype":"F32","shape":[0,3],"data_offsets":[36,36]}}
            """
        let path = scratch.path("all.safetensors")
        try writeFile(safetensorsBytes(header: header, data: data), to: path)
        let file = try SafetensorsFile(path: path)
        #expect(file.metadata == ["format": "pt", "note": "hi \"there\""])
        #expect(file.entries.map(\.name) == ["f32", "f16", "bf16", "i8", "u8", "f8", "i32", "i64", "empty"])
        #expect(try file.tensor("f32").floats() == [1, -2.5])
        #expect(try file.tensor("f16").floats() == [1.5, -2])
        #expect(try file.tensor("bf16").floats() == [3.25, -0.5])
        #expect(try file.tensor("bf16").shape == [1, 2])
        #expect(try file.tensor("i8").elements(as: Int8.self) == [-1, 5])
        #expect(try file.tensor("u8").elements(as: UInt8.self) == [7, 240])
        #expect(try file.tensor("f8").floats() == [1, -12])
        #expect(try file.tensor("i32").elements(as: Int32.self) == [-2])
        #expect(try file.tensor("empty").shape == [0, 3])
        #expect(file.entry("i64")?.byteCount == 8)
        expectCheckpointError(.unsupportedDType, mentioning: [path, "`i64`", "I64"]) { _ = try file.tensor("i64") }
        expectCheckpointError(.unsupportedDType, mentioning: [path, "`i64`"]) {
            _ = try ComfyCheckpoint(contentsOf: path)
        }
        let model = try ComfyCheckpoint(contentsOf: path, options: ComfyLoadOptions(skipUnsupportedDTypes: true))
        #expect(model.skippedTensors == ["i64"])
        #expect(model.names == ["f32", "f16", "bf16", "i8", "u8", "f8", "i32", "empty"])
    }

    @Test func writerOutputMatchesHandBuiltBytes() throws {
        let scratch = try CheckpointScratch()
        let path = scratch.path("w.safetensors")
        let a = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        let b = try Tensor(elements: [Int8(-3), 4], shape: [2])
        try SafetensorsWriter.write([("a", a), ("b", b)], metadata: ["z": "1", "a\n": "\u{1}"], to: path)
        let expected = safetensorsBytes(
            header: #"{"__metadata__":{"a\n":"\u0001","z":"1"},"#
                + #""a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"#
                + #""b":{"dtype":"I8","shape":[2],"data_offsets":[24,26]}}"#,
            padTo: 64, data: littleEndianBytes([1, 2, 3, 4, 5, 6]) + [0xFD, 0x04])
        #expect(try readFile(path) == expected)
        #expect(try scratch.contents() == ["w.safetensors"])
        let file = try SafetensorsFile(path: path)
        #expect(file.metadata == ["z": "1", "a\n": "\u{1}"])
        #expect(try file.tensor("a").floats() == [1, 2, 3, 4, 5, 6])
    }

    @Test func writerLeavesNothingBehindOnFailure() throws {
        let scratch = try CheckpointScratch()
        let path = scratch.path("out.safetensors")
        try writeFile([1, 2, 3], to: path)
        let writer = try SafetensorsWriter(path: path, tensors: [.init(name: "x", dtype: .float32, shape: [2]),
                                                                 .init(name: "y", dtype: .float32, shape: [1])])
        #expect(try scratch.contents().count == 2)   // the old file and the temporary one
        try littleEndianBytes([1, 2]).withUnsafeBytes { try writer.write("x", bytes: $0) }
        expectCheckpointError(.invalidArgument, mentioning: ["`y`"]) { try writer.finish() }
        #expect(try scratch.contents() == ["out.safetensors"])
        #expect(try readFile(path) == [1, 2, 3])
        let second = try SafetensorsWriter(path: path, tensors: [.init(name: "x", dtype: .float32, shape: [2])])
        expectCheckpointError(.invalidArgument, mentioning: ["`x`", "8 bytes"]) {
            try [UInt8](repeating: 0, count: 4).withUnsafeBytes { try second.write("x", bytes: $0) }
        }
        #expect(try scratch.contents() == ["out.safetensors"])
    }

    /// A hand-written ComfyUI checkpoint: one int8_blockwise layer (2 x 3, group_size 2) with bias, and
    /// one float8_e4m3fn layer with an input scale, both declared per layer.
    static func handBuiltComfyFile(declaration: ComfyQuantDeclaration) -> [UInt8] {
        let int8JSON = Array(#"{"format": "int8_blockwise", "group_size": 2}"#.utf8)
        let fp8JSON = Array(#"{"format": "float8_e4m3fn"}"#.utf8)
        var data: [UInt8] = [0x01, 0xFF, 0x7F, 0x81, 0x00, 0x02]                // int8 codes 1 -1 127 -127 0 2
        data += littleEndianBytes([0.5, 0.25])                                  // scale (1, 2)
        var entries = [
            #""blk.weight":{"dtype":"I8","shape":[2,3],"data_offsets":[0,6]}"#,
            #""blk.weight_scale":{"dtype":"F32","shape":[1,2],"data_offsets":[6,14]}"#,
        ]
        var offset = 14
        if declaration == .perLayer {
            entries.append(#""blk.comfy_quant":{"dtype":"U8","shape":[\#(int8JSON.count)],"#
                + #""data_offsets":[14,\#(14 + int8JSON.count)]}"#)
            data += int8JSON
            offset += int8JSON.count
        }
        entries.append(#""blk.bias":{"dtype":"F32","shape":[2],"data_offsets":[\#(offset),\#(offset + 8)]}"#)
        data += littleEndianBytes([0.125, -8])
        offset += 8
        entries.append(#""fp.weight":{"dtype":"F8_E4M3","shape":[1,2],"data_offsets":[\#(offset),\#(offset + 2)]}"#)
        data += [0x38, 0xD4]                                                      // 1.0, -12.0
        entries.append(#""fp.weight_scale":{"dtype":"F32","shape":[],"#
            + #""data_offsets":[\#(offset + 2),\#(offset + 6)]}"#)
        data += littleEndianBytes([3])
        offset += 6
        if declaration == .perLayer {
            entries.append(#""fp.comfy_quant":{"dtype":"U8","shape":[\#(fp8JSON.count)],"#
                + #""data_offsets":[\#(offset),\#(offset + fp8JSON.count)]}"#)
            data += fp8JSON
            offset += fp8JSON.count
        }
        entries.append(#""fp.input_scale":{"dtype":"F32","shape":[],"data_offsets":[\#(offset),\#(offset + 4)]}"#)
        data += littleEndianBytes([0.75])
        // Metadata keys are written sorted: `_quantization_metadata` sorts before `modelspec`.
        var metadata = #""__metadata__":{"#
        if declaration == .header {
            metadata += #""_quantization_metadata":"{\"format_version\": \"1.0\", \"layers\": {"#
                + #"\"blk\": {\"format\": \"int8_blockwise\", \"group_size\": 2}, "#
                + #"\"fp\": {\"format\": \"float8_e4m3fn\"}}}","#
        }
        metadata += #""modelspec":"test""#
        let header = "{" + ([metadata + "}"] + entries).joined(separator: ",") + "}"
        return safetensorsBytes(header: header, padTo: 64, data: data)
    }

    @Test(arguments: ComfyQuantDeclaration.allCases)
    func readsAHandBuiltComfyCheckpoint(declaration: ComfyQuantDeclaration) throws {
        let scratch = try CheckpointScratch()
        let path = scratch.path("comfy.safetensors")
        try writeFile(Self.handBuiltComfyFile(declaration: declaration), to: path)
        let model = try ComfyCheckpoint(contentsOf: path)
        #expect(model.names == ["blk.weight", "blk.bias", "fp.weight", "fp.input_scale"])
        #expect(model.metadata == ["modelspec": "test"])
        let int8 = try #require(model["blk.weight"]?.quantizedTensor)
        let layout = try #require(int8.layout as? BlockWiseINT8Layout)
        #expect(layout == (try BlockWiseINT8Layout.weight(blockSize: 2)))
        #expect(int8.scale.shape == [1, 2])
        // q * scale of its block: columns 0-1 use 0.5, column 2 uses 0.25.
        #expect(try int8.dequantize(to: .float32).floats() == [0.5, -0.5, 31.75, -63.5, 0, 0.5])
        let fp8 = try #require(model["fp.weight"]?.quantizedTensor)
        #expect(fp8.layout is TensorCoreFP8Layout)
        #expect(try fp8.dequantize(to: .float32).floats() == [3, -36])
        #expect(try model["fp.input_scale"]?.denseTensor?.floats() == [0.75])
        #expect(try model["blk.bias"]?.denseTensor?.floats() == [0.125, -8])
        #expect(model.quantizedLayers.map(\.layer) == ["blk", "fp"])
    }

    @Test(arguments: ComfyQuantDeclaration.allCases)
    func writesComfyCheckpointsByteForByte(declaration: ComfyQuantDeclaration) throws {
        let scratch = try CheckpointScratch()
        var model = ComfyCheckpoint(metadata: ["modelspec": "test"])
        model["blk.weight"] = .quantized(try QuantizedTensor(
            layout: BlockWiseINT8Layout.weight(blockSize: 2),
            data: Tensor(elements: [Int8(1), -1, 127, -127, 0, 2], shape: [2, 3]),
            scale: Tensor([0.5, 0.25], shape: [1, 2]), shape: [2, 3], originalDType: .bfloat16))
        model["blk.bias"] = .dense(try Tensor([0.125, -8], shape: [2]))
        model["fp.weight"] = .quantized(try QuantizedTensor(
            layout: TensorCoreFP8Layout.dynamic, data: Tensor(elements: [Float8E4M3FN(1), Float8E4M3FN(-12)],
                                                              shape: [1, 2]),
            scale: Tensor([3], shape: []), shape: [1, 2], originalDType: .float32))
        model["fp.input_scale"] = .dense(try Tensor([0.75], shape: []))
        let path = scratch.path("written.safetensors")
        try model.write(to: path, declaration: declaration)
        #expect(try readFile(path) == Self.handBuiltComfyFile(declaration: declaration))
    }

    @Test(arguments: [ComfyQuantDeclaration.perLayer, .header], [DType.float32, .bfloat16])
    func roundTripsAreExact(declaration: ComfyQuantDeclaration, dtype: DType) throws {
        let scratch = try CheckpointScratch()
        let weight = try Tensor.randomNormal([37, 70], standardDeviation: 0.05, dtype: dtype, seed: 11)
        let int8 = try QuantizedTensor.fromFloat(weight, layout: BlockWiseINT8Layout.weight(blockSize: 16))
        let fp8 = try QuantizedTensor.fromFloat(weight, layout: TensorCoreFP8Layout.dynamic)
        var model = ComfyCheckpoint()
        model["a.weight"] = .quantized(int8)
        model["b.weight"] = .quantized(fp8)
        model["b.bias"] = .dense(try Tensor.randomNormal([37], dtype: dtype, seed: 12))
        let path = scratch.path("rt.safetensors")
        try model.write(to: path, declaration: declaration)
        let loaded = try ComfyCheckpoint(contentsOf: path, options: ComfyLoadOptions(originalDType: dtype))
        for name in ["a.weight", "b.weight"] {
            let original = try #require(model[name]?.quantizedTensor)
            let reloaded = try #require(loaded[name]?.quantizedTensor)
            #expect(reloaded.layout.isEqual(to: original.layout))
            #expect(try bits(reloaded.dequantize()) == bits(original.dequantize()))
            #expect(try bits(reloaded.dequantize(to: .float32)) == bits(original.dequantize(to: .float32)))
        }
        #expect(try bits(loaded["b.bias"]!.dequantized()) == bits(model["b.bias"]!.dequantized()))
        let reader = try ComfyCheckpointReader(path: path)
        #expect(reader.formats == ["a": .int8Blockwise(groupSize: 16), "b": .float8E4M3FN])
    }
}
