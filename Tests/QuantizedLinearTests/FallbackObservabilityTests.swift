import QuantizedLinear
import Testing

/// A backend kernel that declines is a fallback like any other: recorded with the kernel's reason,
/// counted in `FallbackStatistics`, and stopped by the `fail` policy (the CUDA cases are in
/// CUDATests.swift, "kernel fallbacks").
@Suite("Kernel declines are observable fallbacks (CPU)")
struct FallbackObservabilityTests {
    static let layouts: [LayoutUnderTest] = [.int8(block: 16, rounding: .nearestEven), .fp8]

    /// The CPU dequantize kernels write float32, float16 and bfloat16; asked for float8 they decline,
    /// and the layout's own dequantize serves the call as a recorded fallback.
    @Test(arguments: layouts)
    func cpuDequantizeKernelDeclineIsRecorded(layout: LayoutUnderTest) throws {
        let layout = layout.weightLayout
        let q = try QuantizedTensor.fromFloat(try TestData.tensor([24, 40], seed: 5), layout: layout)
        let error = #expect(throws: TensorError.self) { try withoutFallback { try dequantize(q, to: .float8E4M3FN) } }
        #expect(error?.code == .fallbackForbidden)
        #expect(error?.message.contains("float8") == true)

        let before = FallbackStatistics.shared.count(op: .dequantize, layout: layout.name)
        let (y, events) = try withFallback { try dequantize(q, to: .float8E4M3FN) }
        #expect(events.count == 1)
        #expect(events.first?.op == .dequantize && events.first?.layout == layout.name)
        #expect(events.first?.reason.contains("float8") == true)
        #expect(FallbackStatistics.shared.count(op: .dequantize, layout: layout.name) >= before + 1)
        // The fallback is the layout's definition: its result is the reference's, exactly.
        let reference = try layout.dequantize(q, to: .float8E4M3FN)
        #expect(y.dtype == .float8E4M3FN)
        #expect(try y.floats() == reference.floats())
    }

    /// The dtypes the kernels write are no fallback.
    @Test(arguments: layouts)
    func cpuDequantizeToWrittenDTypesIsNative(layout: LayoutUnderTest) throws {
        let layout = layout.weightLayout
        let q = try QuantizedTensor.fromFloat(try TestData.tensor([24, 40], seed: 6), layout: layout)
        for dtype in [DType.float32, .float16, .bfloat16] {
            let (_, events) = try withFallback { try dequantize(q, to: dtype) }
            #expect(events.isEmpty, "\(dtype)")
        }
    }
}
