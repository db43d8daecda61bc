import QuantizedLinear
@testable import QLModels
import QLNN
import Testing

/// How far a last-bit change of the encoder's input moves its embeddings, on the CPU alone: the
/// evidence behind the CUDA-vs-CPU bounds of ``MiniLMCUDATests``. Every element of the embedding layer's
/// output is multiplied by `1 - u`, `1` or `1 + u` (u = 2^-23, in a fixed pattern), the size of the
/// differences two correct float implementations have. The float32 model barely moves; the models that
/// quantize activations move by far more than 1e-4 in cosine, because a value near a rounding boundary
/// lands on the other code and the next layers carry that on.
@Suite("MiniLM sensitivity to a 1-ulp input change",
       .enabled(if: MiniLMFixture.runsModelTests, MiniLMFixture.skipMessage))
struct MiniLMSensitivityTests {
    @Test("fp32 stays within 1e-9 in cosine; W8A8 and FP8 move below 0.9999",
          arguments: [MiniLMPath.float32, .int8W8A8, .fp8W8A8])
    func oneULPPerturbation(configuration: MiniLMPath) throws {
        var model = try MiniLMFixture.model()
        try configuration.apply(to: &model)
        let sequences = try MiniLMFixture.load().tokenIDs
        var cosines: [Double] = []
        for batch in try paddedBatches(sequences, sortedByLength: false) {
            let additiveMask = try MiniLM.additiveMask(batch.mask)
            func embed(perturbed: Bool) throws -> [Float] {
                var hidden = try model.embeddings(batch.ids)
                if perturbed {
                    let factors = (0..<hidden.count).map { Float(1) + Float($0 % 3 - 1) * Float.ulpOfOne }
                    hidden = try multiply(hidden, Tensor(factors, shape: hidden.shape))
                }
                for layer in model.layers { hidden = try layer(hidden, additiveMask: additiveMask) }
                return try l2Normalize(maskedMeanPool(hidden, mask: batch.mask), epsilon: 1e-12).floats()
            }
            let (plain, perturbed) = (try embed(perturbed: false), try embed(perturbed: true))
            let width = plain.count / batch.members.count
            for row in batch.members.indices {
                let range = row * width..<(row + 1) * width
                cosines.append(cosine(Array(plain[range]), Array(perturbed[range])))
            }
        }
        let smallest = cosines.min()!
        print("MiniLM \(configuration): min cosine after a 1-ulp input perturbation \(smallest)")
        if configuration == .float32 {
            #expect(smallest >= 1 - 1e-9, "min \(smallest)")
        } else {
            #expect(smallest < 0.9999, """
                min \(smallest): the quantized model no longer amplifies last-bit differences this much, \
                so MiniLMCUDATests' bounds can be tightened
                """)
        }
    }
}
