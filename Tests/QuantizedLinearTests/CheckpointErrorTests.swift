import Foundation
import QuantizedLinear
import Testing

/// Every kind of bad checkpoint gets a thrown error that names the file, the tensor and the problem.
@Suite struct CheckpointErrorTests {
    /// A valid two-tensor file: `x` F32 [2] at [0, 8), `y` I8 [4] at [8, 12).
    static let validHeader = #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
        + #""y":{"dtype":"I8","shape":[4],"data_offsets":[8,12]}}"#
    static let validData = littleEndianBytes([1, 2]) + [1, 2, 3, 4]

    func load(_ bytes: [UInt8], _ scratch: CheckpointScratch) throws -> String {
        let path = scratch.path("bad.safetensors")
        try writeFile(bytes, to: path)
        return path
    }

    @Test func validBaselineLoads() throws {
        let scratch = try CheckpointScratch()
        let path = try load(safetensorsBytes(header: Self.validHeader, data: Self.validData), scratch)
        #expect(try SafetensorsFile(path: path).tensor("y").elements(as: Int8.self) == [1, 2, 3, 4])
    }

    @Test func truncatedFiles() throws {
        let scratch = try CheckpointScratch()
        let full = safetensorsBytes(header: Self.validHeader, data: Self.validData)
        var path = try load(Array(full.prefix(5)), scratch)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "truncated"]) {
            _ = try SafetensorsFile(path: path)
        }
        path = try load(Array(full.prefix(40)), scratch)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "header length", "past the end"]) {
            _ = try SafetensorsFile(path: path)
        }
        // The header is whole but the data is cut: `y` now lies outside the data section.
        path = try load(Array(full.dropLast(2)), scratch)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "`y`", "outside the data section"]) {
            _ = try SafetensorsFile(path: path)
        }
        path = try load([], scratch)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "0 bytes"]) {
            _ = try SafetensorsFile(path: path)
        }
        expectCheckpointError(.io, mentioning: [scratch.path("missing")]) {
            _ = try SafetensorsFile(path: scratch.path("missing"))
        }
    }

    @Test func headerLengthPastTheEnd() throws {
        let scratch = try CheckpointScratch()
        var bytes = safetensorsBytes(header: Self.validHeader, data: Self.validData)
        bytes[7] = 0x80   // a length of 2^63 + ...
        let path = try load(bytes, scratch)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "past the end"]) {
            _ = try SafetensorsFile(path: path)
        }
    }

    @Test(arguments: [
        (#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#, "not valid JSON"),
        (#"[1, 2]"#, "not an object"),
        (#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"a":1}}"#, "must be a string"),
        (#"{"x":{"dtype":"F32","shape":[2]}}"#, "data_offsets"),
        (#"{"x":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, "shape"),
        (#"{"x":{"dtype":"F32","shape":[true],"data_offsets":[0,8]}}"#, "shape"),
        (#"{"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, "shape"),
        (#"{"x":{"dtype":"F32","shape":[0,1099511627777],"data_offsets":[0,0]}}"#, "shape"),
        (#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, "ordered pair"),
    ])
    func malformedHeaders(header: String, problem: String) throws {
        let scratch = try CheckpointScratch()
        let path = try load(safetensorsBytes(header: header, data: Self.validData), scratch)
        expectCheckpointError(.checkpointFormat, mentioning: [path, problem]) {
            _ = try SafetensorsFile(path: path)
        }
    }

    @Test func lyingOffsetsSizesAndDTypes() throws {
        let scratch = try CheckpointScratch()
        let cases: [(String, [String])] = [
            (#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"I8","shape":[4],"#
                + #""data_offsets":[6,10]}}"#, ["`y`", "overlaps", "`x`"]),
            (#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"I8","shape":[4],"#
                + #""data_offsets":[8,12]},"z":{"dtype":"U8","shape":[2],"data_offsets":[11,13]}}"#,
             ["`z`", "outside the data section"]),
            (#"{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, ["`x`", "8 bytes", "needs 12 bytes"]),
            (#"{"x":{"dtype":"F7","shape":[2],"data_offsets":[0,8]}}"#, ["`x`", "unknown dtype `F7`"]),
            (#"{"x":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#, ["`x`", "shape"]),
            (#"{"x":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]}}"#,
             ["`x`", "overflows"]),
        ]
        for (header, mentions) in cases {
            let path = try load(safetensorsBytes(header: header, data: Self.validData), scratch)
            expectCheckpointError(.checkpointFormat, mentioning: [path] + mentions) {
                _ = try SafetensorsFile(path: path)
            }
        }
    }

    /// A ComfyUI file with layer `L` (int8_blockwise, group 2, weight 2 x 3) whose pieces are given.
    func comfyFile(weightDType: String = "I8", scale: (dtype: String, shape: [Int])? = ("F32", [1, 2]),
                   declaration: String? = #"{"format": "int8_blockwise", "group_size": 2}"#,
                   headerDeclaration: String? = nil, _ scratch: CheckpointScratch) throws -> String {
        var entries = [#""L.weight":{"dtype":"\#(weightDType)","shape":[2,3],"data_offsets":[0,6]}"#]
        var data: [UInt8] = [1, 2, 3, 4, 5, 6]
        if let scale {
            let count = scale.shape.reduce(1, *)
            entries.append(#""L.weight_scale":{"dtype":"\#(scale.dtype)","shape":\#(scale.shape),"#
                + #""data_offsets":[6,\#(6 + 4 * count)]}"#)
            data += littleEndianBytes([Float](repeating: 0.5, count: count))
        }
        if let declaration {
            let bytes = Array(declaration.utf8)
            entries.append(#""L.comfy_quant":{"dtype":"U8","shape":[\#(bytes.count)],"#
                + #""data_offsets":[\#(data.count),\#(data.count + bytes.count)]}"#)
            data += bytes
        }
        if let headerDeclaration {
            let escaped = headerDeclaration.replacingOccurrences(of: "\"", with: "\\\"")
            entries.insert(#""__metadata__":{"_quantization_metadata":"\#(escaped)"}"#, at: 0)
        }
        return try load(safetensorsBytes(header: "{" + entries.joined(separator: ",") + "}", data: data), scratch)
    }

    @Test func brokenQuantizedLayers() throws {
        let scratch = try CheckpointScratch()
        #expect(try ComfyCheckpointReader(path: comfyFile(scratch)).formats == ["L": .int8Blockwise(groupSize: 2)])
        var path = try comfyFile(scale: nil, scratch)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "`L.weight_scale`", "no scale"]) {
            _ = try ComfyCheckpoint(contentsOf: path)
        }
        path = try comfyFile(scale: ("F32", [2, 2]), scratch)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "`L.weight_scale`", "[2, 2]", "needs [1, 2]"]) {
            _ = try ComfyCheckpoint(contentsOf: path)
        }
        path = try comfyFile(scale: ("I32", [1, 2]), scratch)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "`L.weight_scale`", "F32"]) {
            _ = try ComfyCheckpoint(contentsOf: path)
        }
        path = try comfyFile(weightDType: "U8", scratch)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "`L.weight`", "I8", "U8"]) {
            _ = try ComfyCheckpoint(contentsOf: path)
        }
        path = try comfyFile(declaration: #"{"format": "int8_blockwise", "group_size": 2"#, scratch)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "`L.comfy_quant`", "JSON"]) {
            _ = try ComfyCheckpoint(contentsOf: path)
        }
        path = try comfyFile(declaration: #"{"format": "nvfp4"}"#, scratch)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "`L.comfy_quant`", "nvfp4", "not supported"]) {
            _ = try ComfyCheckpoint(contentsOf: path)
        }
        path = try comfyFile(declaration: #"{"format": "int8_blockwise", "group_size": 0}"#, scratch)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "group_size 0"]) {
            _ = try ComfyCheckpoint(contentsOf: path)
        }
        path = try comfyFile(declaration: nil,
                             headerDeclaration: #"{"format_version": "1.0", "layers": {"M": {"format": "#
                                 + #""float8_e4m3fn"}}}"#,
                             scratch)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "`M.weight`", "no `M.weight`"]) {
            _ = try ComfyCheckpoint(contentsOf: path)
        }
        path = try comfyFile(headerDeclaration: #"{"format_version": "1.0", "layers": {"L": {"format": "#
                                 + #""float8_e4m3fn"}}}"#,
                             scratch)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "`L.comfy_quant`", "remove one"]) {
            _ = try ComfyCheckpoint(contentsOf: path)
        }
        path = try comfyFile(declaration: nil, headerDeclaration: "{not json", scratch)
        expectCheckpointError(.checkpointFormat, mentioning: [path, "_quantization_metadata", "layers"]) {
            _ = try ComfyCheckpoint(contentsOf: path)
        }
    }

    @Test func writingWhatComfyUICannotHold() throws {
        let scratch = try CheckpointScratch()
        let x = try Tensor.randomNormal([4, 8], seed: 3)
        var model = ComfyCheckpoint()
        model["act"] = .quantized(
            try QuantizedTensor.fromFloat(x, layout: BlockWiseINT8Layout.activation(blockSize: 4)))
        let path = scratch.path("out.safetensors")
        expectCheckpointError(.unsupportedOperation, mentioning: [path, "`act`"]) { try model.write(to: path) }
        model["act"] = nil
        model["rows.weight"] = .quantized(
            try QuantizedTensor.fromFloat(x, layout: BlockWiseINT8Layout(blockRows: 1, blockColumns: 4)))
        expectCheckpointError(.unsupportedOperation, mentioning: [path, "`rows.weight`"]) { try model.write(to: path) }
        #expect(try scratch.contents().isEmpty)
    }
}
