import QuantizedLinear
import Testing

@Suite("Quantizers: exact codes and scales on hand-computed vectors")
struct QuantizerTests {
    // K = 10 with B = 4: blocks of 4, 4 and a partial block of 2 (all zeros: scale 0).
    // Blocks 1 and 2 have amax 127, so their scale is exactly 1 and x / scale = x: the .5 cases
    // are true ties.
    static let activationRow: [Float] = [127, 2.5, 3.5, -3.5, 127, 0.7, -0.7, -126.5, 0, 0]

    @Test("INT8 activation blocks, nearest-even rounding")
    func int8NearestEven() throws {
        let x = try Tensor(Self.activationRow, shape: [1, 10])
        let q = try QuantizedTensor.fromFloat(x, layout: BlockWiseINT8Layout.activation(blockSize: 4))
        #expect(try q.data.elements(as: Int8.self) == [127, 2, 4, -4, 127, 1, -1, -126, 0, 0])
        #expect(try q.scale.floats() == [1, 1, 0])
        #expect(q.scale.shape == [1, 3])
    }

    @Test("INT8 activation blocks, toward-zero rounding (ComfyUI's reference)")
    func int8TowardZero() throws {
        let x = try Tensor(Self.activationRow, shape: [1, 10])
        let layout = try BlockWiseINT8Layout.activation(blockSize: 4, rounding: .towardZero)
        let q = try QuantizedTensor.fromFloat(x, layout: layout)
        #expect(try q.data.elements(as: Int8.self) == [127, 2, 3, -3, 127, 0, 0, -126, 0, 0])
        #expect(try q.scale.floats() == [1, 1, 0])
    }

    @Test("INT8 weight blocks B x B with a partial edge block")
    func int8WeightBlocks() throws {
        // 2 x 3 with B = 2: block (0,0) is columns 0-1 (amax 127, scale 1), block (0,1) is
        // column 2 (amax 1.5, scale 1.5/127).
        let w = try Tensor([127, -2.5, 0.5, 3.5, 0, -1.5], shape: [2, 3])
        let q = try QuantizedTensor.fromFloat(w, layout: BlockWiseINT8Layout.weight(blockSize: 2))
        #expect(try q.data.elements(as: Int8.self) == [127, -2, 42, 4, 0, -127])
        #expect(q.scale.shape == [1, 2])
        #expect(try q.scale.floats() == [1, Float(1.5) / 127])
        let truncated = try QuantizedTensor.fromFloat(
            w, layout: BlockWiseINT8Layout.weight(blockSize: 2, rounding: .towardZero))
        #expect(try truncated.data.elements(as: Int8.self) == [127, -2, 42, 3, 0, -127])
    }

    @Test("INT8 codes never reach -128 and all-zero blocks dequantize to exact zeros")
    func int8Range() throws {
        // Rows 2-3 form two all-zero 2 x 2 blocks.
        let values: [Float] = [-5, 5, -5, 0, 0, 0, 0, 0] + [Float](repeating: 0, count: 8)
        let x = try Tensor(values, shape: [4, 4])
        let q = try QuantizedTensor.fromFloat(x, layout: BlockWiseINT8Layout.weight(blockSize: 2))
        #expect(try q.data.elements(as: Int8.self).min() == -127)
        let back = try q.dequantize().floats()
        #expect(back == values)
        #expect(try q.scale.floats() == [5, 5, 0, 0].map { $0 / 127 })
    }

    @Test("scale grids follow the block shape", arguments: [
        ([300, 200], 128, 128, [3, 2]),
        ([2, 3, 300], 1, 64, [2, 3, 5]),
        ([300], 1, 128, [3]),
        ([4, 5, 7], 3, 2, [4, 2, 4]),
    ])
    func scaleShapes(shape: [Int], rows: Int, columns: Int, expected: [Int]) throws {
        let layout = try BlockWiseINT8Layout(blockRows: rows, blockColumns: columns)
        #expect(layout.scaleShape(for: shape) == expected)
        let q = try QuantizedTensor.fromFloat(try TestData.tensor(shape, seed: 1), layout: layout)
        #expect(q.scale.shape == expected)
    }

    @Test("FP8 per-tensor scale, saturation and nearest-even codes")
    func fp8Codes() throws {
        let x = try Tensor([896, -224, 1, 0], shape: [4])
        let q = try QuantizedTensor.fromFloat(x, layout: TensorCoreFP8Layout.dynamic)
        #expect(try q.scale.floats() == [2])
        #expect(try q.data.elements(as: Float8E4M3FN.self).map(\.bitPattern) == [0x7E, 0xEE, 0x30, 0x00])
        #expect(try q.dequantize().floats() == [896, -224, 1, 0])
    }

    @Test("FP8 with a fixed scale saturates values beyond 448 x scale")
    func fp8FixedScale() throws {
        let x = try Tensor([1000, -1000, 2], shape: [3])
        let q = try QuantizedTensor.fromFloat(x, layout: TensorCoreFP8Layout(fixedScale: 1))
        #expect(try q.dequantize().floats() == [448, -448, 2])
    }

    @Test("an all-zero FP8 tensor gets scale 1, not NaN (reference defect 6)")
    func fp8AllZero() throws {
        let q = try QuantizedTensor.fromFloat(try Tensor(zeros: [3, 5]), layout: TensorCoreFP8Layout.dynamic)
        #expect(try q.scale.floats() == [1])
        #expect(try q.dequantize().floats().allSatisfy { $0 == 0 })
    }

    @Test("dequantize returns the original dtype, or the one asked for",
          arguments: [DType.float32, .float16, .bfloat16])
    func dequantizeDTypes(dtype: DType) throws {
        let x = try TestData.tensor([3, 40], dtype: dtype, seed: 2)
        for layout in [try BlockWiseINT8Layout.weight(blockSize: 16) as any QuantizedLayout,
                       TensorCoreFP8Layout.dynamic] {
            let q = try QuantizedTensor.fromFloat(x, layout: layout)
            #expect(q.originalDType == dtype)
            #expect(try q.dequantize().dtype == dtype)
            #expect(try q.dequantize(to: .float32).dtype == .float32)
        }
    }
}
