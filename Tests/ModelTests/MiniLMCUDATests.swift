import QuantizedLinear
import QLModels
import QLNN
import Testing

private let gpuReason = CUDABackend.unavailableReason.map { "no CUDA GPU here: \($0)" } ?? ""

/// The whole encoder on the GPU against the same model on the CPU: same layout, same weights, the
/// activations never leaving the device (only the embeddings come back).
@Suite("MiniLM on CUDA equals the CPU", .enabled(if: CUDABackend.isAvailable, "\(gpuReason)"),
       .enabled(if: MiniLMFixture.runsModelTests, MiniLMFixture.skipMessage))
struct MiniLMCUDATests {
    enum Configuration: String, CaseIterable, Sendable {
        case float32, int8W8A8, int8WeightOnly, fp8W8A8
    }

    @Test("CUDA embeddings: cosine >= 0.9999 against the CPU's for every sentence", arguments: Configuration.allCases)
    func cudaMatchesCPU(configuration: Configuration) throws {
        var model = try MiniLMFixture.model()
        switch configuration {
        case .float32: break
        case .int8W8A8: try model.quantizeLinears(layout: try BlockWiseINT8Layout.weight(blockSize: 128))
        case .int8WeightOnly:
            try model.quantizeLinears(layout: try BlockWiseINT8Layout.weight(blockSize: 128),
                                      floatInput: .dequantizeWeight)
        case .fp8W8A8: try model.quantizeLinears(layout: TensorCoreFP8Layout.dynamic)
        }
        let fixture = try MiniLMFixture.load()
        let gpuModel = try model.moved(to: .cuda(0))
        #expect(gpuModel.device == .cuda(0))
        let (cpu, gpu) = try FallbackPolicy.withPolicy(.fail) {
            (try embedAll(model, fixture.tokenIDs), try embedAll(gpuModel, fixture.tokenIDs))
        }
        let cosines = zip(cpu, gpu).map { cosine($0, $1) }
        #expect(cosines.min()! >= 0.9999, "min \(cosines.min()!) (\(configuration))")
    }
}
