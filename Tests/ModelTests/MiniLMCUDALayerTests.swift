import QuantizedLinear
@testable import QLModels
import QLNN
import Testing

/// Where the CUDA encoder and the CPU encoder part: every linear and every layer of the model run on
/// both backends from the *same* input (the CPU's activations), so each comparison sees one op's
/// difference, not what the layers before it amplified. The activation quantizers give the same codes
/// and scales; a linear on the same input differs only in float summation order (~1e-6 of its output),
/// except FP8, whose cuBLASLt accumulation on Hopper differs from the CPU's exact float32 sums by up to
/// ~1e-3 (8.5e-4 measured on the H200). Whole layers agree to ~1e-6 on the float paths; on the paths
/// that quantize activations a layer's last-bit float differences flip codes of the next linear's
/// input (0.5% of a layer's output seen for W8A8, 2% for FP8), which is printed, not bounded.
@Suite("MiniLM on CUDA, op by op", .enabled(if: CUDABackend.isAvailable, "\(cudaSkipReason)"),
       .enabled(if: MiniLMFixture.runsModelTests, MiniLMFixture.skipMessage))
struct MiniLMCUDALayerTests {
    /// One comparison: the largest relative difference `|cuda - cpu| / max|cpu|` seen for a name.
    struct Worst: CustomStringConvertible {
        var name = ""
        var relative = 0.0
        var description: String { "\(name): \(relative)" }
        mutating func update(_ name: String, _ relative: Double) {
            if relative >= self.relative { (self.name, self.relative) = (name, relative) }
        }
    }

    @Test("Each linear and layer on CUDA matches the CPU's from the same input", arguments: MiniLMPath.allCases)
    func opsMatchFromTheSameInput(configuration: MiniLMPath) throws {
        var model = try MiniLMFixture.model()
        try configuration.apply(to: &model)
        let gpuModel = try model.moved(to: .cuda(0))
        let fixture = try MiniLMFixture.load()
        var linears = Worst(), layers = Worst(), quantizers = Worst()
        try FallbackPolicy.withPolicy(.fail) {
            for batch in try paddedBatches(fixture.tokenIDs) {
                let additiveMask = try MiniLM.additiveMask(batch.mask)
                var hidden = try model.embeddings(batch.ids)
                for (index, (cpuLayer, gpuLayer)) in zip(model.layers, gpuModel.layers).enumerated() {
                    let prefix = "layer \(index) (batch \(batch.ids.shape))"
                    let inputs = try linearInputs(cpuLayer, gpuLayer, hidden, additiveMask)
                    for (name, input, cpuLinear, gpuLinear) in inputs {
                        let expected = try cpuLinear(input)
                        let actual = try gpuLinear(input.to(.cuda(0))).to(.cpu)
                        linears.update("\(prefix) \(name)", try relativeDifference(actual, expected))
                        if configuration == .int8W8A8 || configuration == .fp8W8A8 {
                            quantizers.update("\(prefix) \(name)",
                                              try quantizerDifference(input, configuration: configuration))
                        }
                    }
                    let next = try cpuLayer(hidden, additiveMask: additiveMask)
                    let gpuNext = try gpuLayer(hidden.to(.cuda(0)), additiveMask: additiveMask.to(.cuda(0))).to(.cpu)
                    layers.update(prefix, try relativeDifference(gpuNext, next))
                    hidden = next
                }
            }
        }
        print("MiniLM CUDA vs CPU (\(configuration)), worst relative differences: linear \(linears), "
            + "layer \(layers), activation quantizer \(quantizers)")
        #expect(quantizers.relative == 0, "activation codes or scales differ: \(quantizers)")
        #expect(linears.relative <= (configuration == .fp8W8A8 ? 2e-3 : 1e-5), "\(linears)")
        if configuration == .float32 || configuration == .int8WeightOnly {
            #expect(layers.relative <= 1e-5, "\(layers)")
        }
    }

    /// Each linear of a layer with the CPU input it sees in the CPU layer's forward pass.
    private func linearInputs(_ cpu: BertLayer, _ gpu: BertLayer, _ x: Tensor, _ additiveMask: Tensor) throws
        -> [(String, Tensor, Linear, Linear)] {
        let (batch, length, hidden) = (x.shape[0], x.shape[1], x.shape[2])
        let headCount = cpu.headCount, headSize = hidden / headCount
        func heads(_ t: Tensor) throws -> Tensor {
            try t.reshaped([batch, length, headCount, headSize]).permuted([0, 2, 1, 3]).contiguous()
        }
        let q = try heads(scaled(cpu.query(x), by: 1 / Float(headSize).squareRoot()))
        let probabilities = try softmax(batchedMatmul(q, heads(cpu.key(x)), transposeB: true),
                                        additiveMask: additiveMask)
        let merged = try batchedMatmul(probabilities, heads(cpu.value(x))).permuted([0, 2, 1, 3])
            .reshaped([batch, length, hidden]).contiguous()
        let attended = try cpu.attentionNorm(add(cpu.attentionOutput(merged), x))
        let expanded = try gelu(cpu.intermediate(attended), approximation: .none).requireDense()
        return [("query", x, cpu.query, gpu.query), ("key", x, cpu.key, gpu.key), ("value", x, cpu.value, gpu.value),
                ("attention.output", merged, cpu.attentionOutput, gpu.attentionOutput),
                ("intermediate", attended, cpu.intermediate, gpu.intermediate),
                ("output", expanded, cpu.output, gpu.output)]
    }

    /// `max |a - b| / max |b|` in float64.
    private func relativeDifference(_ a: Tensor, _ b: Tensor) throws -> Double {
        let (x, y) = (try a.floats(), try b.floats())
        #expect(x.count == y.count)
        let scale = y.map { abs(Double($0)) }.max() ?? 0
        let difference = zip(x, y).map { abs(Double($0) - Double($1)) }.max() ?? 0
        return scale > 0 ? difference / scale : difference
    }

    /// The input quantized by the linear's activation quantizer on both devices: 0 when codes and
    /// scales are identical, else the largest relative difference of the dequantized values.
    private func quantizerDifference(_ input: Tensor, configuration: MiniLMPath) throws -> Double {
        let layout: any QuantizedLayout = configuration == .fp8W8A8
            ? TensorCoreFP8Layout.dynamic : try BlockWiseINT8Layout.activation(blockSize: 128)
        let cpu = try QuantizedTensor.fromFloat(input, layout: layout)
        let gpu = try QuantizedTensor.fromFloat(input.to(.cuda(0)), layout: layout)
        let (cpuCodes, gpuCodes) = (try cpu.data.to(.cpu), try gpu.data.to(.cpu))
        let sameScales = try cpu.scale.floats() == gpu.scale.to(.cpu).floats()
        if sameScales, try cpuCodes.converted(to: .float32).floats() == gpuCodes.converted(to: .float32).floats() {
            return 0
        }
        return try relativeDifference(gpu.dequantize(to: .float32).to(.cpu), cpu.dequantize(to: .float32))
    }
}
