import Foundation
import QuantizedLinear
import Testing

/// The Swift tokenizer against Hugging Face `tokenizers` on the committed fixture.
@Suite struct TokenizerFixtureTests {
    /// Token ids of every fixture sentence equal `tokenizers`' ids from the model's tokenizer.json.
    @Test(.enabled(if: MiniLMModel.shouldRun, MiniLMModel.skipComment))
    func tokenIDsEqualHuggingFace() throws {
        let tokenizer = try WordPieceTokenizer(modelDirectory: try MiniLMModel.requireDirectory())
        let fixture = try MiniLMFixture.load()
        #expect(tokenizer.maxSequenceLength == fixture.maxSequenceLength)
        #expect(fixture.sentences.count >= 40)
        for (index, sentence) in fixture.sentences.enumerated() {
            let ids = tokenizer.encode(sentence)
            let expected = fixture.tokenIDs[index]
            let first = zip(ids, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                ?? min(ids.count, expected.count)
            #expect(ids == expected, """
                sentence \(index) \(String(reflecting: sentence.prefix(60))): first difference at \(first), \
                Swift \(Array(ids[first...].prefix(8))) vs tokenizers \(Array(expected[first...].prefix(8)))
                """)
        }
    }

    /// One batch of all fixture sentences: rows are the fixture ids, padded with [PAD] (0), mask 1 on tokens.
    @Test(.enabled(if: MiniLMModel.shouldRun, MiniLMModel.skipComment))
    func fixtureBatch() throws {
        let tokenizer = try WordPieceTokenizer(modelDirectory: try MiniLMModel.requireDirectory())
        let fixture = try MiniLMFixture.load()
        let batch = try tokenizer.batch(fixture.sentences)
        let width = fixture.tokenIDs.map(\.count).max()!
        #expect(width == 256)
        #expect(batch.ids.shape == [fixture.sentences.count, width])
        #expect(batch.lengths == fixture.tokenIDs.map(\.count))
        let padded = fixture.tokenIDs.flatMap { $0 + Array(repeating: 0, count: width - $0.count) }
        let mask = fixture.tokenIDs.flatMap { Array(repeating: Int32(1), count: $0.count)
            + Array(repeating: 0, count: width - $0.count) }
        #expect(try batch.ids.elements(as: Int32.self) == padded)
        #expect(try batch.attentionMask.elements(as: Int32.self) == mask)
    }

    /// The benchmark set: 1,000 sentences of 16-128 tokens each.
    @Test(.enabled(if: MiniLMModel.shouldRun, MiniLMModel.skipComment))
    func benchSentencesHaveTheirLengths() throws {
        let tokenizer = try WordPieceTokenizer(modelDirectory: try MiniLMModel.requireDirectory())
        let sentences = try MiniLMFixture.benchSentences()
        #expect(sentences.count == 1000)
        let lengths = sentences.map { tokenizer.encode($0).count }
        #expect(lengths.allSatisfy { (16...128).contains($0) })
        #expect(lengths.min() == 16 && lengths.max() == 128)
    }
}

/// Code points through the normaliser and the pre-tokenizer, against `tokenizers` (hashes per block of 4,096
/// in normalizer-blocks.json, written by scripts/make-minilm-fixture.py). Needs no model.
///
/// Every block of planes 0-3 and 14 (all assigned characters of Unicode 17 are there); of planes 4-13
/// (unassigned) and 15-16 (private use) the first and last block, to keep the debug-build test short.
@Suite struct NormalizerUnicodeTests {
    struct Block: Decodable {
        let start: Int
        let normalized: String
        let words: String
    }

    struct BlocksFile: Decodable {
        let blockSize: Int
        let blocks: [Block]

        enum CodingKeys: String, CodingKey {
            case blocks
            case blockSize = "block_size"
        }
    }

    static let file = Result {
        let url = MiniLMFixture.directory.appendingPathComponent("normalizer-blocks.json")
        return try JSONDecoder().decode(BlocksFile.self, from: Data(contentsOf: url))
    }

    static let fnvOffsetBasis: UInt64 = 0xCBF2_9CE4_8422_2325

    /// FNV-1a 64 of `bytes`, continuing from `hash`.
    static func fnv1a64(_ hash: inout UInt64, _ bytes: some Sequence<UInt8>) {
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
    }

    static func hex(_ hash: UInt64) -> String {
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    @Test func fixtureCoversAllOfUnicode() throws {
        let file = try Self.file.get()
        #expect(file.blocks.map(\.start) == Array(stride(from: 0, to: 0x110000, by: file.blockSize)))
    }

    @Test(arguments: 0...16)
    func codePointsMatchTokenizers(plane: Int) throws {
        let file = try Self.file.get()
        let inPlane = file.blocks.filter { $0.start >> 16 == plane }
        let blocks = [0, 1, 2, 3, 14].contains(plane) ? inPlane : [inPlane.first!, inPlane.last!]
        let normalizer = BertNormalizer()
        var mismatched: [String] = []
        for block in blocks {
            // Each code point then a space (a starter: no reordering crosses it), and as "a<c>a ".
            var text = String.UnicodeScalarView()
            var wordText = String.UnicodeScalarView()
            for value in block.start..<(block.start + file.blockSize) {
                guard let scalar = Unicode.Scalar(UInt32(value)) else { continue }   // surrogates
                text.append(scalar)
                text.append(" ")
                wordText.append("a")
                wordText.append(scalar)
                wordText.append("a")
                wordText.append(" ")
            }
            var normalized = Self.fnvOffsetBasis
            Self.fnv1a64(&normalized, normalizer.normalize(String(text)).utf8)
            var words = Self.fnvOffsetBasis
            for word in BertPreTokenizer.words(in: String(wordText)) {
                Self.fnv1a64(&words, word.utf8)
                Self.fnv1a64(&words, CollectionOfOne(0xFF))
            }
            if Self.hex(normalized) != block.normalized || Self.hex(words) != block.words {
                mismatched.append(String(block.start, radix: 16))
            }
        }
        #expect(mismatched.isEmpty, "blocks (first code point, hex) that differ from tokenizers: \(mismatched)")
    }
}

/// The README's tokenizer lines, as written there.
@Suite struct TokenizerReadmeTests {
    @Test(.enabled(if: MiniLMModel.shouldRun, MiniLMModel.skipComment))
    func readmeExample() throws {
        let tokenizer = try WordPieceTokenizer(modelDirectory: try MiniLMModel.requireDirectory())
        #expect(tokenizer.encode("Hello, world!") == [101, 7592, 1010, 2088, 999, 102])
        let batch = try tokenizer.batch(["Hello, world!", "A longer second sentence."])
        #expect(batch.ids.shape == [2, 7] && batch.attentionMask.shape == [2, 7])
        #expect(batch.lengths == [6, 7])
    }
}
