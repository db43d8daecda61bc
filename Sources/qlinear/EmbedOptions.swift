import Foundation
import QuantizedLinear
import QLModels
import QLNN

/// The model options `embed` and `bench-embed` share: which linears' format, and the device.
struct EmbedModelOptions {
    enum Format: Equatable {
        case none
        case int8Blockwise(blockSize: Int, rounding: Rounding)
        case float8
    }

    var format = Format.none
    var floatInput = LinearOptions.FloatInputMode.quantizeInput
    var device = Device.cpu

    static let help = """
          --format F          linear layers: none (float32, default), int8_blockwise, float8_e4m3fn
          --block-size B      INT8 block size, default 128
          --rounding R        INT8 rounding: nearest (default, half to even) or toward-zero
          --weight-only       use quantized weights dequantized (float activations) instead of W8A8
          --device D          cpu (default) or cuda (GPU 0; cuda:N for GPU N)
        """

    init() {}

    init(_ arguments: CommandArguments) throws {
        let command = arguments.command
        let blockSize = try arguments.int("block-size", default: 128)
        guard blockSize > 0 else {
            throw TensorError(.invalidBlockSize, "\(command): --block-size must be positive, got \(blockSize)")
        }
        let rounding: Rounding
        switch arguments.string("rounding") ?? "nearest" {
        case "nearest", "nearest-even": rounding = .nearestEven
        case "toward-zero", "truncate": rounding = .towardZero
        case let other:
            throw TensorError(.invalidArgument, "\(command): --rounding `\(other)` is not nearest or toward-zero")
        }
        switch arguments.string("format") ?? "none" {
        case "none", "float32", "fp32": format = .none
        case "int8_blockwise", "int8": format = .int8Blockwise(blockSize: blockSize, rounding: rounding)
        case "float8_e4m3fn", "fp8": format = .float8
        case let other:
            throw TensorError(.invalidArgument, "\(command): --format `\(other)` is not none, int8_blockwise or "
                + "float8_e4m3fn")
        }
        floatInput = arguments.flag("weight-only") ? .dequantizeWeight : .quantizeInput
        device = try Self.device(arguments.string("device") ?? "cpu", command: command)
    }

    static func device(_ text: String, command: String) throws -> Device {
        if text == "cpu" { return .cpu }
        if text == "cuda" { return .cuda(0) }
        if text.hasPrefix("cuda:"), let ordinal = Int(text.dropFirst(5)), ordinal >= 0 { return .cuda(ordinal) }
        throw TensorError(.invalidArgument, "\(command): --device `\(text)` is not cpu, cuda or cuda:N")
    }

    /// A short name for reports: `fp32`, `int8 W8A8 B128 nearest`, `fp8 weight-only`, ...
    var label: String {
        let mode = floatInput == .quantizeInput ? "W8A8" : "weight-only"
        switch format {
        case .none: return "fp32"
        case .int8Blockwise(let b, let rounding):
            return "int8 \(mode) B\(b)" + (rounding == .towardZero ? " toward-zero" : "")
        case .float8: return "fp8 \(mode)"
        }
    }

    /// The model of `directory` with its linears in this format, on this device.
    func loadModel(directory: String) throws -> (MiniLM, QuantizationReport?) {
        var model = try MiniLM(directory: directory)
        var report: QuantizationReport?
        switch format {
        case .none: break
        case .int8Blockwise(let blockSize, let rounding):
            report = try model.quantizeLinears(layout: try BlockWiseINT8Layout.weight(blockSize: blockSize,
                                                                                      rounding: rounding),
                                               floatInput: floatInput)
        case .float8:
            report = try model.quantizeLinears(layout: TensorCoreFP8Layout.dynamic, floatInput: floatInput)
        }
        if device != .cpu {
            model = try model.moved(to: device)
        }
        return (model, report)
    }
}

/// Sentences run through tokenizer and model in batches of similar length (as sentence-transformers
/// does: sorted by token count, so padding stays small), embeddings returned in input order.
struct SentenceEncoder {
    let model: MiniLM
    let tokenizer: WordPieceTokenizer
    let batchSize: Int

    /// `(sentences.count, hidden)` float32 values, row per sentence; `progress(done)` after each batch.
    func embed(_ sentences: [String], progress: (Int) -> Void = { _ in }) throws -> [[Float]] {
        let tokens = sentences.map(tokenizer.encode)
        let order = tokens.indices.sorted { tokens[$0].count < tokens[$1].count }
        var result = [[Float]](repeating: [], count: sentences.count)
        var done = 0
        for start in stride(from: 0, to: order.count, by: batchSize) {
            let members = Array(order[start..<min(start + batchSize, order.count)])
            let batch = try TokenBatch(sequences: members.map { tokens[$0] }, paddingID: tokenizer.paddingID)
            let embeddings = try model.embed(ids: batch.ids, attentionMask: batch.attentionMask)
            let values = try embeddings.floats()
            let width = embeddings.shape[1]
            for (row, member) in members.enumerated() {
                result[member] = Array(values[row * width..<(row + 1) * width])
            }
            done += members.count
            progress(done)
        }
        return result
    }
}
