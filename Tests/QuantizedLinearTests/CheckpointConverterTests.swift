import Foundation
import QuantizedLinear
import Testing

/// The converter end to end on small generated checkpoints, LoRA-aware scales by hand, and export.
@Suite struct CheckpointConverterTests {
    /// A small float model: two linear layers, a norm, a small and a 3-D weight, an integer buffer.
    static func writeModel(to path: String, dtype: DType = .bfloat16, poison: Bool = false) throws
        -> [String: Tensor] {
        var attention = try Tensor.randomNormal([40, 70], standardDeviation: 0.1, dtype: dtype, seed: 1)
        if poison {
            try attention.withUnsafeMutableElements(as: BFloat16.self) { $0[77] = BFloat16(.nan) }
        }
        let tensors: [(name: String, tensor: Tensor)] = [
            ("model.diffusion_model.blocks.0.attn.q.weight", attention),
            ("model.diffusion_model.blocks.0.attn.q.bias", try Tensor.randomNormal([40], dtype: dtype, seed: 2)),
            ("model.diffusion_model.blocks.0.norm.weight", try Tensor.randomNormal([70], dtype: dtype, seed: 3)),
            ("model.diffusion_model.blocks.0.ffn.up.weight",
             try Tensor.randomNormal([130, 40], standardDeviation: 0.02, dtype: dtype, seed: 4)),
            ("model.diffusion_model.tiny.weight", try Tensor.randomNormal([4, 4], dtype: dtype, seed: 5)),
            ("model.diffusion_model.conv.weight", try Tensor.randomNormal([4, 3, 2], dtype: dtype, seed: 6)),
            ("model.diffusion_model.positions", try Tensor(elements: [Int32(0), 1, 2], shape: [3])),
        ]
        try SafetensorsWriter.write(tensors, metadata: ["modelspec.title": "test"], to: path)
        return Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0.tensor) })
    }

    @Test(arguments: [ComfyQuantFormat.int8Blockwise(groupSize: 32), .float8E4M3FN],
          ComfyQuantDeclaration.allCases)
    func convertsAndLoadsThroughTheLibrary(format: ComfyQuantFormat, declaration: ComfyQuantDeclaration) throws {
        let scratch = try CheckpointScratch()
        let input = scratch.path("model.safetensors")
        let output = scratch.path("model-q.safetensors")
        let original = try Self.writeModel(to: input)
        var progressCalls = 0
        let options = ConversionOptions(format: format, exclude: [try LayerPattern("re:ffn")], minimumElements: 20,
                                        declaration: declaration)
        let report = try CheckpointConverter.convert(input: input, output: output, options: options) { progress in
            progressCalls += 1
            #expect(progress.tensorsDone == progressCalls && progress.tensorsTotal == 7)
        }
        #expect(progressCalls == 7)
        #expect(report.quantized.map(\.layer) == ["model.diffusion_model.blocks.0.attn.q"])
        #expect(report.quantized[0].relativeError > 0 && report.quantized[0].relativeError < 0.05)
        #expect(Dictionary(uniqueKeysWithValues: report.skipped.map { ($0.name, $0.reason) }) == [
            "model.diffusion_model.blocks.0.norm.weight": "not 2-D (shape [70])",
            "model.diffusion_model.blocks.0.ffn.up.weight": "excluded by --exclude re:ffn",
            "model.diffusion_model.tiny.weight": "16 elements, fewer than --min-elements 20",
            "model.diffusion_model.conv.weight": "not 2-D (shape [4, 3, 2])",
        ])
        #expect(report.copiedTensors == 6)
        #expect(report.outputBytes == (try readFile(output).count))
        #expect(try scratch.contents() == ["model-q.safetensors", "model.safetensors"])

        let model = try ComfyCheckpoint(contentsOf: output, options: ComfyLoadOptions(originalDType: .bfloat16))
        #expect(model.metadata == ["modelspec.title": "test"])
        let name = "model.diffusion_model.blocks.0.attn.q.weight"
        let loaded = try #require(model[name]?.quantizedTensor)
        let expected = try QuantizedTensor.fromFloat(original[name]!, layout: format.layout())
        #expect(try bits(loaded.dequantize(to: .float32)) == bits(expected.dequantize(to: .float32)))
        #expect(try bits(loaded.dequantize()) == bits(expected.dequantize()))
        for (key, tensor) in original where key != name {
            let copy = try #require(model[key]?.denseTensor)
            #expect(copy.dtype == tensor.dtype && copy.shape == tensor.shape)
            #expect(try copy.withUnsafeContiguousBytes(Array.init) == tensor.withUnsafeContiguousBytes(Array.init))
        }
        let file = try SafetensorsFile(path: output)
        #expect((file.entry("model.diffusion_model.blocks.0.attn.q.comfy_quant") != nil) == (declaration == .perLayer))
        #expect((file.metadata[ComfyKeys.quantizationMetadata] != nil) == (declaration == .header))
    }

    @Test func includePatternsAndTowardZeroRounding() throws {
        let scratch = try CheckpointScratch()
        let input = scratch.path("model.safetensors")
        let original = try Self.writeModel(to: input, dtype: .float32)
        let options = ConversionOptions(format: .int8Blockwise(groupSize: 16), rounding: .towardZero,
                                        include: [try LayerPattern("*.blocks.?.*")])
        let report = try CheckpointConverter.convert(input: input, output: scratch.path("q.safetensors"),
                                                     options: options)
        #expect(report.quantized.map(\.layer) == ["model.diffusion_model.blocks.0.attn.q",
                                                  "model.diffusion_model.blocks.0.ffn.up"])
        let model = try ComfyCheckpoint(contentsOf: scratch.path("q.safetensors"))
        let name = "model.diffusion_model.blocks.0.ffn.up.weight"
        let expected = try QuantizedTensor.fromFloat(
            original[name]!, layout: BlockWiseINT8Layout.weight(blockSize: 16, rounding: .towardZero))
        #expect(try model[name]!.quantizedTensor!.data.elements(as: Int8.self) == expected.data.elements(as: Int8.self))
        #expect(try bits(model[name]!.quantizedTensor!.scale) == bits(expected.scale))
    }

    @Test func aFailedConversionLeavesNoOutput() throws {
        let scratch = try CheckpointScratch()
        let input = scratch.path("model.safetensors")
        _ = try Self.writeModel(to: input, poison: true)
        let output = scratch.path("out.safetensors")
        expectCheckpointError(.nonFiniteValue, mentioning: [input, "`model.diffusion_model.blocks.0.attn.q.weight`",
                                                            "nan"]) {
            try CheckpointConverter.convert(input: input, output: output)
        }
        #expect(try scratch.contents() == ["model.safetensors"])
    }

    @Test func exportDequantizesBackToFloat() throws {
        let scratch = try CheckpointScratch()
        let input = scratch.path("model.safetensors")
        let original = try Self.writeModel(to: input)
        try CheckpointConverter.convert(input: input, output: scratch.path("q.safetensors"))
        let quantized = try ComfyCheckpoint(contentsOf: scratch.path("q.safetensors"))
        let layers = try CheckpointExporter.export(input: scratch.path("q.safetensors"),
                                                   output: scratch.path("e.safetensors"), dtype: .float32)
        #expect(layers == 3)
        let exported = try SafetensorsFile(path: scratch.path("e.safetensors"))
        #expect(Set(exported.entries.map(\.name)) == Set(original.keys))
        for (layer, _) in quantized.quantizedLayers {
            let restored = try exported.tensor(layer + ".weight")
            #expect(restored.dtype == .float32)
            #expect(try bits(restored) == bits(quantized[layer + ".weight"]!.quantizedTensor!.dequantize(to: .float32)))
        }
    }

    // MARK: LoRA-aware scales

    /// Base layer `blocks.0.attn.q`, weight 2 x 4 in blocks of 2: block 0 has amax 2, block 1 amax 0.5.
    static let base: [Float] = [1, 0, 0.5, 0,
                                0, -2, 0, 0.25]

    static func writeBase(_ scratch: CheckpointScratch) throws -> String {
        let path = scratch.path("base.safetensors")
        try SafetensorsWriter.write([
            ("model.diffusion_model.blocks.0.attn.q.weight", try Tensor(base, shape: [2, 4])),
            ("model.diffusion_model.blocks.0.attn.k.weight", try Tensor(base, shape: [2, 4])),
            ("model.diffusion_model.blocks.0.norm.weight", try Tensor([1, 1, 1, 1], shape: [4])),
        ], to: path)
        return path
    }

    /// Both LoRA forms make the same delta for layer q: `[[0, 0, 4, 0], [0, 0, 0, 0]]`, so the patched
    /// weight has amax 4.5 in block 1 (kohya: up [1, 0], down [0, 0, 4, 0], alpha 0.5, rank 1, at
    /// strength 2; PEFT: B [2, 0], A [0, 0, 2, 0], no alpha, at strength 1).
    @Test(arguments: ["kohya", "peft"], [ComfyQuantFormat.int8Blockwise(groupSize: 2), .float8E4M3FN])
    func loraAwareScalesByHand(form: String, format: ComfyQuantFormat) throws {
        let scratch = try CheckpointScratch()
        let input = try Self.writeBase(scratch)
        let lora = scratch.path("lora.safetensors")
        let strength: Float
        if form == "kohya" {
            try SafetensorsWriter.write([
                ("lora_unet_blocks_0_attn_q.lora_up.weight", try Tensor([1, 0], shape: [2, 1])),
                ("lora_unet_blocks_0_attn_q.lora_down.weight", try Tensor([0, 0, 4, 0], shape: [1, 4])),
                ("lora_unet_blocks_0_attn_q.alpha", try Tensor([0.5], shape: [], dtype: .bfloat16)),
                ("lora_unet_blocks_0_norm.lora_up.weight", try Tensor([1], shape: [1, 1])),
                ("lora_unet_blocks_0_norm.lora_down.weight", try Tensor([1], shape: [1, 1])),
                ("lora_unet_blocks_7_ffn.lora_up.weight", try Tensor([1, 0], shape: [2, 1])),
                ("lora_unet_blocks_7_ffn.lora_down.weight", try Tensor([0, 0, 4, 0], shape: [1, 4])),
                ("lora_unet_blocks_0_attn_q.dora_scale", try Tensor([1], shape: [1])),
            ], to: lora)
            strength = 2
        } else {
            try SafetensorsWriter.write([
                ("base_model.model.blocks.0.attn.q.lora_A.weight", try Tensor([0, 0, 2, 0], shape: [1, 4])),
                ("base_model.model.blocks.0.attn.q.lora_B.weight", try Tensor([2, 0], shape: [2, 1])),
            ], to: lora)
            strength = 1
        }
        let output = scratch.path("q.safetensors")
        let options = ConversionOptions(format: format, loraPaths: [lora], loraStrength: strength)
        let report = try CheckpointConverter.convert(input: input, output: output, options: options)
        #expect(report.quantized.map(\.loraCount) == [1, 0])
        if form == "kohya" {
            #expect(report.unmatchedLoRALayers == ["\(lora): lora_unet_blocks_7_ffn"])
            #expect(report.loraLayersOnUnquantizedLayers == [
                "\(lora): lora_unet_blocks_0_norm -> model.diffusion_model.blocks.0.norm"])
            #expect(report.ignoredLoRAKeys == ["\(lora): lora_unet_blocks_0_attn_q.dora_scale"])
        }
        let model = try ComfyCheckpoint(contentsOf: output)
        let q = try #require(model["model.diffusion_model.blocks.0.attn.q.weight"]?.quantizedTensor)
        let k = try #require(model["model.diffusion_model.blocks.0.attn.k.weight"]?.quantizedTensor)
        switch format {
        case .int8Blockwise:
            let scales: [Float] = [2 / 127, 4.5 / 127]
            #expect(try q.scale.floats() == scales)
            #expect(try k.scale.floats() == [2 / 127, 0.5 / 127])   // no LoRA for k: its own amax
            let expected = Self.base.enumerated().map { index, x in
                Int8((x / scales[index % 4 / 2]).rounded(.toNearestOrEven))
            }
            #expect(try q.data.elements(as: Int8.self) == expected)
        case .float8E4M3FN:
            #expect(try q.scale.floats() == [4.5 / 448])
            #expect(try k.scale.floats() == [2 / 448])
            #expect(try q.data.elements(as: Float8E4M3FN.self) == Self.base.map { Float8E4M3FN($0 / (4.5 / 448)) })
        }
    }

    @Test func loraOfZeroStrengthChangesNothing() throws {
        let scratch = try CheckpointScratch()
        let input = scratch.path("model.safetensors")
        _ = try Self.writeModel(to: input, dtype: .float32)
        let lora = scratch.path("lora.safetensors")
        try SafetensorsWriter.write([
            ("blocks.0.attn.q.lora_up.weight", try Tensor.randomNormal([40, 4], seed: 9)),
            ("blocks.0.attn.q.lora_down.weight", try Tensor.randomNormal([4, 70], seed: 10)),
        ], to: lora)
        try CheckpointConverter.convert(input: input, output: scratch.path("plain.safetensors"))
        let report = try CheckpointConverter.convert(
            input: input, output: scratch.path("lora0.safetensors"),
            options: ConversionOptions(loraPaths: [lora], loraStrength: 0))
        #expect(report.quantized.first?.loraCount == 1)
        #expect(try readFile(scratch.path("plain.safetensors")) == readFile(scratch.path("lora0.safetensors")))
    }

    @Test func aLoRAThatDoesNotFitIsAnError() throws {
        let scratch = try CheckpointScratch()
        let input = try Self.writeBase(scratch)
        let lora = scratch.path("wrong.safetensors")
        try SafetensorsWriter.write([
            ("lora_unet_blocks_0_attn_q.lora_up.weight", try Tensor([1, 0, 0], shape: [3, 1])),
            ("lora_unet_blocks_0_attn_q.lora_down.weight", try Tensor([0, 0, 4, 0], shape: [1, 4])),
        ], to: lora)
        expectCheckpointError(.shapeMismatch, mentioning: [lora, "lora_unet_blocks_0_attn_q", "[3, 1]", "[1, 4]",
                                                           "model.diffusion_model.blocks.0.attn.q", "[2, 4]"]) {
            try CheckpointConverter.convert(input: input, output: scratch.path("q.safetensors"),
                                            options: ConversionOptions(loraPaths: [lora]))
        }
        let half = scratch.path("half.safetensors")
        try SafetensorsWriter.write([("x.lora_down.weight", try Tensor([1], shape: [1, 1]))], to: half)
        expectCheckpointError(.checkpointFormat, mentioning: [half, "`x.lora_down.weight`", "no up matrix"]) {
            _ = try LoRAFile(path: half)
        }
        expectCheckpointError(.checkpointFormat, mentioning: [input, "no LoRA layers found"]) {
            try CheckpointConverter.convert(input: input, output: scratch.path("q.safetensors"),
                                            options: ConversionOptions(loraPaths: [input]))
        }
        #expect(try scratch.contents() == ["base.safetensors", "half.safetensors", "wrong.safetensors"])
    }

    @Test func loraKeysMapToLayers() {
        let matcher = LoRALayerMatcher(layers: ["model.diffusion_model.blocks.0.self_attn.q",
                                                "model.diffusion_model.blocks.10.self_attn.q",
                                                "model.diffusion_model.head.proj", "a.b_c", "a_b.c"])
        #expect(matcher.layer(for: "lora_unet_blocks_0_self_attn_q") == "model.diffusion_model.blocks.0.self_attn.q")
        #expect(matcher.layer(for: "diffusion_model.blocks.10.self_attn.q")
            == "model.diffusion_model.blocks.10.self_attn.q")
        #expect(matcher.layer(for: "base_model.model.blocks.0.self_attn.q")
            == "model.diffusion_model.blocks.0.self_attn.q")
        #expect(matcher.layer(for: "transformer.head.proj") == "model.diffusion_model.head.proj")
        #expect(matcher.layer(for: "lora_unet_head_proj") == "model.diffusion_model.head.proj")
        #expect(matcher.layer(for: "lora_unet_blocks_1_self_attn_q") == nil)
        #expect(matcher.layer(for: "a_b_c") == nil)   // ambiguous: two layers normalise alike
    }
}
