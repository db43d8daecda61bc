import Foundation
import QuantizedLinear
import Testing

/// The committed MiniLM fixture (`Tests/Fixtures/minilm`, written by `scripts/make-minilm-fixture.py`):
/// sentences, their Hugging Face token ids and sentence-transformers embeddings.
///
/// ```swift
/// let fixture = try MiniLMFixture.load()
/// fixture.sentences[i]     // String
/// fixture.tokenIDs[i]      // [Int32], [CLS] ... [SEP], at most fixture.maxSequenceLength
/// fixture.embeddings       // Tensor F32 [N, 384], rows L2-normalized
/// ```
struct MiniLMFixture: Sendable {
    let model: String
    let maxSequenceLength: Int
    let sentences: [String]
    let tokenIDs: [[Int32]]
    let embeddings: Tensor

    /// `Tests/Fixtures/minilm` of this checkout.
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/minilm")

    private struct SentencesFile: Decodable {
        let model: String
        let maxSequenceLength: Int
        let sentences: [String]
        let tokenIDs: [[Int32]]

        enum CodingKeys: String, CodingKey {
            case model, sentences
            case maxSequenceLength = "max_seq_length"
            case tokenIDs = "token_ids"
        }
    }

    static func load() throws -> MiniLMFixture {
        let data = try Data(contentsOf: directory.appendingPathComponent("sentences.json"))
        let file = try JSONDecoder().decode(SentencesFile.self, from: data)
        let embeddings = try SafetensorsFile(path: directory.appendingPathComponent("embeddings.safetensors").path)
            .tensor("embeddings")
        guard file.sentences.count == file.tokenIDs.count, embeddings.shape == [file.sentences.count, 384] else {
            throw TensorError(.checkpointFormat, "the MiniLM fixture is inconsistent (\(file.sentences.count) "
                + "sentences, \(file.tokenIDs.count) id lists, embeddings \(embeddings.shape)); "
                + "rerun scripts/make-minilm-fixture.py")
        }
        return MiniLMFixture(model: file.model, maxSequenceLength: file.maxSequenceLength, sentences: file.sentences,
                             tokenIDs: file.tokenIDs, embeddings: embeddings)
    }

    /// `bench-sentences.jsonl`: 1,000 generated sentences of 16-128 tokens.
    static func benchSentences() throws -> [String] {
        let text = try String(contentsOf: directory.appendingPathComponent("bench-sentences.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONDecoder().decode(String.self, from: Data($0.utf8)) }
    }
}

/// Where the tests find the fetched model, and the rule for when it is missing: under `CI=true` a test that
/// needs it runs and fails (``requireDirectory()`` throws); elsewhere it is skipped with a message.
///
/// ```swift
/// @Test(.enabled(if: MiniLMModel.shouldRun, MiniLMModel.skipComment))
/// func something() throws {
///     let directory = try MiniLMModel.requireDirectory()
/// }
/// ```
enum MiniLMModel {
    /// `QLINEAR_MINILM_DIR`, else `.models/all-MiniLM-L6-v2` under the package root.
    static let directory: String = {
        if let configured = ProcessInfo.processInfo.environment["QLINEAR_MINILM_DIR"], !configured.isEmpty {
            return configured
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".models/all-MiniLM-L6-v2").path
    }()

    static var isAvailable: Bool {
        ["vocab.txt", "config.json", "model.safetensors"].allSatisfy {
            FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent($0))
        }
    }

    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Run when the model is there, and always under CI (where a missing model is a failure).
    static var shouldRun: Bool { isAvailable || isCI }

    static let skipComment = Comment(rawValue: "MiniLM model not found (QLINEAR_MINILM_DIR or "
        + ".models/all-MiniLM-L6-v2): fetch it with scripts/fetch-minilm .models/all-MiniLM-L6-v2")

    /// The model directory; throws (so the test fails) when it is missing.
    static func requireDirectory() throws -> String {
        guard isAvailable else {
            throw TensorError(.io, "the MiniLM model is missing at \(directory) (CI=true needs it): run "
                + "scripts/fetch-minilm .models/all-MiniLM-L6-v2 first, as .ci/run does")
        }
        return directory
    }
}
