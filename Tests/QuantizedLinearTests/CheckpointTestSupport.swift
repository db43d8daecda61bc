import Foundation
import QuantizedLinear
import Testing

/// A fresh directory under the system's temporary directory, removed when the test is done with it.
final class CheckpointScratch {
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "checkpoint-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    func path(_ name: String) -> String { directory + "/" + name }

    /// The files in the directory (to check nothing was left behind).
    func contents() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: directory).sorted() }
}

/// Bytes of a safetensors file built by hand: 8-byte little-endian length, header, data.
func safetensorsBytes(header: String, padTo alignment: Int = 1, data: [UInt8]) -> [UInt8] {
    var headerBytes = Array(header.utf8)
    while (8 + headerBytes.count) % alignment != 0 { headerBytes.append(0x20) }
    let length = UInt64(headerBytes.count)
    return (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) } + headerBytes + data
}

func littleEndianBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { value in (0..<4).map { UInt8(truncatingIfNeeded: value.bitPattern >> (8 * UInt32($0))) } }
}

func writeFile(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func readFile(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// Runs `body`, expecting a ``TensorError`` with `code` whose message mentions every string in `mentions`.
func expectCheckpointError(_ code: TensorError.Code, mentioning mentions: [String],
                           sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected a \(code) error mentioning \(mentions), got success", sourceLocation: sourceLocation)
    } catch let error as TensorError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        for text in mentions {
            #expect(error.message.contains(text), "`\(text)` missing from: \(error.message)",
                    sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("expected a TensorError, got \(error)", sourceLocation: sourceLocation)
    }
}

/// Float bit patterns, for bit-for-bit comparisons.
func bits(_ tensor: Tensor) throws -> [UInt32] { try tensor.floats().map(\.bitPattern) }
