import Foundation
import QuantizedLinear
import QLNN
import Testing

/// A two-layer block, to exercise name walking and pattern matching.
private struct TinyBlock: Module {
    var up: Linear
    var down: Linear
    var norm: LayerNorm

    mutating func updateLinears(_ body: (String, inout Linear) throws -> Void) rethrows {
        try ModuleChildren.linears(of: &up, named: "ffn.up", body)
        try ModuleChildren.linears(of: &down, named: "ffn.down", body)
    }

    mutating func updateTensors(_ body: (String, inout Tensor) throws -> Void) rethrows {
        try ModuleChildren.tensors(of: &norm, named: "norm", body)
    }
}

private struct TinyModel: Module {
    var blocks: [TinyBlock]

    mutating func updateLinears(_ body: (String, inout Linear) throws -> Void) rethrows {
        try ModuleChildren.linears(of: &blocks, named: "blocks", body)
    }

    mutating func updateTensors(_ body: (String, inout Tensor) throws -> Void) rethrows {
        try ModuleChildren.tensors(of: &blocks, named: "blocks", body)
    }
}

private func random(_ shape: [Int], seed: UInt64) throws -> Tensor { try Tensor.randomNormal(shape, seed: seed) }

/// Two lookup tables, forwarded under their names.
private struct TinyEmbeddings: Module {
    var word: Embedding
    var position: Embedding

    mutating func updateLinears(_ body: (String, inout Linear) throws -> Void) rethrows {}

    mutating func updateTensors(_ body: (String, inout Tensor) throws -> Void) rethrows {
        try ModuleChildren.tensors(of: &word, named: "word", body)
        try ModuleChildren.tensors(of: &position, named: "position", body)
    }

    mutating func updateEmbeddings(_ body: (String, inout Embedding) throws -> Void) rethrows {
        try ModuleChildren.embeddings(of: &word, named: "word", body)
        try ModuleChildren.embeddings(of: &position, named: "position", body)
    }
}

private func tinyModel() throws -> TinyModel {
    let blocks = try (0..<2).map { i -> TinyBlock in
        TinyBlock(up: try Linear(weight: random([256, 128], seed: 10 + UInt64(i)), bias: random([256], seed: 20)),
                  down: try Linear(weight: random([128, 256], seed: 30 + UInt64(i))),
                  norm: try LayerNorm(weight: random([128], seed: 40), bias: random([128], seed: 41), epsilon: 1e-5))
    }
    return TinyModel(blocks: blocks)
}

@Suite("QLNN layers: Linear, quantizeLinears, ModelWeights")
struct QLNNTests {
    @Test("Linear equals the linear op: dense, INT8 W8A8, INT8 weight-only and FP8, under `fail`")
    func linearModes() throws {
        let x = try random([5, 7, 128], seed: 1)
        let w = try random([96, 128], seed: 2)
        let b = try random([96], seed: 3)
        let dense = try Linear(weight: w, bias: b)
        let expected = try DenseOps.linear(x, w, bias: b).floats()
        #expect(try dense(x).floats() == expected)
        for (layout, mode, tolerance) in [
            (try BlockWiseINT8Layout.weight(blockSize: 64) as any QuantizedLayout, LinearOptions.FloatInputMode
                .quantizeInput, 2e-2),
            (try BlockWiseINT8Layout.weight(blockSize: 64), .dequantizeWeight, 1e-2),
            (TensorCoreFP8Layout.dynamic, .quantizeInput, 8e-2),
        ] {
            var layer = dense
            try layer.quantize(layout: layout, floatInput: mode)
            #expect(layer.isQuantized && layer.floatInput == mode)
            let y = try withoutFallback { try layer(x) }
            #expect(y.shape == [5, 7, 96])
            #expect(relativeError(try y.floats(), expected) < tolerance, "\(layout) \(mode)")
            let op = try linear(x, layer.weight, bias: b, options: LinearOptions(floatInput: mode)).dequantized()
            #expect(try y.floats() == op.floats(), "the layer is the op")
            #expect(layer.byteCount < dense.byteCount / 3)
            #expect(throws: TensorError.self) { try layer.quantize(layout: layout) }
        }
        #expect(throws: TensorError.self) { try Linear(weight: w, bias: try random([95], seed: 4)) }
        #expect(throws: TensorError.self) { try Linear(weight: try random([4], seed: 5)) }
    }

    @Test("Linear.sharedInput: one quantization for W8A8 layers that agree, the same bits as each on x")
    func sharedInput() throws {
        let x = try random([3, 11, 256], seed: 6)
        let dense = try (0..<3).map { try Linear(weight: random([64 + 32 * $0, 256], seed: 7 + UInt64($0)),
                                                 bias: random([64 + 32 * $0], seed: 10 + UInt64($0))) }
        func quantized(_ layout: any QuantizedLayout, _ mode: LinearOptions.FloatInputMode = .quantizeInput)
            throws -> [Linear] {
            try dense.map { var layer = $0; try layer.quantize(layout: layout, floatInput: mode); return layer }
        }
        let int8 = try quantized(try BlockWiseINT8Layout.weight(blockSize: 128))
        let fp8 = try quantized(TensorCoreFP8Layout.dynamic)
        for layers in [int8, fp8] {
            let input = try Linear.sharedInput(x, for: layers)
            #expect(input.quantizedTensor != nil && input.shape == x.shape)
            for layer in layers {
                let shared = try withoutFallback { try layer(input) }
                #expect(try shared.floats().map(\.bitPattern) == layer(x).floats().map(\.bitPattern))
                #expect(shared.dtype == x.dtype)
            }
        }
        // Layers that would not quantize x the same way get x back.
        let block64 = try quantized(try BlockWiseINT8Layout.weight(blockSize: 64))
        let towardZero = try quantized(try BlockWiseINT8Layout.weight(blockSize: 128, rounding: .towardZero))
        let weightOnly = try quantized(try BlockWiseINT8Layout.weight(blockSize: 128), .dequantizeWeight)
        for layers in [[int8[0], block64[1]], [int8[0], towardZero[1]], [int8[0], fp8[1]], [int8[0], weightOnly[1]],
                       [int8[0], dense[1]], dense, []] {
            #expect(try Linear.sharedInput(x, for: layers).denseTensor != nil)
        }
    }

    @Test("quantizeEmbeddings: row-wise tables, lookups equal the dequantized table's rows, bytes, moves")
    func quantizeEmbeddings() throws {
        let wordTable = try random([1000, 384], seed: 50)
        var model = TinyEmbeddings(word: try Embedding(table: wordTable),
                                   position: try Embedding(table: random([64, 384], seed: 51)))
        #expect(model.embeddingLayers.map(\.name) == ["word", "position"])
        #expect(model.tensors.map(\.name) == ["word.weight", "position.weight"])
        let before = model.parameterByteCount
        let square = #expect(throws: TensorError.self) {
            try model.quantizeEmbeddings(layout: try BlockWiseINT8Layout.weight(blockSize: 128))
        }
        #expect(square?.code == .invalidArgument && square?.message.contains("`word`") == true)
        #expect(!model.word.isQuantized)
        let report = try model.quantizeEmbeddings(layout: try BlockWiseINT8Layout.activation(blockSize: 128),
                                                  exclude: [try LayerPattern("position")])
        #expect(report.quantized.map(\.name) == ["word"] && report.skipped.map(\.name) == ["position"])
        #expect(report.description.hasPrefix("1 embedding tables quantized"))
        #expect(model.word.isQuantized && !model.position.isQuantized)
        // The quantized table is no longer a dense tensor of the walk, but its bytes still count.
        #expect(model.tensors.map(\.name) == ["position.weight"])
        #expect(model.parameterByteCount == before - 1000 * 384 * 4 + model.word.byteCount)
        #expect(model.word.byteCount < 1000 * 384 * 4 * 3 / 10)
        let ids = try Tensor(elements: [Int32](arrayLiteral: 999, 0, 7, 7), shape: [2, 2])
        let rows = try FallbackPolicy.withPolicy(.fail) { try model.word(ids) }
        let table = try #require(model.word.table.quantizedTensor)
        #expect(try rows.floats() == embedding(try table.dequantize(), indices: ids).floats())
        let again = try model.quantizeEmbeddings(layout: TensorCoreFP8Layout.dynamic)
        #expect(again.quantized.map(\.name) == ["position"] && again.skipped.first?.reason == "already quantized")
        let moved = try model.moved(to: .cpu)
        #expect(moved.parameterByteCount == model.parameterByteCount)
        #expect(throws: TensorError.self) { try model.word.quantize(layout: TensorCoreFP8Layout.dynamic) }
    }

    @Test("quantizeLinears walks names, honours include/exclude, reports what it did, leaves norms dense")
    func quantizeWithPatterns() throws {
        var model = try tinyModel()
        #expect(model.linears.map(\.name) == ["blocks.0.ffn.up", "blocks.0.ffn.down", "blocks.1.ffn.up",
                                              "blocks.1.ffn.down"])
        #expect(model.tensors.map(\.name) == ["blocks.0.norm.weight", "blocks.0.norm.bias", "blocks.1.norm.weight",
                                              "blocks.1.norm.bias"])
        let before = model.parameterByteCount
        let report = try model.quantizeLinears(layout: try BlockWiseINT8Layout.weight(blockSize: 128),
                                               floatInput: .dequantizeWeight,
                                               include: [try LayerPattern("blocks.*")],
                                               exclude: [try LayerPattern("re:\\.1\\.ffn\\.down$")])
        #expect(report.quantized.map(\.name) == ["blocks.0.ffn.up", "blocks.0.ffn.down", "blocks.1.ffn.up"])
        #expect(report.skipped.map(\.name) == ["blocks.1.ffn.down"])
        #expect(report.quantized.allSatisfy { $0.bytesAfter < $0.bytesBefore })
        #expect(model.linears.map(\.layer.isQuantized) == [true, true, true, false])
        #expect(model.linears.prefix(3).allSatisfy { $0.layer.floatInput == .dequantizeWeight })
        #expect(model.tensors.allSatisfy { $0.tensor.dtype == .float32 })
        #expect(model.parameterByteCount < before)
        // A second pass keeps the quantized layers and says so.
        let again = try model.quantizeLinears(layout: TensorCoreFP8Layout.dynamic)
        #expect(again.quantized.map(\.name) == ["blocks.1.ffn.down"])
        #expect(again.skipped.count == 3 && again.skipped.allSatisfy { $0.reason.hasPrefix("already quantized") })
        let moved = try model.moved(to: .cpu)
        #expect(moved.parameterByteCount == model.parameterByteCount)
    }

    @Test("ModelWeights: I64 position ids are skipped, ComfyUI-quantized layers load quantized, float ones dense")
    func loadCheckpoint() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qlnn-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("model.safetensors").path
        // A Hugging Face style file: F32 layers plus an I64 `position_ids` buffer.
        let positions = (0..<16).map(Int64.init)
        let q = try random([64, 32], seed: 7)
        let writer = try SafetensorsWriter(path: path, tensors: [
            .init(name: "embeddings.position_ids", dtype: .int64, shape: [1, 16]),
            .init(name: "layer.q.weight", dtype: .float32, shape: [64, 32]),
            .init(name: "layer.q.bias", dtype: .float32, shape: [64]),
            .init(name: "norm.weight", dtype: .float32, shape: [32]),
        ])
        try positions.withUnsafeBytes { try writer.write("embeddings.position_ids", bytes: $0) }
        try writer.write("layer.q.weight", tensor: q)
        try writer.write("layer.q.bias", tensor: try random([64], seed: 8))
        try writer.write("norm.weight", tensor: try random([32], seed: 9))
        try writer.finish()

        let weights = try ModelWeights(contentsOf: path)
        #expect(weights.skipped == ["embeddings.position_ids"])
        let dense = try Linear(weights, prefix: "layer.q")
        #expect(!dense.isQuantized && dense.bias?.shape == [64])
        let error = #expect(throws: TensorError.self) { try Linear(weights, prefix: "layer.k") }
        #expect(error?.message.contains("layer.k.weight") == true)

        // The same layer converted to ComfyUI's int8_blockwise loads as a quantized Linear.
        let quantizedPath = directory.appendingPathComponent("int8.safetensors").path
        var checkpoint = weights.checkpoint
        checkpoint["layer.q.weight"] = .quantized(try QuantizedTensor.fromFloat(
            q, layout: try BlockWiseINT8Layout.weight(blockSize: 32)))
        try checkpoint.write(to: quantizedPath)
        let quantized = try Linear(try ModelWeights(contentsOf: quantizedPath), prefix: "layer.q")
        #expect(quantized.isQuantized)
        #expect(quantized.weight.quantizedTensor?.layout.isEqual(to: try BlockWiseINT8Layout.weight(blockSize: 32))
            == true)
        let x = try random([3, 32], seed: 10)
        #expect(relativeError(try withoutFallback { try quantized(x) }.floats(), try dense(x).floats()) < 2e-2)
    }
}

func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    var difference = 0.0, norm = 0.0
    for (x, y) in zip(a, b) {
        difference += (Double(x) - Double(y)) * (Double(x) - Double(y))
        norm += Double(y) * Double(y)
    }
    return (difference / max(norm, 1e-300)).squareRoot()
}

func withoutFallback<R>(_ body: () throws -> R) throws -> R { try FallbackPolicy.withPolicy(.fail, body) }
