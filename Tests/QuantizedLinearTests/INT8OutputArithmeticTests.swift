import Foundation
import QuantizedLinear
import Testing

/// The INT8 / FP8 output arithmetic of NOTES.md ("Numerics decisions") on inputs near the float range's
/// end, on every CPU path (issue 12, items 7-10). Any new CPU kernel must pass these too.
@Suite struct INT8OutputArithmeticTests {
    static let (n, k) = (40, 256)

    /// bf16 values of magnitude 1.7e38 ... 3.3e38 with mixed signs.
    static func hugeInput(m: Int) throws -> Tensor {
        let values = (0..<(m * k)).map { index -> Float in
            let magnitude = Float(1.7e38) + Float(index * 7919 % 1000) * 1.6e35
            return index % 3 == 0 ? -magnitude : magnitude
        }
        return try Tensor(values, shape: [m, k], dtype: .bfloat16)
    }

    static func weight() throws -> Tensor {
        try Tensor.randomNormal([n, k], standardDeviation: 1e-3, seed: 7)
    }

    /// float64 `sum_k x[m,k] * w[n,k]` of the dequantized operands: the true result of what the call means.
    static func expected(_ x: [Float], _ w: [Float], m: Int) -> [Double] {
        (0..<m).flatMap { row in
            (0..<n).map { column in
                (0..<k).reduce(0.0) { $0 + Double(x[row * k + $1]) * Double(w[column * k + $1]) }
            }
        }
    }

    static func check(_ y: AnyTensor, against reference: [Double], m: Int, _ what: String) throws {
        let values = try y.dequantized().floats()
        for row in 0..<m {
            let slice = reference[row * n..<(row + 1) * n]
            let norm = slice.map { $0 * $0 }.reduce(0, +).squareRoot()
            #expect(norm.isFinite && norm > 0 && norm < 1e38, "\(what): reference row \(row) is not a test case")
            for column in 0..<n {
                let value = values[row * n + column]
                #expect(value.isFinite, "\(what): row \(row) column \(column) is \(value)")
                let error = abs(Double(value) - reference[row * n + column]) / norm
                #expect(error < 1e-2, "\(what): row \(row) column \(column): \(value) vs \(reference[row * n + column])")
            }
        }
    }

    @Test("W8A8 and weight-only linear on bf16 inputs near 3e38", arguments: [1, 5, 64])
    func largeInputsGiveFiniteResults(m: Int) throws {
        let x = try Self.hugeInput(m: m)
        let w = try Self.weight()
        let int8Weight = try QuantizedTensor.fromFloat(w, layout: BlockWiseINT8Layout.weight(blockSize: 128))
        let fp8Weight = try QuantizedTensor.fromFloat(w, layout: TensorCoreFP8Layout.dynamic)
        let int8Input = try QuantizedTensor.fromFloat(x, layout: BlockWiseINT8Layout.activation(blockSize: 128))
        let fp8Input = try QuantizedTensor.fromFloat(x, layout: TensorCoreFP8Layout.dynamic)
        let xf = try x.floats()
        let cases: [(String, AnyTensor, QuantizedTensor, [Float])] = [
            ("INT8 W8A8", .quantized(int8Input), int8Weight, try int8Input.dequantize(to: .float32).floats()),
            ("INT8 weight-only", .dense(x), int8Weight, xf),
            ("FP8 W8A8", .quantized(fp8Input), fp8Weight, try fp8Input.dequantize(to: .float32).floats()),
            ("FP8 weight-only", .dense(x), fp8Weight, xf),
        ]
        try CPUKernelCheck.onEveryPath { path in
            for (name, input, weight, inputValues) in cases {
                let reference = Self.expected(inputValues, try weight.dequantize(to: .float32).floats(), m: m)
                // A dense input with an FP8 weight is quantized to FP8 unless weight-only is asked for.
                let y = try linear(input, weight, options: LinearOptions(floatInput: .dequantizeWeight))
                try Self.check(y, against: reference, m: m, "\(name), M = \(m), \(path)")
            }
        }
    }

    /// The reference defines the order: `float(sum) * (sx * sw)`, scales first.
    @Test func referenceMultipliesTheScalesFirst() {
        let sx: Float = 2.5e36, sw: Float = 1e-5
        let y = BlockWiseINT8Reference.linear(inputCodes: [127, 127], inputScales: [sx], m: 1, k: 2,
                                              weightCodes: [127, 127], weightScales: [sw], n: 1,
                                              weightBlockRows: 1, blockColumns: 2, bias: nil)
        #expect(y == [Float(2 * 127 * 127) * (sx * sw)])
        #expect((Float(2 * 127 * 127) * sx * sw).isInfinite)   // the other order overflows
    }

    @Test("quantizing +-Float.max dequantizes finite", arguments: [[1, 3], [3, 1], [2, 2]])
    func greatestMagnitudeDequantizesFinite(block: [Int]) throws {
        let values: [Float] = [.greatestFiniteMagnitude, -.greatestFiniteMagnitude, 1, 0.5, -3, 2, 7, 1e38, -1e30]
        let layout = try BlockWiseINT8Layout(blockRows: block[0], blockColumns: block[1])
        let (codes, scales) = try values.withUnsafeBufferPointer {
            try BlockWiseINT8Reference.quantize($0, shape: [3, 3], layout: layout)
        }
        let reference = BlockWiseINT8Reference.dequantize(codes, scales: scales, shape: [3, 3], layout: layout)
        #expect(reference.allSatisfy { $0.isFinite }, "\(reference)")
        #expect(reference[0] > 3.3e38 && reference[1] < -3.3e38)
        // Away from the top of the range the scale is exactly amax / 127, as before.
        #expect(BlockWiseINT8Reference.scale(forAmax: 1e38) == 1e38 / 127)
        #expect(BlockWiseINT8Reference.scale(forAmax: 3) == Float(3) / 127)
        try CPUKernelCheck.onEveryPath { path in
            let q = try QuantizedTensor.fromFloat(try Tensor(values, shape: [3, 3]), layout: layout)
            #expect(try q.scale.floats() == scales, "\(path)")
            #expect(try q.data.elements(as: Int8.self) == codes, "\(path)")
            #expect(try q.dequantize(to: .float32).floats() == reference, "\(path)")
        }
    }

    @Test(arguments: [Float.nan, .infinity])
    func geluOnAnActivationWithANonFiniteScaleIsNotZero(scale: Float) throws {
        let layout = try BlockWiseINT8Layout.activation(blockSize: 4)
        let q = try QuantizedTensor(layout: layout, data: Tensor(elements: [Int8](repeating: 5, count: 8), shape: [2, 4]),
                                    scale: Tensor([0.5, scale], shape: [2, 1]), shape: [2, 4],
                                    originalDType: .float32)
        try CPUKernelCheck.onEveryPath { path in
            do {
                let y = try gelu(q).dequantized().floats()
                #expect(y[4...].allSatisfy { $0.isNaN }, "\(path): \(y)")
            } catch let error as TensorError {
                #expect(error.code == .nonFiniteValue, "\(path): \(error)")
            } catch {
                Issue.record("\(path): \(error)")
            }
        }
    }
}
