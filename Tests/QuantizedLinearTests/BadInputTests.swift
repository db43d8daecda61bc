import QuantizedLinear
import Testing

@Suite("Bad input: every case is a thrown TensorError that says what is wrong")
struct BadInputTests {
    @Test("block sizes that are not positive", arguments: [0, -1, -128])
    func badBlockSize(size: Int) {
        let error = #expect(throws: TensorError.self) { try BlockWiseINT8Layout.weight(blockSize: size) }
        #expect(error?.code == .invalidBlockSize)
        #expect(error?.message.contains("outside 1...65536") == true)
        #expect(throws: TensorError.self) { try BlockWiseINT8Layout(blockRows: 1, blockColumns: size) }
    }

    @Test("NaN or infinity in a tensor being quantized", arguments: [Float.nan, .infinity, -.infinity])
    func nonFinite(value: Float) throws {
        let x = try Tensor([1, 2, value, 4], shape: [2, 2])
        let layouts: [any QuantizedLayout] = [try BlockWiseINT8Layout.weight(blockSize: 2), TensorCoreFP8Layout.dynamic]
        for layout in layouts {
            let error = #expect(throws: TensorError.self) { try QuantizedTensor.fromFloat(x, layout: layout) }
            #expect(error?.code == .nonFiniteValue)
            #expect(error?.message.contains("element 2") == true)
        }
    }

    @Test("quantizing an integer tensor")
    func integerInput() throws {
        let x = try Tensor(elements: [Int32](repeating: 3, count: 4), shape: [2, 2])
        let error = #expect(throws: TensorError.self) {
            try QuantizedTensor.fromFloat(x, layout: BlockWiseINT8Layout.weight())
        }
        #expect(error?.code == .unsupportedDType)
    }

    @Test("an FP8 fixed scale that is not positive and finite", arguments: [Float(0), -1, .nan, .infinity])
    func badFixedScale(scale: Float) {
        let error = #expect(throws: TensorError.self) { try TensorCoreFP8Layout(fixedScale: scale) }
        #expect(error?.code == .invalidArgument)
    }

    @Test("linear with mismatched K, a wrong bias shape, or a non-2-D weight")
    func linearShapes() throws {
        let w = try QuantizedTensor.fromFloat(try TestData.tensor([8, 32], seed: 1),
            layout: BlockWiseINT8Layout.weight(blockSize: 16))
        let x = try TestData.tensor([4, 31], seed: 2)
        try withoutFallback {
            let k = #expect(throws: TensorError.self) { try linear(x, w) }
            #expect(k?.code == .shapeMismatch)
            let bias = #expect(throws: TensorError.self) {
                try linear(try TestData.tensor([4, 32], seed: 3), w, bias: try TestData.tensor([7], seed: 4))
            }
            #expect(bias?.code == .shapeMismatch)
            let w3 = try QuantizedTensor.fromFloat(try TestData.tensor([2, 8, 32], seed: 5),
                                                   layout: BlockWiseINT8Layout.weight(blockSize: 16))
            let rank = #expect(throws: TensorError.self) { try linear(try TestData.tensor([4, 32], seed: 6), w3) }
            #expect(rank?.code == .shapeMismatch)
        }
    }

    @Test("assembling a quantized tensor from parts that do not fit the layout")
    func badParts() throws {
        let layout = try BlockWiseINT8Layout.weight(blockSize: 128)
        let codes = try Tensor(elements: [Int8](repeating: 1, count: 256 * 130), shape: [256, 130])
        let wrongScale = try Tensor([Float](repeating: 1, count: 2), shape: [2, 1])
        let error = #expect(throws: TensorError.self) {
            try QuantizedTensor(layout: layout, data: codes, scale: wrongScale, shape: [256, 130],
                                originalDType: .bfloat16)
        }
        #expect(error?.code == .shapeMismatch)
        #expect(error?.message.contains("[2, 2]") == true)
        let floatCodes = try Tensor([Float](repeating: 1, count: 4), shape: [2, 2])
        #expect(throws: TensorError.self) {
            try QuantizedTensor(layout: TensorCoreFP8Layout.dynamic, data: floatCodes,
                                scale: try Tensor([1], shape: [1]), shape: [2, 2], originalDType: .float32)
        }
    }

    @Test("weight update with a delta of the wrong shape")
    func badDelta() throws {
        let w = try QuantizedTensor.fromFloat(try TestData.tensor([8, 16], seed: 1),
            layout: BlockWiseINT8Layout.weight(blockSize: 8))
        let error = #expect(throws: TensorError.self) {
            try withoutFallback { try applyWeightUpdate(w, delta: try TestData.tensor([16, 8], seed: 2)) }
        }
        #expect(error?.code == .shapeMismatch)
    }

    @Test("moving to a device with no backend names the problem")
    func noBackend() throws {
        let error = #expect(throws: TensorError.self) { try Tensor(zeros: [2], device: .cuda(7)).floats() }
        #expect(error?.code == .deviceUnavailable || error?.code == .backendFailure)
    }
}
