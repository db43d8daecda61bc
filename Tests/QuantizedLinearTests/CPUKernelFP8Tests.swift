import QuantizedLinear
import Testing

@Suite("CPU kernels: per-tensor FP8")
struct CPUKernelFP8Tests {
    @Test("quantize is bit-identical to the reference: dynamic, fixed (saturating) and all-zero")
    func quantizeMatchesReference() throws {
        try CPUKernelCheck.onEveryPath { path in
            for (index, shape) in [[7], [3, 130], [2, 17, 33], [300, 257]].enumerated() {
                var values = try CPUKernelCheck.values(shape, seed: UInt64(40 + index))
                // Subnormal codes and exact halfway points of the e4m3 grid.
                if values.count > 8 { values[1] = 1e-6; values[2] = -3e-5; values[3] = 0.0 * -1; values[4] = 1e-9 }
                for fixedScale in [nil, Float(0.01), Float(3)] {
                    let layout = try TensorCoreFP8Layout(fixedScale: fixedScale)
                    let q = try QuantizedTensor.fromFloat(try Tensor(values, shape: shape), layout: layout)
                    let expected = try values.withUnsafeBufferPointer {
                        try FP8Reference.quantize($0, shape: shape, fixedScale: fixedScale)
                    }
                    #expect(try q.data.elements(as: Float8E4M3FN.self).map(\.bitPattern)
                        == expected.codes.map(\.bitPattern), "\(path) \(shape) scale \(String(describing: fixedScale))")
                    #expect(try q.scale.floats()[0].bitPattern == expected.scale.bitPattern)
                }
            }
            let zeros = try QuantizedTensor.fromFloat(try Tensor(zeros: [4, 40]), layout: TensorCoreFP8Layout.dynamic)
            #expect(try zeros.scale.floats() == [1], "\(path)")
            #expect(try zeros.dequantize().floats().allSatisfy { $0 == 0 }, "\(path)")
        }
    }

    @Test("quantize encodes every e4m3 value and every midpoint between neighbours like the reference")
    func quantizeGrid() throws {
        let finite = (0..<256).map { Float8E4M3FN(bitPattern: UInt8($0)).floatValue }.filter(\.isFinite)
        let sorted = Array(Set(finite.map { abs($0) })).sorted()
        let midpoints = zip(sorted, sorted.dropFirst()).map { ($0 + $1) / 2 }
        let values = finite + midpoints + midpoints.map { -$0 } + [448, -448, 1e-3]
        try CPUKernelCheck.onEveryPath { path in
            let layout = try TensorCoreFP8Layout(fixedScale: 1)
            let q = try QuantizedTensor.fromFloat(try Tensor(values, shape: [values.count]), layout: layout)
            let expected = values.map { Float8E4M3FN(min(max($0, -448), 448)).bitPattern }
            #expect(try q.data.elements(as: Float8E4M3FN.self).map(\.bitPattern) == expected, "\(path)")
        }
    }

    @Test("quantize refuses NaN and infinity")
    func quantizeRefusesNonFinite() throws {
        try CPUKernelCheck.onEveryPath { _ in
            for bad in [Float.nan, .infinity] {
                var values = [Float](repeating: 1, count: 1000)
                values[777] = bad
                #expect(throws: TensorError.self) {
                    _ = try QuantizedTensor.fromFloat(try Tensor(values, shape: [10, 100]),
                                                      layout: TensorCoreFP8Layout.dynamic)
                }
            }
        }
    }

    @Test("dequantize decodes all 256 codes like the reference, in float32, float16 and bfloat16")
    func dequantizeMatchesReference() throws {
        let codes = (0..<1000).map { Float8E4M3FN(bitPattern: UInt8($0 % 256)) }
        try CPUKernelCheck.onEveryPath { path in
            for scale in [Float(1), 0.37, 1e-30] {
                let q = try QuantizedTensor(layout: TensorCoreFP8Layout.dynamic,
                                            data: try Tensor(elements: codes, shape: [10, 100]),
                                            scale: try Tensor([scale], shape: []), shape: [10, 100],
                                            originalDType: .float32)
                let reference = FP8Reference.dequantize(codes, scale: scale)
                for dtype in [DType.float32, .float16, .bfloat16] {
                    let fast = try q.dequantize(to: dtype).floats()
                    let expected = try Tensor(reference, shape: [10, 100], dtype: dtype).floats()
                    #expect(zip(fast, expected).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) },
                            "\(path) scale \(scale) \(dtype)")
                }
            }
        }
    }

    static let linearShapes: [([Int], Int)] = [
        ([1, 300], 45), ([3, 129], 70), ([2, 7, 99], 21), ([17, 257], 37), ([2, 9, 200], 70), ([40, 96], 33),
        ([2, 2, 2, 50], 19),
    ]

    @Test("W8A8 linear matches the reference for every output dtype, with and without bias")
    func w8a8MatchesReference() throws {
        try CPUKernelCheck.onEveryPath { path in
            for (index, (inputShape, n)) in Self.linearShapes.enumerated() {
                let k = inputShape.last!
                let m = inputShape.dropLast().reduce(1, *)
                let seed = UInt64(60 + index * 3)
                let x = try Tensor(try CPUKernelCheck.values(inputShape, seed: seed), shape: inputShape)
                let w = try QuantizedTensor.fromFloat(try Tensor(try CPUKernelCheck.values([n, k], seed: seed + 1),
                                                                 shape: [n, k]), layout: TensorCoreFP8Layout.dynamic)
                let bias = try Tensor.randomNormal([n], seed: seed + 2)
                for withBias in [false, true] {
                    for dtype in [DType.float32, .float16, .bfloat16] {
                        let input = try x.converted(to: dtype)
                        let qx = try QuantizedTensor.fromFloat(input, layout: TensorCoreFP8Layout.dynamic)
                        let expected = FP8Reference.linear(
                            inputCodes: try qx.data.elements(as: Float8E4M3FN.self),
                            inputScale: try qx.scale.floats()[0], m: m, k: k,
                            weightCodes: try w.data.elements(as: Float8E4M3FN.self),
                            weightScale: try w.scale.floats()[0], n: n, bias: withBias ? try bias.floats() : nil)
                        let y = try linear(input, w, bias: withBias ? bias : nil).dequantized()
                        #expect(y.dtype == dtype && y.shape == Array(inputShape.dropLast()) + [n])
                        #expect(CPUKernelCheck.relativeError(try y.floats(), expected)
                            <= CPUKernelCheck.tolerance(dtype),
                            "\(path) \(inputShape) N=\(n) \(dtype) bias=\(withBias)")
                        let fromQuantized = try linear(qx, w, bias: withBias ? bias : nil).dequantized()
                        #expect(CPUKernelCheck.relativeError(try fromQuantized.floats(), expected)
                            <= CPUKernelCheck.tolerance(dtype), "\(path) \(inputShape) quantized input")
                    }
                }
            }
        }
    }

    @Test("weight-only linear matches dequantize-then-float32")
    func weightOnlyMatchesReference() throws {
        try CPUKernelCheck.onEveryPath { path in
            for (index, (inputShape, n)) in Self.linearShapes.enumerated() {
                let k = inputShape.last!
                let seed = UInt64(80 + index * 3)
                let x = try Tensor(try CPUKernelCheck.values(inputShape, seed: seed), shape: inputShape)
                let w = try QuantizedTensor.fromFloat(try Tensor(try CPUKernelCheck.values([n, k], seed: seed + 1),
                                                                 shape: [n, k]), layout: TensorCoreFP8Layout.dynamic)
                let dense = try Tensor(FP8Reference.dequantize(try w.data.elements(as: Float8E4M3FN.self),
                                                               scale: try w.scale.floats()[0]), shape: [n, k])
                let bias = try Tensor.randomNormal([n], seed: seed + 2)
                for withBias in [false, true] {
                    for dtype in [DType.float32, .float16, .bfloat16] {
                        let input = try x.converted(to: dtype)
                        let expected = try DenseOps.linear(input, dense, bias: withBias ? bias : nil).floats()
                        let y = try linear(input, w, bias: withBias ? bias : nil,
                                           options: LinearOptions(floatInput: .dequantizeWeight)).dequantized()
                        #expect(y.dtype == dtype)
                        #expect(CPUKernelCheck.relativeError(try y.floats(), expected)
                            <= CPUKernelCheck.tolerance(dtype), "\(path) \(inputShape) N=\(n) \(dtype)")
                    }
                }
            }
        }
    }
}
