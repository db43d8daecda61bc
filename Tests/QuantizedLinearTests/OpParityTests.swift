import QuantizedLinear
import Testing

/// The layouts under test, with their parameters.
enum LayoutUnderTest: Sendable, CustomTestStringConvertible {
    case int8(block: Int, rounding: Rounding)
    case fp8

    var weightLayout: any QuantizedLayout {
        switch self {
        case .int8(let block, let rounding): try! BlockWiseINT8Layout.weight(blockSize: block, rounding: rounding)
        case .fp8: TensorCoreFP8Layout.dynamic
        }
    }

    var activationLayout: any QuantizedLayout {
        switch self {
        case .int8(let block, let rounding): try! BlockWiseINT8Layout.activation(blockSize: block, rounding: rounding)
        case .fp8: TensorCoreFP8Layout.dynamic
        }
    }

    /// Bound on the relative L2 error of a W8A8 linear against float64, Gaussian-like data.
    /// Measured: INT8 nearest ~1.2e-2, toward zero ~2.3e-2, FP8 ~3.7e-2 (plus output rounding).
    var w8a8Tolerance: Double {
        switch self {
        case .int8(_, .nearestEven): 2.5e-2
        case .int8(_, .towardZero): 5e-2
        case .fp8: 6e-2
        }
    }

    /// Bound on the relative L2 error of one quantize-dequantize round trip.
    var roundTripTolerance: Double {
        switch self {
        case .int8(_, .nearestEven): 1.5e-2
        case .int8(_, .towardZero): 3e-2
        case .fp8: 4e-2
        }
    }

    var testDescription: String {
        switch self {
        case .int8(let block, let rounding): "int8 B=\(block) \(rounding.rawValue)"
        case .fp8: "fp8"
        }
    }
}

/// One linear case: layout x dtype x input shape (batch rank 0-3) x N x data x bias.
struct LinearCase: Sendable, CustomTestStringConvertible {
    let layout: LayoutUnderTest
    let dtype: DType
    let inputShape: [Int]
    let n: Int
    let data: TestData.Kind
    let bias: Bool

    var k: Int { inputShape.last! }
    var testDescription: String {
        "\(layout.testDescription) \(dtype) x\(inputShape) N=\(n) \(data.rawValue)\(bias ? " +bias" : "")"
    }

    /// Output rounding of the input dtype adds to the quantization error.
    var outputTolerance: Double {
        switch dtype {
        case .bfloat16: 8e-3
        case .float16: 1e-3
        default: 0
        }
    }

    /// W8A8 bound against float64. An outlier (100x) coarsens every block that holds one, and
    /// this data puts one in most blocks: measured up to 3.5x the Gaussian error for INT8.
    var w8a8Tolerance: Double {
        let outlierFactor: Double = if data == .outliers, case .int8 = layout { 4 } else { 1 }
        return layout.w8a8Tolerance * outlierFactor + outputTolerance
    }

    static let all: [LinearCase] = {
        let layouts: [LayoutUnderTest] = [.int8(block: 32, rounding: .nearestEven),
                                          .int8(block: 64, rounding: .towardZero),
                                          .int8(block: 128, rounding: .nearestEven),
                                          .int8(block: 256, rounding: .nearestEven),
                                          .int8(block: 48, rounding: .towardZero), .fp8]
        let shapes: [([Int], Int)] = [([300], 70), ([5, 260], 33), ([2, 3, 128], 130), ([2, 1, 3, 200], 64),
                                      ([1, 513], 17)]
        let dtypes: [DType] = [.float32, .bfloat16, .float16]
        var cases: [LinearCase] = []
        for (layoutIndex, layout) in layouts.enumerated() {
            for (shapeIndex, (shape, n)) in shapes.enumerated() {
                let dtype = dtypes[(layoutIndex + shapeIndex) % dtypes.count]
                let data = TestData.Kind.allCases[(layoutIndex * 2 + shapeIndex) % TestData.Kind.allCases.count]
                cases.append(LinearCase(layout: layout, dtype: dtype, inputShape: shape, n: n, data: data,
                                        bias: (layoutIndex + shapeIndex) % 2 == 0))
            }
        }
        return cases
    }()

    func makeOperands(seed: UInt64) throws -> (x: Tensor, w: Tensor, b: Tensor?) {
        let x = try TestData.tensor(inputShape, kind: data, dtype: dtype, seed: seed)
        let w = try TestData.tensor([n, k], kind: data == .zeroStripes ? .zeroStripes : .gaussian, dtype: dtype,
                                    scale: 1 / Float(k).squareRoot(), seed: seed + 1)
        let b = bias ? try TestData.tensor([n], dtype: dtype, seed: seed + 2) : nil
        return (x, w, b)
    }
}

@Suite("Op parity: each handler against the dequantize fallback and a float64 reference")
struct OpParityTests {
    @Test("linear, quantized input and weight (W8A8)", arguments: LinearCase.all)
    func linearW8A8(c: LinearCase) throws {
        let (x, w, b) = try c.makeOperands(seed: 10)
        let qx = try QuantizedTensor.fromFloat(x, layout: c.layout.activationLayout)
        let qw = try QuantizedTensor.fromFloat(w, layout: c.layout.weightLayout)
        let y = try withoutFallback { try linear(qx, qw, bias: b).dequantized() }
        #expect(y.shape == Array(c.inputShape.dropLast()) + [c.n])
        #expect(y.dtype == c.dtype)
        // Against the fallback on the same codes: only float32 summation order and output
        // rounding differ.
        let fallback = try DenseOps.linear(try qx.dequantize(to: .float32), try qw.dequantize(to: .float32),
                                           bias: b?.converted(to: .float32))
        #expect(relativeError(try y.floats(), try fallback.floats()) <= 1e-5 + c.outputTolerance)
        // Against float64 on the original data.
        let exact = try Reference64.linear(x, w, bias: b)
        #expect(relativeError(try y.floats(), exact) <= c.w8a8Tolerance)
    }

    @Test("linear, float input, both input modes", arguments: LinearCase.all.filter { $0.data != .tiny })
    func linearFloatInput(c: LinearCase) throws {
        let (x, w, b) = try c.makeOperands(seed: 20)
        let qw = try QuantizedTensor.fromFloat(w, layout: c.layout.weightLayout)
        let exact = try Reference64.linear(x, w, bias: b)
        let fallback = try DenseOps.linear(x, try qw.dequantize(to: .float32), bias: b)
        // Dynamic activation quantization: W8A8 error.
        let dynamic = try withoutFallback {
            try linear(x, qw, bias: b, options: LinearOptions(floatInput: .quantizeInput)).dequantized()
        }
        #expect(relativeError(try dynamic.floats(), exact) <= c.w8a8Tolerance)
        // Weight-only: the same function as the fallback.
        let weightOnly = try withoutFallback {
            try linear(x, qw, bias: b, options: LinearOptions(floatInput: .dequantizeWeight)).dequantized()
        }
        #expect(relativeError(try weightOnly.floats(), try fallback.floats()) <= 1e-5 + c.outputTolerance)
        #expect(relativeError(try weightOnly.floats(), exact) <= c.layout.roundTripTolerance + c.outputTolerance)
    }

    @Test("linear returning a quantized activation, chained into gelu and a second linear",
          arguments: [LayoutUnderTest.int8(block: 64, rounding: .nearestEven),
                      .int8(block: 128, rounding: .towardZero), .fp8])
    func quantizedChain(layout: LayoutUnderTest) throws {
        let x = try TestData.tensor([6, 200], dtype: .bfloat16, seed: 30)
        let w1 = try TestData.tensor([192, 200], scale: 0.07, seed: 31)
        let w2 = try TestData.tensor([50, 192], scale: 0.07, seed: 32)
        let q1 = try QuantizedTensor.fromFloat(w1, layout: layout.weightLayout)
        let q2 = try QuantizedTensor.fromFloat(w2, layout: layout.weightLayout)
        let (h, g, y) = try withoutFallback {
            let h = try linear(x, q1, options: LinearOptions(outputLayout: layout.activationLayout))
            let g = try gelu(h)
            let y = try linear(g, q2)
            return (h, g, y)
        }
        #expect(h.quantizedTensor != nil && g.quantizedTensor != nil && y.denseTensor != nil)
        #expect(h.quantizedTensor?.originalDType == .bfloat16)
        // float64 chain on the original weights.
        let hExact = try Reference64.linear(x, w1, bias: nil)
        let gExact = Reference64.gelu(hExact.map(Float.init), approximation: .none)
        let yExact = try Reference64.linear(try Tensor(gExact.map(Float.init), shape: [6, 192]), w2, bias: nil)
        #expect(relativeError(try y.dequantized().floats(), yExact) <= 3 * layout.w8a8Tolerance)
    }

    @Test("gelu on a quantized activation: fused handler vs its definition, the fallback and float64",
          arguments: [LayoutUnderTest.int8(block: 32, rounding: .nearestEven), .int8(block: 128, rounding: .towardZero),
                      .int8(block: 256, rounding: .nearestEven), .fp8],
          GeluApproximation.allCases)
    func geluParity(layout: LayoutUnderTest, approximation: GeluApproximation) throws {
        let x = try TestData.tensor([3, 4, 300], dtype: .bfloat16, seed: 40)
        let q = try QuantizedTensor.fromFloat(x, layout: layout.activationLayout)
        let result = try withoutFallback { try gelu(q, approximation: approximation) }
        let g = try #require(result.quantizedTensor, "gelu on a quantized activation returns a quantized tensor")
        #expect(g.shape == x.shape && g.originalDType == .bfloat16)
        if case .int8 = layout { #expect(g.layout.isEqual(to: q.layout)) }
        // The definition: dequantize, gelu in the requested form (reference defect 7: the flag is
        // honoured), re-quantize. A fast kernel may differ by one code where its erf/tanh differs
        // from libm's by an ulp at a rounding boundary.
        let dense = try DenseOps.gelu(try q.dequantize(to: .float32), approximation: approximation)
        let definition = try QuantizedTensor.fromFloat(try dense.converted(to: .bfloat16), layout: g.layout)
        let codes = try g.data.floats()
        let expectedCodes = try definition.data.floats()
        let differing = zip(codes, expectedCodes).filter { $0 != $1 }
        #expect(differing.count * 100 <= codes.count)
        if case .int8 = layout { #expect(differing.allSatisfy { abs($0 - $1) <= 1 }) }
        #expect(relativeError(try g.scale.floats(), try definition.scale.floats()) <= 1e-6)
        // Against the fallback (dense gelu of the dequantized input) and float64.
        #expect(relativeError(try g.dequantize().floats(), try dense.floats()) <= layout.roundTripTolerance)
        let exact = Reference64.gelu(try x.floats(), approximation: approximation)
        #expect(relativeError(try g.dequantize().floats(), exact) <= 2 * layout.roundTripTolerance)
    }

    @Test("fused CPU gelu on INT8 activations is bit-identical to dequantize, gelu, quantize",
          arguments: [(32, Rounding.nearestEven), (48, .towardZero), (128, .nearestEven), (256, .towardZero)],
          [([300], DType.float32), ([5, 200], .bfloat16), ([2, 3, 130], .float16)])
    func fusedGeluIsExact(block: (Int, Rounding), input: ([Int], DType)) throws {
        let x = try TestData.tensor(input.0, kind: .outliers, dtype: input.1, seed: 41)
        let layout = try BlockWiseINT8Layout.activation(blockSize: block.0, rounding: block.1)
        let q = try QuantizedTensor.fromFloat(x, layout: layout)
        for approximation in GeluApproximation.allCases {
            let g = try withoutFallback { try gelu(q, approximation: approximation).requireQuantized() }
            let dense = try DenseOps.gelu(try q.dequantize(to: .float32), approximation: approximation)
            let definition = try layout.quantize(try dense.converted(to: input.1))
            #expect(try g.data.elements(as: Int8.self) == definition.data.elements(as: Int8.self))
            #expect(try g.scale.floats() == definition.scale.floats())
            #expect(g.scale.shape == definition.scale.shape && g.originalDType == input.1)
        }
    }

    @Test("INT8 round trip error is within half a step (nearest) or one step (toward zero) per element",
          arguments: [(32, Rounding.nearestEven), (48, .towardZero), (128, .nearestEven), (256, .towardZero)],
          [TestData.Kind.gaussian, .outliers, .tiny, .zeroStripes])
    func int8ElementBound(block: (Int, Rounding), kind: TestData.Kind) throws {
        let x = try TestData.tensor([130, 300], kind: kind, seed: 91)
        let layout = try BlockWiseINT8Layout.weight(blockSize: block.0, rounding: block.1)
        let q = try QuantizedTensor.fromFloat(x, layout: layout)
        let original = try x.floats()
        let back = try q.dequantize().floats()
        let scales = try q.scale.floats()
        let columnBlocks = q.scale.shape[1]
        let step: Float = block.1 == .nearestEven ? 0.5 : 1
        for row in 0..<130 {
            for column in 0..<300 {
                let scale = scales[(row / block.0) * columnBlocks + column / block.0]
                let error = abs(original[row * 300 + column] - back[row * 300 + column])
                #expect(error <= step * scale * 1.0001 + Float.leastNonzeroMagnitude,
                        "element (\(row), \(column)): error \(error), scale \(scale)")
                if error > step * scale * 1.0001 + Float.leastNonzeroMagnitude { return }
            }
        }
    }

    @Test("FP8 round trip error is within half an e4m3 step of the scaled value",
          arguments: [TestData.Kind.gaussian, .outliers, .tiny, .zeroStripes])
    func fp8ElementBound(kind: TestData.Kind) throws {
        let x = try TestData.tensor([50, 300], kind: kind, seed: 92)
        let q = try QuantizedTensor.fromFloat(x, layout: TensorCoreFP8Layout.dynamic)
        let scale = try q.scale.floats()[0]
        for (value, decoded) in zip(try x.floats(), try q.dequantize().floats()) {
            let scaled = abs(value / scale)
            // Normal e4m3 values have 3 mantissa bits (half step = 2^-4 relative); subnormals a
            // fixed step of 2^-9.
            let bound = max(scaled * 0x1p-4, 0x1p-10) * scale * 1.0001
            #expect(abs(value - decoded) <= bound)
            if abs(value - decoded) > bound { return }
        }
    }

    @Test("transpose is exact: codes, scale grid and block shape", arguments: [16, 64, 128, 256])
    func transposeExact(block: Int) throws {
        let w = try TestData.tensor([300, 170], kind: .outliers, seed: 50)
        let q = try QuantizedTensor.fromFloat(w, layout: BlockWiseINT8Layout(blockRows: block, blockColumns: block / 2))
        let t = try withoutFallback { try transpose(q).requireQuantized() }
        let layout = try #require(t.layout as? BlockWiseINT8Layout)
        #expect(layout.blockRows == block / 2 && layout.blockColumns == block)
        #expect(t.shape == [170, 300])
        #expect(t.scale.shape == layout.scaleShape(for: [170, 300]))
        #expect(try t.dequantize().floats() == q.dequantize().transposed().floats())
        let back = try withoutFallback { try transpose(t).requireQuantized() }
        #expect(try back.dequantize().floats() == q.dequantize().floats())
    }

    @Test("transposed activation blocks (B x 1) are declined by linear and handled by the fallback")
    func transposedActivation() throws {
        let x = try TestData.tensor([96, 5], seed: 60)
        let qxT = try QuantizedTensor.fromFloat(x, layout: BlockWiseINT8Layout.activation(blockSize: 32))
        let qx = try transpose(qxT).requireQuantized()  // (5, 96) with 32 x 1 blocks
        let w = try QuantizedTensor.fromFloat(try TestData.tensor([8, 96], seed: 61),
            layout: BlockWiseINT8Layout.weight(blockSize: 32))
        #expect(throws: TensorError.self) { try withoutFallback { try linear(qx, w) } }
        let (y, events) = try withFallback { try linear(qx, w).dequantized() }
        #expect(events.count == 1)
        #expect(events.first?.reason.contains("not 1x32") == true)
        let expected = try DenseOps.linear(try qx.dequantize(), try w.dequantize())
        #expect(relativeError(try y.floats(), try expected.floats()) < 1e-6)
    }

    @Test("FP8 transpose keeps the scale and transposes the codes exactly")
    func fp8Transpose() throws {
        let q = try QuantizedTensor.fromFloat(try TestData.tensor([2, 7, 9], seed: 70),
            layout: TensorCoreFP8Layout.dynamic)
        let t = try withoutFallback { try transpose(q, 0, 2).requireQuantized() }
        #expect(t.shape == [9, 7, 2])
        #expect(try t.dequantize().floats() == q.dequantize().transposed(0, 2).floats())
    }

    @Test("weight update keeps weight blocking and matches dequantize + add + quantize",
          arguments: [LayoutUnderTest.int8(block: 32, rounding: .nearestEven),
                      .int8(block: 128, rounding: .towardZero), .fp8])
    func weightUpdate(layout: LayoutUnderTest) throws {
        let w = try TestData.tensor([160, 200], dtype: .bfloat16, seed: 80)
        let up = try TestData.tensor([160, 4], scale: 0.1, seed: 81)
        let down = try TestData.tensor([4, 200], scale: 0.1, seed: 82)
        let delta = try DenseOps.matmul(up, down)
        let q = try QuantizedTensor.fromFloat(w, layout: layout.weightLayout)
        let merged = try withoutFallback { try applyWeightUpdate(q, delta: delta, strength: 0.8).requireQuantized() }
        #expect(merged.layout.isEqual(to: q.layout), "re-quantized as a weight, same blocks (reference defect 8)")
        #expect(merged.scale.shape == q.scale.shape)
        #expect(merged.originalDType == .bfloat16)
        let expectedFloat = try zip(q.dequantize(to: .float32).floats(), delta.floats()).map { $0 + 0.8 * $1 }
        let expected = try QuantizedTensor.fromFloat(
            try Tensor(expectedFloat, shape: [160, 200], dtype: .bfloat16), layout: layout.weightLayout)
        #expect(try merged.data.floats() == expected.data.floats())
        #expect(try merged.scale.floats() == expected.scale.floats())
        // The merged weight still runs through the quantized GEMM.
        _ = try withoutFallback { try linear(try TestData.tensor([3, 200], seed: 83), merged) }
    }

    @Test("quantize/dequantize round trip error", arguments: [
        LayoutUnderTest.int8(block: 32, rounding: .nearestEven), .int8(block: 64, rounding: .towardZero),
        .int8(block: 128, rounding: .nearestEven), .int8(block: 256, rounding: .towardZero), .fp8,
    ], [TestData.Kind.gaussian, .tiny, .zeroStripes])
    func roundTrip(layout: LayoutUnderTest, kind: TestData.Kind) throws {
        let x = try TestData.tensor([130, 300], kind: kind, seed: 90)
        let q = try QuantizedTensor.fromFloat(x, layout: layout.weightLayout)
        let back = try withoutFallback { try dequantize(q) }
        #expect(relativeError(try back.floats(), try x.floats().map(Double.init)) <= layout.roundTripTolerance)
        if kind == .zeroStripes, case .int8(let block, _) = layout, block <= 64 {
            let scales = try q.scale.floats()
            #expect(scales.contains(0), "whole zero blocks get scale 0")
        }
    }
}
