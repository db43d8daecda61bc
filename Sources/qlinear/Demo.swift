import Foundation
import QuantizedLinear

/// The default job: quantize WAN-shaped layers with both layouts and compare with float32.
enum Demo {
    static let command = Subcommand(
        name: "demo",
        summary: "quantize WAN2.2-shaped layers with both layouts; print error and time against float32",
        discussion: """
            The default command (`qlinear` alone runs it). Builds synthetic Gaussian weights and
            activations shaped like the WAN2.2 layers of the reference PR (N and K as in the model, M
            scaled down for a CPU), quantizes each weight with BlockWiseINT8Layout (block B) and
            TensorCoreFP8Layout, and prints per layer and path the relative L2 error against the float32
            linear and the median time against the float32 linear (OpenBLAS).
            """,
        options: [
            .integer("rows", placeholder: "M", default: 64, in: 1...16_384, "rows M of the activation"),
            .integer("block-size", placeholder: "B", default: 128, in: 1...16_384, "INT8 block size"),
            .integer("repeats", placeholder: "R", default: 3, in: 1...1000, "timed repetitions (the median is shown)"),
        ],
        run: run)

    /// The WAN2.2 layers the demo runs: four of the benchmark's shapes, cheap enough for a default run.
    static let layers = Benchmark.shapes.filter {
        ["5B attention", "5B MLP up", "5B MLP down", "14B attention"].contains($0.name)
    }

    static func run(_ arguments: ParsedArguments) throws {
        let m = arguments.int("rows")
        let blockSize = arguments.int("block-size")
        let repeats = arguments.int("repeats")
        registerBuiltinLayouts()
        print("qlinear demo: y = x W^T with x (\(m), K), W (N, K); Gaussian data; \(OpenBLAS.shared.summary)")
        print("CPU: \(CPUFeatures.current)")
        print("")
        print(pad("layer", 16) + pad("N x K", 14) + pad("path", 26) + pad("rel. error", 12) + pad("time", 11)
            + "vs fp32")
        let int8 = try BlockWiseINT8Layout.weight(blockSize: blockSize)
        for (index, layer) in layers.enumerated() {
            let x = try Tensor.randomNormal([m, layer.k], seed: UInt64(2 * index + 1))
            let w = try Tensor.randomNormal([layer.n, layer.k], standardDeviation: 1 / Float(layer.k).squareRoot(),
                                            seed: UInt64(2 * index + 2))
            let (reference, floatTime) = try timed(repeats) { try DenseOps.linear(x, w) }
            let referenceValues = try reference.floats()
            let qInt8 = try QuantizedTensor.fromFloat(w, layout: int8)
            let qFP8 = try QuantizedTensor.fromFloat(w, layout: TensorCoreFP8Layout.dynamic)
            let paths: [(String, QuantizedTensor, LinearOptions.FloatInputMode)] = [
                ("INT8 block W8A8", qInt8, .quantizeInput),
                ("INT8 block weight-only", qInt8, .dequantizeWeight),
                ("FP8 W8A8", qFP8, .quantizeInput),
                ("FP8 weight-only", qFP8, .dequantizeWeight),
            ]
            let shape = "\(layer.n)x\(layer.k)"
            print(pad(layer.name, 16) + pad(shape, 14) + pad("float32", 26) + pad("-", 12)
                + pad(milliseconds(floatTime), 11) + "1.00x")
            for (name, weight, mode) in paths {
                let (y, time) = try timed(repeats) {
                    try linear(x, weight, options: LinearOptions(floatInput: mode)).dequantized()
                }
                let error = relativeError(try y.floats(), referenceValues)
                print(pad("", 16) + pad("", 14) + pad(name, 26) + pad(String(format: "%.2e", error), 12)
                    + pad(milliseconds(time), 11) + String(format: "%.2fx", floatTime / time))
            }
        }
        print("\nrel. error = ||y - y_fp32|| / ||y_fp32||; vs fp32 = float32 time / path time (higher is faster).")
    }

    static func timed<R>(_ repeats: Int, _ body: () throws -> R) throws -> (R, Double) {
        var result = try body()
        var times: [Double] = []
        for _ in 0..<max(repeats, 1) {
            let start = DispatchTime.now().uptimeNanoseconds
            result = try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return (result, times.sorted()[times.count / 2])
    }

    static func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        var difference = 0.0
        var norm = 0.0
        for (x, y) in zip(a, b) {
            difference += Double(x - y) * Double(x - y)
            norm += Double(y) * Double(y)
        }
        return (difference / max(norm, .leastNormalMagnitude)).squareRoot()
    }

    static func milliseconds(_ seconds: Double) -> String { String(format: "%.2f ms", seconds * 1000) }

    static func pad(_ text: String, _ width: Int) -> String {
        text.padding(toLength: width, withPad: " ", startingAt: 0)
    }
}
