import QuantizedLinear
import Testing

@Suite("Registry: dispatch order, observable fallback, coverage report")
struct RegistryTests {
    @Test("an op without a native handler falls back, is counted with its reason, and fails under `fail`")
    func fallbackIsObservable() throws {
        let a = try QuantizedTensor.fromFloat(try TestData.tensor([4, 64], seed: 1),
            layout: BlockWiseINT8Layout.weight(blockSize: 32))
        let b = try TestData.tensor([64, 8], seed: 2)
        let before = FallbackStatistics.shared.count(op: .matmul, layout: BlockWiseINT8Layout.name)
        let (y, events) = try withFallback { try matmul(a, b).dequantized() }
        #expect(events == [FallbackEvent(op: .matmul, layout: BlockWiseINT8Layout.name, reason: "no native handler")])
        #expect(FallbackStatistics.shared.count(op: .matmul, layout: BlockWiseINT8Layout.name) >= before + 1)
        let expected = try DenseOps.matmul(try a.dequantize(), b)
        #expect(try y.floats() == expected.floats())

        let error = #expect(throws: TensorError.self) { try withoutFallback { try matmul(a, b) } }
        #expect(error?.code == .fallbackForbidden)
        #expect(error?.message.contains("matmul on BlockWiseINT8Layout") == true)
    }

    @Test("a handler that declines hands the call to the fallback, with the handler's reason")
    func declineReachesFallback() throws {
        let fp8Input = try QuantizedTensor.fromFloat(try TestData.tensor([3, 64], seed: 3),
            layout: TensorCoreFP8Layout.dynamic)
        let int8Weight = try QuantizedTensor.fromFloat(try TestData.tensor([5, 64], seed: 4),
            layout: BlockWiseINT8Layout.weight(blockSize: 32))
        let (y, events) = try withFallback { try linear(fp8Input, int8Weight).dequantized() }
        #expect(events.count == 1)
        #expect(events[0].reason.contains("the input is TensorCoreFP8Layout"))
        let expected = try DenseOps.linear(try fp8Input.dequantize(), try int8Weight.dequantize())
        #expect(relativeError(try y.floats(), try expected.floats()) < 1e-6)
    }

    @Test("generic utilities apply to every component without a handler or a fallback")
    func genericUtilities() throws {
        let q = try QuantizedTensor.fromFloat(try TestData.tensor([40, 70], seed: 5),
            layout: BlockWiseINT8Layout.weight(blockSize: 32))
        try withoutFallback {
            let clone = try q.clone()
            #expect(clone.data.storage !== q.data.storage && clone.scale.storage !== q.scale.storage)
            #expect(try clone.dequantize().floats() == q.dequantize().floats())
            let t = try transpose(q).requireQuantized()
            #expect(!t.data.isContiguous)
            let c = try t.contiguous()
            #expect(c.data.isContiguous && c.scale.isContiguous)
            #expect(try c.dequantize().floats() == t.dequantize().floats())
            #expect(try q.to(.cpu).dequantize().floats() == q.dequantize().floats())
        }
    }

    @Test("the default policy can be changed and task-local policies override it")
    func policies() throws {
        #expect(FallbackPolicy.current == FallbackPolicy.default)
        FallbackPolicy.withPolicy(.fail) {
            #expect(FallbackPolicy.current == .fail)
            FallbackPolicy.withPolicy(.dequantize) { #expect(FallbackPolicy.current == .dequantize) }
        }
    }

    @Test("dense-only calls never touch the registry's fallback")
    func denseCalls() throws {
        let (_, events) = try withFallback {
            try linear(try TestData.tensor([2, 8], seed: 6), try TestData.tensor([3, 8], seed: 7))
        }
        #expect(events.isEmpty)
    }

    @Test("the coverage report lists every op for every built-in layout")
    func coverageReport() {
        registerBuiltinLayouts()
        let report = LayoutRegistry.shared.coverageReport()
        for op in Op.allCases { #expect(report.contains(op.rawValue)) }
        #expect(report.contains(BlockWiseINT8Layout.name) && report.contains(TensorCoreFP8Layout.name))
        let linearLine = report.split(separator: "\n").first { $0.hasPrefix("linear") }
        #expect(linearLine?.contains("native(") == true)
        let matmulLine = report.split(separator: "\n").first { $0.hasPrefix("matmul") }
        #expect(matmulLine?.contains("fallback") == true)
        for op in [Op.linear, .gelu, .transpose, .dequantize, .weightUpdate] {
            #expect(LayoutRegistry.shared.nativeBackends(for: op, layout: BlockWiseINT8Layout.name).contains(.cpu))
            #expect(LayoutRegistry.shared.nativeBackends(for: op, layout: TensorCoreFP8Layout.name).contains(.cpu))
        }
    }
}

@Suite("Rounding: nearest-even halves the W8A8 error of truncation")
struct RoundingErrorTests {
    @Test("INT8 W8A8 on Gaussian data", arguments: [64, 128])
    func nearestEvenVersusTowardZero(block: Int) throws {
        let x = try TestData.tensor([64, 512], seed: 100)
        let w = try TestData.tensor([96, 512], scale: 1 / Float(512).squareRoot(), seed: 101)
        let exact = try Reference64.linear(x, w, bias: nil)
        func error(_ rounding: Rounding) throws -> Double {
            let qw = try QuantizedTensor.fromFloat(w,
                layout: BlockWiseINT8Layout.weight(blockSize: block, rounding: rounding))
            let y = try withoutFallback { try linear(x, qw).dequantized() }
            return relativeError(try y.floats(), exact)
        }
        let nearest = try error(.nearestEven)
        let truncated = try error(.towardZero)
        // Rounding error is uniform on [-1/2, 1/2] steps vs [0, 1) steps with a bias; measured
        // ratio about 0.5.
        #expect(nearest / truncated > 0.35 && nearest / truncated < 0.65,
                "nearest \(nearest), toward zero \(truncated)")
    }
}
