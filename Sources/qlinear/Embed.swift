import Foundation
import QuantizedLinear
import QLModels
import QLNN

/// `qlinear embed`: sentence embeddings of all-MiniLM-L6-v2, with its linears float32, INT8 or FP8.
enum Embed {
    static let command = Subcommand(
        name: "embed",
        summary: "sentence embeddings with all-MiniLM-L6-v2 (float32, INT8 or FP8 linears) on the CPU or CUDA",
        help: """
            usage: qlinear embed --model DIR --input FILE [--output FILE] [options]

            Embeds each sentence of FILE with the sentence-transformers model in DIR (config.json,
            model.safetensors, vocab.txt; get it with `scripts/fetch-minilm .models/all-MiniLM-L6-v2`):
            a 384-dimensional unit vector per sentence, in input order.

              --model DIR         the model directory
              --input FILE        .jsonl (one JSON string per line), .txt (one sentence per line),
                                  or - for standard input (text; --input-format jsonl for JSON lines)
              --input-format F    jsonl or txt, instead of guessing from the extension
              --output FILE       .safetensors (one F32 tensor `embeddings`, N x 384) or .jsonl (one
                                  array per line); default: JSON lines on standard output
            \(EmbedModelOptions.help)
              --batch-size N      sentences per forward pass, default 32
              --progress          draw the progress bar even when stderr is not a terminal
            """,
        run: run)

    enum Output: Equatable {
        case standardOutput
        case jsonl(String)
        case safetensors(String)
    }

    static func output(_ path: String?) throws -> Output {
        guard let path, path != "-" else { return .standardOutput }
        switch (path as NSString).pathExtension.lowercased() {
        case "jsonl": return .jsonl(path)
        case "safetensors": return .safetensors(path)
        default:
            throw TensorError(.invalidArgument, "embed: --output `\(path)` must end in .safetensors or .jsonl "
                + "(or be - for JSON lines on standard output)")
        }
    }

    static func run(_ arguments: CommandArguments) throws {
        guard arguments.positional.isEmpty else {
            throw TensorError(.invalidArgument, "embed takes options only, got \(arguments.positional); "
                + "see `qlinear embed --help`")
        }
        guard let directory = arguments.string("model") else {
            throw TensorError(.invalidArgument, "embed needs --model DIR (the all-MiniLM-L6-v2 directory; fetch it "
                + "with `scripts/fetch-minilm .models/all-MiniLM-L6-v2`)")
        }
        guard let inputPath = arguments.string("input") else {
            throw TensorError(.invalidArgument, "embed needs --input FILE (.jsonl, .txt, or - for standard input)")
        }
        let batchSize = try arguments.int("batch-size", default: 32)
        guard batchSize > 0 else {
            throw TensorError(.invalidArgument, "embed: --batch-size must be positive, got \(batchSize)")
        }
        let output = try output(arguments.string("output"))
        let options = try EmbedModelOptions(arguments)
        let format = try EmbedInput.format(of: inputPath, explicit: arguments.string("input-format"))
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TensorError(.io, "embed: the model directory `\(directory)` does not exist; fetch the model with "
                + "`scripts/fetch-minilm \(directory)`")
        }
        let sentences = try EmbedInput.read(inputPath, format: format)
        let tokenizer = try WordPieceTokenizer(modelDirectory: directory)
        let (model, _) = try options.loadModel(directory: directory)
        let encoder = SentenceEncoder(model: model, tokenizer: tokenizer, batchSize: batchSize)
        let bar = ProgressBar(forced: arguments.flag("progress"))
        let embeddings: [[Float]]
        do {
            embeddings = try encoder.embed(sentences) { done in
                bar.update(done: done, total: sentences.count, unit: "sentences", bytesDone: 0, bytesTotal: 0,
                           current: options.label)
            }
        } catch {
            bar.finish()
            throw error
        }
        bar.finish()
        try write(embeddings, to: output, width: model.configuration.hiddenSize)
    }

    static func write(_ embeddings: [[Float]], to output: Output, width: Int) throws {
        switch output {
        case .safetensors(let path):
            let tensor = try Tensor(embeddings.flatMap { $0 }, shape: [embeddings.count, width])
            try SafetensorsWriter.write([("embeddings", tensor)], to: path)
        case .jsonl(let path):
            do {
                try jsonLines(embeddings).write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch {
                throw TensorError(.io, "embed: cannot write `\(path)`", underlying: "\(error)")
            }
        case .standardOutput:
            FileHandle.standardOutput.write(jsonLines(embeddings))
        }
    }

    /// One JSON array per embedding, each float in its shortest round-trip form.
    static func jsonLines(_ embeddings: [[Float]]) -> Data {
        var text = ""
        for row in embeddings { text += "[" + row.map { "\($0)" }.joined(separator: ",") + "]\n" }
        return Data(text.utf8)
    }
}
