import QLConformance
import QuantizedLinear
import Testing

/// A layout defined outside the library: symmetric INT8 with one scale per row (the last
/// dimension's rows). It registers a native linear handler for float inputs and nothing else,
/// so every other op must reach the fallback.
struct PerRowINT8Layout: QuantizedLayout, Hashable {
    static let name = "PerRowINT8Layout"

    var description: String { "PerRowINT8Layout" }

    func quantize(_ tensor: Tensor) throws -> QuantizedTensor {
        let columns = tensor.shape.last ?? 1
        let values = try tensor.floats()
        var codes = [Int8](repeating: 0, count: values.count)
        var scales: [Float] = []
        for row in 0..<(values.count / max(columns, 1)) {
            let slice = values[row * columns..<(row + 1) * columns]
            let scale = (slice.map(abs).max() ?? 0) / 127
            scales.append(scale)
            guard scale > 0 else { continue }
            for c in 0..<columns { codes[row * columns + c] = Int8((values[row * columns + c] / scale).rounded()) }
        }
        return QuantizedTensor(unchecked: self, data: try Tensor(elements: codes, shape: tensor.shape),
                               scale: try Tensor(scales, shape: Array(tensor.shape.dropLast()) + [1]),
                               shape: tensor.shape, originalDType: tensor.dtype)
    }

    func dequantize(_ tensor: QuantizedTensor, to dtype: DType) throws -> Tensor {
        let columns = tensor.shape.last ?? 1
        let codes = try tensor.data.elements(as: Int8.self)
        let scales = try tensor.scale.floats()
        return try Tensor(codes.enumerated().map { Float($0.element) * scales[$0.offset / columns] },
                          shape: tensor.shape, dtype: dtype)
    }

    func validate(data: Tensor, scale: Tensor, shape: [Int]) throws {
        guard data.dtype == .int8, data.shape == shape, scale.shape == Array(shape.dropLast()) + [1] else {
            throw TensorError(.shapeMismatch, "per-row INT8 parts do not fit shape \(shape)")
        }
    }

    /// Linear for a dense input: `y = x (q * s)^T`, computed row by row of the weight.
    static func registerHandlers(in registry: LayoutRegistry) {
        registry.register(.linear, for: Self.self, OpHandler(backend: .cpu) { call in
            guard let x = call.operand(0)?.denseTensor, let w = call.operand(1)?.quantizedTensor,
                  w.layout is Self, call.operand(2) == nil else {
                return .declined("per-row INT8 linear takes a dense input, a per-row weight and no bias")
            }
            let (n, k) = (w.shape[0], w.shape[1])
            let xs = try x.floats()
            let codes = try w.data.elements(as: Int8.self)
            let scales = try w.scale.floats()
            let m = xs.count / k
            var y = [Float](repeating: 0, count: m * n)
            for row in 0..<m {
                for column in 0..<n {
                    var sum: Float = 0
                    for p in 0..<k { sum += xs[row * k + p] * Float(codes[column * k + p]) }
                    y[row * n + column] = sum * scales[column]
                }
            }
            return .done(.dense(try Tensor(y, shape: Array(x.shape.dropLast()) + [n], dtype: x.dtype)))
        })
    }
}

@Suite("Registry extension from outside the library")
struct CustomLayoutTests {
    @Test("a test-defined layout gets its native handler and the fallback for everything else")
    func perRowLayout() throws {
        let x = try TestData.tensor([3, 5, 40], seed: 1)
        let w = try TestData.tensor([12, 40], seed: 2)
        let q = try QuantizedTensor.fromFloat(w, layout: PerRowINT8Layout())
        #expect(q.layoutName == "PerRowINT8Layout")

        let y = try withoutFallback { try linear(x, q).dequantized() }
        #expect(y.shape == [3, 5, 12])
        let exact = try Reference64.linear(x, w, bias: nil)
        #expect(relativeError(try y.floats(), exact) < 2e-2)

        // No handler for transpose or gelu: the fallback runs and says so.
        let (t, events) = try withFallback { try transpose(q).dequantized() }
        #expect(events.map(\.op) == [.transpose])
        #expect(events[0].layout == "PerRowINT8Layout" && events[0].reason == "no native handler")
        #expect(try t.floats() == q.dequantize().transposed().floats())
        #expect(throws: TensorError.self) { try withoutFallback { try gelu(q) } }

        // With a bias, its handler declines: the fallback gives the same function.
        let b = try TestData.tensor([12], seed: 3)
        let (withBias, declined) = try withFallback { try linear(x, q, bias: b).dequantized() }
        #expect(declined.first?.reason.contains("no bias") == true)
        let expected = try DenseOps.linear(x, try q.dequantize(), bias: b)
        #expect(relativeError(try withBias.floats(), try expected.floats()) < 1e-6)

        let report = LayoutRegistry.shared.coverageReport()
        let linearLine = try #require(report.split(separator: "\n").first { $0.hasPrefix("linear") })
        #expect(report.contains("PerRowINT8Layout"))
        #expect(linearLine.contains("native(cpu)"))
    }

    /// The conformance suite a user runs for their own layout: its round trip, then linear (with a
    /// bias, which its handler declines), gelu, weight update, transpose and matmul, all fallbacks
    /// here, each recorded and stopped by `fail`.
    @Test func perRowLayoutPassesTheConformanceSuite() {
        let report = LayoutConformance(weightLayout: PerRowINT8Layout(), device: .cpu,
                                       tolerance: .init(roundTrip: 1.5e-2, linear: 2.5e-2, gelu: 3e-2)).run()
        #expect(report.isPassing, "\(report)")
    }
}
