import Foundation
import QuantizedLinear
import Testing

/// Shapes and block sizes at the edge of `Int`: each is a thrown ``TensorError`` or a correct result,
/// never a trap (issue 12, items 1-3).
@Suite struct ShapeOverflowTests {
    static let huge = 1 << 40

    @Test("zero-element shapes whose strides overflow", arguments: [
        [0, 1 << 40, 1 << 40], [1 << 40, 1 << 40, 0], [0, Int.max, 2], [0, 1 << 62, 4],
    ])
    func zeroElementShapeWithOverflowingStrides(shape: [Int]) throws {
        let error = #expect(throws: TensorError.self) { try Tensor(zeros: shape) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("too large") == true)
        #expect(throws: TensorError.self) { try Tensor([], shape: shape) }
        #expect(throws: TensorError.self) { try Tensor.contiguousStrides(for: shape) }
        #expect(throws: TensorError.self) { try Tensor(zeros: [0]).reshaped(shape) }
    }

    @Test func shapeArithmeticIsChecked() throws {
        #expect(try ShapeArithmetic.contiguousStrides([0, 3, 4]) == [12, 4, 1])
        #expect(try ShapeArithmetic.elementCount([0, Self.huge, Self.huge]) == 0)
        #expect(throws: TensorError.self) { try ShapeArithmetic.elementCount([Self.huge, Self.huge, 0]) }
        #expect(throws: TensorError.self) { try ShapeArithmetic.byteCount([1 << 62], elementSize: 4) }
        #expect(ShapeArithmetic.ceilDiv(Int.max, 1 << 16) == Int.max / (1 << 16) + 1)
        #expect(ShapeArithmetic.ceilDiv(0, 7) == 0 && ShapeArithmetic.ceilDiv(14, 7) == 2)
        #expect(throws: TensorError.self) { try Tensor(zeros: [4]).reshaped([-1, Self.huge, Self.huge]) }
    }

    /// A file holding `[0, 2^40, 2^40]` (valid for the official reader): inspecting and exporting it work,
    /// asking for it as a tensor is an error that names it.
    @Test func checkpointWithAZeroElementHugeTensor() throws {
        let scratch = try CheckpointScratch()
        let input = scratch.path("huge.safetensors")
        let header = #"{"e":{"dtype":"F32","shape":[0,1099511627776,1099511627776],"data_offsets":[0,0]},"#
            + #""x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        try writeFile(safetensorsBytes(header: header, data: littleEndianBytes([1, 2])), to: input)
        let file = try SafetensorsFile(path: input)
        #expect(file.entry("e")?.shape == [0, Self.huge, Self.huge])
        expectCheckpointError(.invalidArgument, mentioning: [input, "`e`", "too large"]) { _ = try file.tensor("e") }
        expectCheckpointError(.invalidArgument, mentioning: [input, "`e`"]) {
            _ = try ComfyCheckpoint(contentsOf: input)
        }
        let output = scratch.path("out.safetensors")
        try CheckpointExporter.export(input: input, output: output, dtype: .float32)
        let exported = try SafetensorsFile(path: output)
        #expect(exported.entry("e")?.shape == [0, Self.huge, Self.huge])
        #expect(try exported.tensor("x").floats() == [1, 2])
        let converted = scratch.path("converted.safetensors")
        try CheckpointConverter.convert(input: input, output: converted)
        #expect(try SafetensorsFile(path: converted).entry("e")?.byteCount == 0)
    }

    @Test("block sizes past the layout's limit", arguments: [
        (1 << 62, 1 << 62), (Int.max, Int.max), (1, Int.max), (Int.max, 1), (65537, 1), (1, 1 << 24),
    ])
    func hugeBlockSizes(rows: Int, columns: Int) {
        let error = #expect(throws: TensorError.self) { try BlockWiseINT8Layout(blockRows: rows, blockColumns: columns) }
        #expect(error?.code == .invalidBlockSize)
        #expect(error?.message.contains("65536") == true)
        if rows == columns {
            #expect(throws: TensorError.self) { try BlockWiseINT8Layout.weight(blockSize: rows) }
        }
        if rows == 1 {
            #expect(throws: TensorError.self) { try BlockWiseINT8Layout.activation(blockSize: columns) }
        }
    }

    /// The largest allowed block works end to end: quantize, scale shape, W8A8 linear, dequantize.
    @Test func largestBlockSizeWorks() throws {
        let limit = BlockWiseINT8Layout.maximumBlockDimension
        let layout = try BlockWiseINT8Layout.weight(blockSize: limit)
        #expect(layout.scaleShape(for: [3, Int.max]) == [1, Int.max / limit + 1])
        let w = try Tensor.randomNormal([3, 40], seed: 1)
        let q = try QuantizedTensor.fromFloat(w, layout: layout)
        #expect(q.scale.shape == [1, 1])
        let x = try Tensor.randomNormal([2, 40], seed: 2)
        let qx = try QuantizedTensor.fromFloat(x, layout: BlockWiseINT8Layout.activation(blockSize: limit))
        let y: [Float] = try linear(qx, q).dequantized().floats()
        let expected: [Float] = try matmul(qx.dequantize(), q.dequantize().transposed()).dequantized().floats()
        for (a, b) in zip(y, expected) { #expect(abs(a - b) <= 1e-5 * max(Float(1), abs(b))) }
    }

    /// `convert --block-size` past the limit is refused before any file is touched, with the reader's limit,
    /// so the converter never writes a file its own reader refuses.
    @Test(arguments: [16_777_217, 65537, 1 << 62])
    func converterRefusesBlockSizesTheReaderRefuses(blockSize: Int) throws {
        let scratch = try CheckpointScratch()
        let input = scratch.path("model.safetensors")
        _ = try CheckpointConverterTests.writeModel(to: input)
        let output = scratch.path("out.safetensors")
        let options = ConversionOptions(format: .int8Blockwise(groupSize: blockSize))
        let error = #expect(throws: TensorError.self) {
            try CheckpointConverter.convert(input: input, output: output, options: options)
        }
        #expect(error?.code == .invalidBlockSize)
        #expect(error?.message.contains(String(ComfyQuantFormat.maximumGroupSize)) == true)
        #expect(try scratch.contents() == ["model.safetensors"])
        #expect(ComfyQuantFormat.maximumGroupSize == BlockWiseINT8Layout.maximumBlockDimension)
    }

    /// At the limit the converter's file is read back by the reader.
    @Test func converterAtTheLimitWritesAReadableFile() throws {
        let scratch = try CheckpointScratch()
        let input = scratch.path("model.safetensors")
        _ = try CheckpointConverterTests.writeModel(to: input)
        let output = scratch.path("out.safetensors")
        let options = ConversionOptions(format: .int8Blockwise(groupSize: ComfyQuantFormat.maximumGroupSize))
        try CheckpointConverter.convert(input: input, output: output, options: options)
        let reader = try ComfyCheckpointReader(path: output)
        #expect(reader.formats["model.diffusion_model.blocks.0.attn.q"]
            == .int8Blockwise(groupSize: ComfyQuantFormat.maximumGroupSize))
    }
}
