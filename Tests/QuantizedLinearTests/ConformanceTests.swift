import QLConformance
import QuantizedLinear
import Testing

/// The shipped layouts through the conformance suite (`QLConformance`), on the CPU and, where there
/// is one, a CUDA GPU. The custom layout's run is in CustomLayoutTests.swift.
@Suite("Conformance: every shipped layout x backend")
struct ConformanceTests {
    /// A layout under test with the bounds it is held to (relative L2; measured on Gaussian data:
    /// INT8 nearest ~1e-2 round trip, toward zero ~2e-2, FP8 ~3.5e-2).
    struct Case: Sendable, CustomTestStringConvertible {
        let layout: LayoutUnderTest

        var tolerance: LayoutConformance.Tolerance {
            LayoutConformance.Tolerance(roundTrip: layout.roundTripTolerance, linear: layout.w8a8Tolerance,
                                        gelu: 2 * layout.roundTripTolerance)
        }

        var testDescription: String { layout.testDescription }
    }

    static let cases = [Case(layout: .int8(block: 32, rounding: .nearestEven)),
                        Case(layout: .int8(block: 128, rounding: .towardZero)),
                        Case(layout: .int8(block: 100, rounding: .nearestEven)), Case(layout: .fp8)]

    @Test(arguments: cases)
    func onTheCPU(case layoutCase: Case) {
        let report = LayoutConformance(weightLayout: layoutCase.layout.weightLayout,
                                       activationLayout: layoutCase.layout.activationLayout, device: .cpu,
                                       tolerance: layoutCase.tolerance).run()
        #expect(report.isPassing, "\(report)")
        #expect(report.checks.count > 20)
    }

    @Test(.enabled(if: CUDABackend.isAvailable, "no CUDA GPU here"), arguments: cases)
    func onCUDA(case layoutCase: Case) {
        let report = LayoutConformance(weightLayout: layoutCase.layout.weightLayout,
                                       activationLayout: layoutCase.layout.activationLayout, device: .cuda(0),
                                       tolerance: layoutCase.tolerance).run()
        #expect(report.isPassing, "\(report)")
    }

    /// The suite can fail: a layout whose registered quantizer is not its own definition is caught.
    @Test func aWrongQuantizerFails() {
        let report = LayoutConformance(weightLayout: OffByOneScaleLayout(), device: .cpu,
                                       tolerance: .init(roundTrip: 1, linear: 1, gelu: 1)).run()
        #expect(!report.isPassing)
        #expect(report.failures.contains { $0.contains("codes or scales differ") })
    }
}

/// Per-tensor INT8 whose registered quantizer doubles the scale its own `quantize` defines: the
/// round-trip check must see the two disagree.
struct OffByOneScaleLayout: QuantizedLayout, Hashable {
    static let name = "OffByOneScaleLayout"
    var description: String { Self.name }

    func quantize(_ tensor: Tensor) throws -> QuantizedTensor { try quantize(tensor, scaleFactor: 1) }

    func quantize(_ tensor: Tensor, scaleFactor: Float) throws -> QuantizedTensor {
        let values = try tensor.floats()
        let scale = max(values.map(abs).max() ?? 0, 1e-30) / 127 * scaleFactor
        let codes = values.map { Int8(max(-127, min(127, ($0 / scale).rounded()))) }
        return QuantizedTensor(unchecked: self, data: try Tensor(elements: codes, shape: tensor.shape),
                               scale: try Tensor([scale], shape: [1]), shape: tensor.shape,
                               originalDType: tensor.dtype)
    }

    func dequantize(_ tensor: QuantizedTensor, to dtype: DType) throws -> Tensor {
        let scale = try tensor.scale.floats()[0]
        return try Tensor(try tensor.data.elements(as: Int8.self).map { Float($0) * scale }, shape: tensor.shape,
                          dtype: dtype)
    }

    func validate(data: Tensor, scale: Tensor, shape: [Int]) throws {}

    static func registerHandlers(in registry: LayoutRegistry) {
        registry.registerQuantizer(for: Self.self, LayoutRegistry.QuantizeKernel(backend: .cpu) { tensor, layout in
            try (layout as? Self)?.quantize(tensor, scaleFactor: 2)
        })
    }
}
