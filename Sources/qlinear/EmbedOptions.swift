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
    /// Quantize the embedding tables too (1 x B INT8 blocks per row, or FP8, as the linears' format).
    var quantizeEmbeddings = false
    var device = Device.cpu

    /// The options of `embed` and `bench-embed` that choose the model's format and device.
    static let declared: [CommandOption] = [
        .choice("format", ["none", "int8_blockwise", "float8_e4m3fn"],
                aliases: ["fp32": "none", "float32": "none", "int8": "int8_blockwise", "fp8": "float8_e4m3fn"],
                default: "none", "the linear layers: float32, block-wise INT8 or per-tensor FP8"),
        .integer("block-size", placeholder: "B", default: 128, in: 1...(1 << 24), "INT8 block size"),
        .choice("rounding", ["nearest", "toward-zero"], aliases: ["nearest-even": "nearest", "truncate": "toward-zero"],
                default: "nearest", "INT8 rounding: half to even, or truncation"),
        .flag("weight-only", "use quantized weights dequantized (float activations) instead of W8A8"),
        .flag("quantize-embeddings", "quantize the embedding tables too (INT8: 1 x B blocks per row), with --format"),
        .text("device", placeholder: "D", default: "cpu", validate: { _ = try device($0, command: "qlinear") },
              "cpu, cuda (GPU 0) or cuda:N"),
    ]

    init() {}

    /// The options as parsed (values already checked against `declared`).
    init(_ arguments: ParsedArguments) throws {
        let rounding: Rounding = arguments.string("rounding") == "toward-zero" ? .towardZero : .nearestEven
        switch arguments.string("format") {
        case "int8_blockwise": format = .int8Blockwise(blockSize: arguments.int("block-size"), rounding: rounding)
        case "float8_e4m3fn": format = .float8
        default: format = .none
        }
        floatInput = arguments.flag("weight-only") ? .dequantizeWeight : .quantizeInput
        quantizeEmbeddings = arguments.flag("quantize-embeddings")
        if quantizeEmbeddings && format == .none {
            throw TensorError(.invalidArgument, "\(arguments.command.name): --quantize-embeddings needs --format "
                + "int8_blockwise or float8_e4m3fn")
        }
        device = try Self.device(arguments.string("device") ?? "cpu", command: arguments.command.name)
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
        let tables = quantizeEmbeddings ? " +tables" : ""
        switch format {
        case .none: return "fp32"
        case .int8Blockwise(let b, let rounding):
            return "int8 \(mode) B\(b)" + (rounding == .towardZero ? " toward-zero" : "") + tables
        case .float8: return "fp8 \(mode)" + tables
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
            if quantizeEmbeddings {
                try model.quantizeEmbeddings(layout: try BlockWiseINT8Layout.activation(blockSize: blockSize,
                                                                                        rounding: rounding))
            }
        case .float8:
            report = try model.quantizeLinears(layout: TensorCoreFP8Layout.dynamic, floatInput: floatInput)
            if quantizeEmbeddings { try model.quantizeEmbeddings(layout: TensorCoreFP8Layout.dynamic) }
        }
        if device != .cpu {
            model = try model.moved(to: device)
        }
        return (model, report)
    }
}

/// Sentences run through tokenizer and model in batches of similar length (as sentence-transformers
/// does: longest first, so padding stays small), embeddings returned in input order.
///
/// Longest first also lets every later batch reuse the buffers of an earlier, larger one
/// (``HostBufferPool``); shortest first would need a slightly larger buffer every batch, each one
/// fresh memory that the kernel zero-fills on first touch.
struct SentenceEncoder {
    let model: MiniLM
    let tokenizer: WordPieceTokenizer
    let batchSize: Int

    /// `(sentences.count, hidden)` float32 values, row per sentence; `progress(done)` after each batch.
    func embed(_ sentences: [String], progress: (Int) -> Void = { _ in }) throws -> [[Float]] {
        let tokens = sentences.map(tokenizer.encode)
        let order = tokens.indices.sorted { tokens[$0].count > tokens[$1].count }
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
