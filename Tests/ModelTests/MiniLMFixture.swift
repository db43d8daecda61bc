import Foundation
import QuantizedLinear
import QLModels
import Testing

/// The model directory and the committed fixture (Tests/Fixtures/minilm) for the MiniLM tests.
///
/// The model is not committed: `scripts/fetch-minilm .models/all-MiniLM-L6-v2` downloads it (CI does,
/// in `.ci/run`). `QLINEAR_MINILM_DIR` overrides the directory. Under `CI=true` a missing model is a
/// failure; elsewhere the tests that need it are skipped with that command.
enum MiniLMFixture {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static var modelDirectory: String {
        ProcessInfo.processInfo.environment["QLINEAR_MINILM_DIR"]
            ?? packageRoot.appendingPathComponent(".models/all-MiniLM-L6-v2").path
    }

    static var fixtureDirectory: URL { packageRoot.appendingPathComponent("Tests/Fixtures/minilm") }

    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    static var modelIsPresent: Bool {
        FileManager.default.fileExists(atPath: modelDirectory + "/model.safetensors")
            && FileManager.default.fileExists(atPath: modelDirectory + "/config.json")
    }

    /// Whether the tests that need the model run: always under CI (where a missing model fails them).
    static var runsModelTests: Bool { modelIsPresent || isCI }

    static let skipMessage: Comment =
        "needs the MiniLM model: run `scripts/fetch-minilm .models/all-MiniLM-L6-v2` (or set QLINEAR_MINILM_DIR)"

    /// The model, or a recorded failure saying how to fetch it.
    static func model() throws -> MiniLM {
        try #require(modelIsPresent, "no model in \(modelDirectory): run scripts/fetch-minilm \(modelDirectory)")
        return try MiniLM(directory: modelDirectory)
    }

    struct Sentences: Decodable {
        let sentences: [String]
        let tokenIDs: [[Int]]
        enum CodingKeys: String, CodingKey {
            case sentences
            case tokenIDs = "token_ids"
        }
    }

    /// Sentences, token ids and the sentence-transformers embeddings (N x 384).
    static func load() throws -> (sentences: [String], tokenIDs: [[Int32]], embeddings: [[Float]]) {
        let data = try Data(contentsOf: fixtureDirectory.appendingPathComponent("sentences.json"))
        let parsed = try JSONDecoder().decode(Sentences.self, from: data)
        let file = try SafetensorsFile(path: fixtureDirectory.appendingPathComponent("embeddings.safetensors").path)
        let table = try file.tensor("embeddings")
        let width = table.shape[1]
        let values = try table.floats()
        let rows = (0..<table.shape[0]).map { Array(values[$0 * width..<($0 + 1) * width]) }
        return (parsed.sentences, parsed.tokenIDs.map { $0.map(Int32.init) }, rows)
    }
}

/// The ways the model tests run the encoder: dense, or all 36 linears quantized (B = 128 for INT8).
enum MiniLMPath: String, CaseIterable, Sendable {
    case float32, int8W8A8, int8WeightOnly, fp8W8A8

    /// Quantizes `model`'s linears for this path (nothing for float32).
    func apply(to model: inout MiniLM) throws {
        switch self {
        case .float32: break
        case .int8W8A8: try model.quantizeLinears(layout: try BlockWiseINT8Layout.weight(blockSize: 128))
        case .int8WeightOnly:
            try model.quantizeLinears(layout: try BlockWiseINT8Layout.weight(blockSize: 128),
                                      floatInput: .dequantizeWeight)
        case .fp8W8A8: try model.quantizeLinears(layout: TensorCoreFP8Layout.dynamic)
        }
    }
}

/// Why the CUDA model suites are skipped here ("" where a GPU is present).
let cudaSkipReason = CUDABackend.unavailableReason.map { "no CUDA GPU here: \($0)" } ?? ""

/// One padded batch: ids and attention mask `(B, S)` int32, and the indices of its sequences.
struct PaddedBatch {
    let ids: Tensor
    let mask: Tensor
    let members: [Int]
}

/// `sequences` in batches of `batchSize`, each padded with id 0 to its longest member; sorted by length
/// first (so padding stays small) unless `sortedByLength` is false.
func paddedBatches(_ sequences: [[Int32]], batchSize: Int = 16, sortedByLength: Bool = true) throws
    -> [PaddedBatch] {
    let order = sortedByLength ? sequences.indices.sorted { sequences[$0].count < sequences[$1].count }
        : Array(sequences.indices)
    return try stride(from: 0, to: order.count, by: batchSize).map { start in
        let members = Array(order[start..<min(start + batchSize, order.count)])
        let length = members.map { sequences[$0].count }.max() ?? 0
        var ids = [Int32]()
        var mask = [Int32]()
        for member in members {
            let sequence = sequences[member]
            ids += sequence + [Int32](repeating: 0, count: length - sequence.count)
            mask += [Int32](repeating: 1, count: sequence.count) + [Int32](repeating: 0, count: length - sequence.count)
        }
        return PaddedBatch(ids: try Tensor(elements: ids, shape: [members.count, length]),
                           mask: try Tensor(elements: mask, shape: [members.count, length]), members: members)
    }
}

/// Runs `model` over token-id sequences in batches of similar length (``paddedBatches(_:batchSize:sortedByLength:)``)
/// and returns the embeddings in the input order.
func embedAll(_ model: MiniLM, _ sequences: [[Int32]], batchSize: Int = 16) throws -> [[Float]] {
    var result = [[Float]](repeating: [], count: sequences.count)
    for batch in try paddedBatches(sequences, batchSize: batchSize) {
        let embeddings = try model.embed(ids: batch.ids, attentionMask: batch.mask)
        let values = try embeddings.floats()
        let width = embeddings.shape[1]
        for (row, member) in batch.members.enumerated() {
            result[member] = Array(values[row * width..<(row + 1) * width])
        }
    }
    return result
}

/// Cosine similarity in float64.
func cosine(_ a: [Float], _ b: [Float]) -> Double {
    var dot = 0.0, na = 0.0, nb = 0.0
    for (x, y) in zip(a, b) {
        dot += Double(x) * Double(y)
        na += Double(x) * Double(x)
        nb += Double(y) * Double(y)
    }
    return dot / max((na * nb).squareRoot(), 1e-300)
}
