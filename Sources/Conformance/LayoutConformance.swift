import Foundation
import QuantizedLinear

/// The checks every (layout, backend) pair must pass: run ``run()`` from a test, for a layout of
/// this package or one of your own, on the CPU or a CUDA device.
///
/// For each shape `(M, N, K)` (Gaussian data, fixed seeds) it checks:
/// 1. **round trip**: quantizing on `device` gives the codes and scales of the layout's own
///    ``QuantizedLayout/quantize(_:)`` exactly (so every fast quantizer is bit-identical to the
///    definition), dequantizing gives the layout's own ``QuantizedLayout/dequantize(_:to:)`` exactly,
///    and `||deq(q(x)) - x|| / ||x|| <= tolerance.roundTrip`;
/// 2. **ops against float64**: `linear` (both ``LinearOptions/FloatInputMode``s, with a bias),
///    `gelu` on a quantized activation and `applyWeightUpdate`, each against the float64 result of
///    the same op on the dequantized operands, within `tolerance.linear`, `.gelu`, `.roundTrip`;
/// 3. **transpose is exact**: `deq(transpose(q)) == transpose(deq(q))` and transposing twice gives
///    `deq(q)` back, bit for bit;
/// 4. **fallbacks are observable**: every call above is run twice, recording fallbacks under the
///    `dequantize` policy and again under `fail`: a call that recorded a fallback must throw
///    ``TensorError/Code/fallbackForbidden`` under `fail`, and one that recorded none must not; a
///    `matmul` with a quantized operand (an op no built-in layout handles) is among the calls.
///
/// Relative errors are `||a - b||_2 / ||b||_2` over all elements.
public struct LayoutConformance: Sendable {
    /// Error bounds, relative L2.
    public struct Tolerance: Sendable {
        public var roundTrip: Double
        public var linear: Double
        public var gelu: Double

        public init(roundTrip: Double, linear: Double, gelu: Double) {
            self.roundTrip = roundTrip
            self.linear = linear
            self.gelu = gelu
        }
    }

    /// One linear problem: input `(m, k)`, weight `(n, k)`.
    public struct Shape: Sendable, CustomStringConvertible {
        public var m: Int
        public var n: Int
        public var k: Int

        public init(m: Int, n: Int, k: Int) {
            self.m = m
            self.n = n
            self.k = k
        }

        public var description: String { "\(m)x\(n)x\(k)" }
    }

    /// The layout weights `(N, K)` are quantized with.
    public var weightLayout: any QuantizedLayout
    /// The layout of quantized activations `(M, K)` (gelu's operand); `nil` uses `weightLayout`.
    public var activationLayout: (any QuantizedLayout)?
    public var device: Device
    public var tolerance: Tolerance
    /// Aligned and odd sizes by default (partial blocks, K not a multiple of 16).
    public var shapes: [Shape]

    public init(weightLayout: any QuantizedLayout, activationLayout: (any QuantizedLayout)? = nil,
                device: Device = .cpu, tolerance: Tolerance,
                shapes: [Shape] = [Shape(m: 5, n: 48, k: 256), Shape(m: 3, n: 40, k: 200)]) {
        self.weightLayout = weightLayout
        self.activationLayout = activationLayout
        self.device = device
        self.tolerance = tolerance
        self.shapes = shapes
    }

    /// Runs every check; a check that throws where it should not is a failure, not a crash.
    public func run() -> ConformanceReport {
        var report = ConformanceReport()
        for shape in shapes {
            let name = "\(weightLayout) on \(device), \(shape)"
            do {
                try check(shape, name: name, into: &report)
            } catch {
                report.fail(name, "threw \(error)")
            }
        }
        return report
    }

    private func check(_ shape: Shape, name: String, into report: inout ConformanceReport) throws {
        let seed = UInt64(shape.m * 1_000_003 + shape.n * 1_009 + shape.k)
        let x = try Tensor.randomNormal([shape.m, shape.k], seed: seed)
        let w = try Tensor.randomNormal([shape.n, shape.k], standardDeviation: 0.05, seed: seed + 1)
        let b = try Tensor.randomNormal([shape.n], seed: seed + 2)
        let delta = try Tensor.randomNormal([shape.n, shape.k], standardDeviation: 0.01, seed: seed + 3)
        let activation = activationLayout ?? weightLayout

        let q = try roundTrip(w, layout: weightLayout, name: "\(name): weight round trip", into: &report)
        let qa = try roundTrip(x, layout: activation, name: "\(name): activation round trip", into: &report)
        let (xd, bd, deltad) = (try x.to(device), try b.to(device), try delta.to(device))
        let wq = try q.dequantize(to: .float32).floats()

        for mode in LinearOptions.FloatInputMode.allCases {
            let check = "\(name): linear \(mode.rawValue)"
            let options = LinearOptions(floatInput: mode)
            if let y = observed(check, into: &report, { try linear(xd, q, bias: bd, options: options) }) {
                let exact = Float64Reference.linear(try x.floats(), wq, bias: try b.floats(), m: shape.m, n: shape.n,
                                                    k: shape.k)
                compare(try y.dequantized().floats(), exact, within: tolerance.linear, check, into: &report)
            }
        }
        let geluCheck = "\(name): gelu of a quantized activation"
        if let y = observed(geluCheck, into: &report, { try gelu(qa) }) {
            let exact = Float64Reference.gelu(try qa.dequantize(to: .float32).floats())
            compare(try y.dequantized().floats(), exact, within: tolerance.gelu, geluCheck, into: &report)
        }
        let updateCheck = "\(name): weight update"
        if let y = observed(updateCheck, into: &report, { try applyWeightUpdate(q, delta: deltad, strength: 0.5) }) {
            let exact = zip(wq, try delta.floats()).map { Double($0) + 0.5 * Double($1) }
            compare(try y.dequantized().floats(), exact, within: tolerance.roundTrip, updateCheck, into: &report)
        }
        try transposeIsExact(q, name: "\(name): transpose", into: &report)
        _ = observed("\(name): matmul with a quantized operand", into: &report) { try matmul(q, xd.transposed()) }
    }

    /// Quantizes `values` on the device and checks it against the layout's own definition.
    private func roundTrip(_ values: Tensor, layout: any QuantizedLayout, name: String,
                           into report: inout ConformanceReport) throws -> QuantizedTensor {
        let q = try QuantizedTensor.fromFloat(values.to(device), layout: layout)
        let reference = try layout.quantize(values)
        report.expect(q.device == device, "\(name): stays on \(device)", "the result is on \(q.device)")
        report.expect(try q.data.floats() == reference.data.floats() && q.scale.floats() == reference.scale.floats(),
                      "\(name): codes and scales equal the layout's quantize",
                      "codes or scales differ from \(type(of: layout)).quantize")
        let dequantized = try q.dequantize(to: .float32).floats()
        report.expect(dequantized == (try layout.dequantize(reference, to: .float32).floats()),
                      "\(name): dequantize equals the layout's dequantize",
                      "dequantized values differ from \(type(of: layout)).dequantize")
        compare(dequantized, try values.floats().map(Double.init), within: tolerance.roundTrip, name, into: &report)
        return q
    }

    private func transposeIsExact(_ q: QuantizedTensor, name: String, into report: inout ConformanceReport) throws {
        guard let t = observed(name, into: &report, { try transpose(q) }) else { return }
        let expected = try q.dequantize(to: .float32).transposed().floats()
        report.expect(try t.dequantized().converted(to: .float32).floats() == expected, "\(name) is exact",
                      "deq(transpose(q)) differs from transpose(deq(q))")
        guard let back = observed("\(name) twice", into: &report, { try transpose(t) }) else { return }
        report.expect(try back.dequantized().converted(to: .float32).floats() == q.dequantize(to: .float32).floats(),
                      "\(name) twice is the identity", "transposing twice changed values")
    }

    /// Runs `call` recording fallbacks, then under the `fail` policy, and checks the two agree:
    /// a recorded fallback must be stopped by `fail`, and a call without one must pass it.
    private func observed(_ check: String, into report: inout ConformanceReport,
                          _ call: () throws -> AnyTensor) -> AnyTensor? {
        let result: AnyTensor
        let events: [FallbackEvent]
        do {
            (result, events) = try FallbackPolicy.withPolicy(.dequantize) { try FallbackStatistics.recording(call) }
        } catch {
            report.fail(check, "threw \(error)")
            return nil
        }
        do {
            _ = try FallbackPolicy.withPolicy(.fail, call)
            report.expect(events.isEmpty, "\(check): native (no fallback under `fail`)",
                          "recorded \(events) but the `fail` policy did not stop it")
        } catch let error as TensorError where error.code == .fallbackForbidden {
            report.expect(!events.isEmpty, "\(check): fallback recorded and stopped by `fail` (\(events.count))",
                          "the `fail` policy threw but no fallback was recorded: \(error.message)")
        } catch {
            report.fail(check, "threw under the `fail` policy: \(error)")
        }
        return result
    }

    /// `||values - exact|| / ||exact||` in float64; 0 when both are zero, infinity for a non-finite
    /// value or a length mismatch: the error measure of every check.
    public static func relativeError(_ values: [Float], _ exact: [Double]) -> Double {
        Float64Reference.relativeError(values, exact)
    }

    private func compare(_ values: [Float], _ exact: [Double], within bound: Double, _ check: String,
                         into report: inout ConformanceReport) {
        let error = Self.relativeError(values, exact)
        report.expect(error <= bound, "\(check): error \(String(format: "%.2e", error)) <= \(bound)",
                      "relative error \(error) exceeds \(bound)")
    }
}
