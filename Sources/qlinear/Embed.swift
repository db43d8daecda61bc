import Foundation
import QuantizedLinear
import QLModels
import QLNN

/// `qlinear embed`: sentence embeddings of all-MiniLM-L6-v2, with its linears float32, INT8 or FP8.
enum Embed {
    static let command = Subcommand(
        name: "embed",
        summary: "sentence embeddings with all-MiniLM-L6-v2 (float32, INT8 or FP8 linears) on the CPU or CUDA",
        discussion: """
            Embeds each sentence of --input with the sentence-transformers model in --model (config.json,
            model.safetensors, vocab.txt; get it with `scripts/fetch-minilm .models/all-MiniLM-L6-v2`): a
            384-dimensional unit vector per sentence, in input order. Input: .jsonl (one JSON string per
            line, so a sentence may hold newlines), .txt (one sentence per line), or - for standard input
            (text; --input-format jsonl for JSON lines). Output: .safetensors (one F32 tensor `embeddings`,
            N x 384) or .jsonl (one array per line); JSON lines on standard output by default.
            """,
        options: [
            .text("model", placeholder: "DIR", "the model directory (required)"),
            .text("input", placeholder: "FILE", "the sentences: .jsonl, .txt, or - for standard input (required)"),
            .choice("input-format", ["auto", "jsonl", "txt"], default: "auto",
                    "jsonl or txt instead of guessing from the extension"),
            .text("output", placeholder: "FILE", default: "-", "a .safetensors or .jsonl file, or - for stdout"),
        ] + EmbedModelOptions.declared + [
            .integer("batch-size", default: 32, in: 1...65536, "sentences per forward pass"),
            .flag("progress", "draw the progress bar even when stderr is not a terminal"),
        ],
        validate: { arguments in
            guard arguments.string("model") != nil else {
                throw TensorError(.invalidArgument, "embed needs --model DIR (the all-MiniLM-L6-v2 directory; "
                    + "fetch it with `scripts/fetch-minilm .models/all-MiniLM-L6-v2`)")
            }
            guard let input = arguments.string("input") else {
                throw TensorError(.invalidArgument, "embed needs --input FILE (.jsonl, .txt, or - for standard input)")
            }
            _ = try output(arguments.string("output"))
            _ = try EmbedInput.format(of: input, explicit: inputFormat(arguments))
            _ = try EmbedModelOptions(arguments)
        },
        run: run)

    /// `--input-format` when given explicitly.
    static func inputFormat(_ arguments: ParsedArguments) -> String? {
        let value = arguments.string("input-format")
        return value == "auto" ? nil : value
    }

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

    static func run(_ arguments: ParsedArguments) throws {
        let directory = arguments.string("model")!
        let inputPath = arguments.string("input")!
        let batchSize = arguments.int("batch-size")
        let output = try output(arguments.string("output"))
        let options = try EmbedModelOptions(arguments)
        let format = try EmbedInput.format(of: inputPath, explicit: inputFormat(arguments))
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
