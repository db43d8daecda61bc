import Foundation
import QuantizedLinear
import QLModels
import QLNN

/// `qlinear bench-embed`: sentences per second and peak resident memory of all-MiniLM-L6-v2 with its
/// linears float32, INT8 W8A8 (with dense or INT8 embedding tables), INT8 weight-only and FP8 W8A8, side by
/// side in one run.
enum BenchmarkEmbed {
    static let command = Subcommand(
        name: "bench-embed",
        summary: "MiniLM sentence-embedding throughput and memory for fp32, INT8 (W8A8, weight-only) and FP8",
        discussion: """
            For each configuration (fp32, int8 W8A8 B128, the same with INT8 embedding tables, int8
            weight-only B128, fp8 W8A8) and each sentence set: one warm-up pass, then the median of
            --repeats timed passes of tokenize + embed over the whole set at --batch-size (sentences
            sorted by length first, as sentence-transformers does).
            Reports sentences/s, the process's peak resident memory during the passes (VmHWM, reset per
            configuration) and the bytes of the model's parameters. Default sets: the fixture's sentences
            (Tests/Fixtures/minilm/sentences.json) and Tests/Fixtures/minilm/bench-sentences.jsonl.
            """,
        options: [
            .text("model", placeholder: "DIR", "the model directory (required)"),
            .text("sentences", placeholder: "FILE", repeatable: true, "a .jsonl or .txt sentence set"),
            .integer("batch-size", default: 32, in: 1...65536, "sentences per forward pass (256 on a GPU)"),
            .text("device", placeholder: "D", default: "cpu",
                  validate: { _ = try EmbedModelOptions.device($0, command: "bench-embed") }, "cpu, cuda or cuda:N"),
            .integer("repeats", default: 3, in: 1...1000, "timed passes per measurement"),
            .text("json", placeholder: "OUT", "also write the results as JSON"),
            .text("configurations", placeholder: "LIST", default: configurationNames.joined(separator: ","),
                  validate: { _ = try parseConfigurations($0) }, "which to run: "
                  + configurationNames.joined(separator: ", ")),
        ],
        validate: { arguments in
            guard arguments.string("model") != nil else {
                throw TensorError(.invalidArgument, "bench-embed needs --model DIR (fetch it with "
                    + "`scripts/fetch-minilm .models/all-MiniLM-L6-v2`)")
            }
        },
        run: run)

    struct Result: Codable {
        let configuration: String
        let sentenceSet: String
        let sentences: Int
        let tokens: Int
        let sentencesPerSecond: Double
        let peakResidentBytes: Int
        let parameterBytes: Int
        let linearBytes: Int
    }

    struct Report: Codable {
        let machine: String
        let device: String
        let batchSize: Int
        let openBLAS: String
        let results: [Result]
    }

    static func run(_ arguments: ParsedArguments) throws {
        let directory = arguments.string("model")!
        let batchSize = arguments.int("batch-size")
        let repeats = arguments.int("repeats")
        let device = try EmbedModelOptions.device(arguments.string("device") ?? "cpu", command: "bench-embed")
        let sets = try sentenceSets(arguments.strings("sentences"))
        let tokenizer = try WordPieceTokenizer(modelDirectory: directory)
        var configurations: [EmbedModelOptions] = []
        let chosen = try parseConfigurations(arguments.string("configurations")
            ?? configurationNames.joined(separator: ","))
        let int8 = EmbedModelOptions.Format.int8Blockwise(blockSize: 128, rounding: .nearestEven)
        for (name, format, floatInput, tables) in [
            ("fp32", EmbedModelOptions.Format.none, LinearOptions.FloatInputMode.quantizeInput, false),
            ("w8a8", int8, .quantizeInput, false), ("w8a8-tables", int8, .quantizeInput, true),
            ("weight-only", int8, .dequantizeWeight, false), ("fp8", .float8, .quantizeInput, false),
        ] where chosen.contains(name) {
            var options = EmbedModelOptions()
            options.format = format
            options.floatInput = floatInput
            options.quantizeEmbeddings = tables
            options.device = device
            configurations.append(options)
        }
        print("bench-embed: \(Benchmark.machineDescription()), device \(device), batch \(batchSize), "
            + "\(OpenBLAS.shared.summary)")
        print(Benchmark.pad("configuration", 26) + Benchmark.pad("sentences", 30) + Benchmark.pad("sent/s", 10)
            + Benchmark.pad("vs fp32", 9) + Benchmark.pad("peak RSS", 12) + Benchmark.pad("params", 11) + "linears")
        var results: [Result] = []
        for options in configurations {
            // The buffers the previous configuration left idle in the pool would count in this one's
            // peak: give them back first.
            HostBufferPool.shared.purge()
            let (model, _) = try options.loadModel(directory: directory)
            let encoder = SentenceEncoder(model: model, tokenizer: tokenizer, batchSize: batchSize)
            let linearBytes = model.linears.map(\.layer.byteCount).reduce(0, +)
            for (name, sentences) in sets {
                resetPeak()
                _ = try encoder.embed(sentences)
                var times: [Double] = []
                for _ in 0..<repeats {
                    let start = DispatchTime.now().uptimeNanoseconds
                    _ = try encoder.embed(sentences)
                    times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                }
                let median = times.sorted()[times.count / 2]
                let tokens = sentences.map { tokenizer.encode($0).count }.reduce(0, +)
                let result = Result(configuration: options.label, sentenceSet: name, sentences: sentences.count,
                                    tokens: tokens, sentencesPerSecond: Double(sentences.count) / median,
                                    peakResidentBytes: peakResident(), parameterBytes: model.parameterByteCount,
                                    linearBytes: linearBytes)
                results.append(result)
                let baseline = results.first { $0.sentenceSet == name }!.sentencesPerSecond
                print(Benchmark.pad(result.configuration, 26) + Benchmark.pad("\(name) (\(sentences.count))", 30)
                    + Benchmark.pad(String(format: "%.1f", result.sentencesPerSecond), 10)
                    + Benchmark.pad(String(format: "%.2fx", result.sentencesPerSecond / baseline), 9)
                    + Benchmark.pad(Benchmark.megabytes(result.peakResidentBytes), 12)
                    + Benchmark.pad(Benchmark.megabytes(result.parameterBytes), 11)
                    + Benchmark.megabytes(result.linearBytes))
                // One line per measurement as it completes, also when stdout is a file or a pipe.
                fflush(nil)
            }
        }
        if let path = arguments.string("json") {
            let report = Report(machine: Benchmark.machineDescription(), device: "\(device)", batchSize: batchSize,
                                openBLAS: OpenBLAS.shared.summary, results: results)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            do {
                try encoder.encode(report).write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch {
                throw TensorError(.io, "bench-embed: cannot write `\(path)`", underlying: "\(error)")
            }
        }
    }

    /// The configurations `--configurations` names, in the order they run.
    static let configurationNames = ["fp32", "w8a8", "w8a8-tables", "weight-only", "fp8"]

    /// `w8a8,fp32` -> those names, checked against ``configurationNames``.
    static func parseConfigurations(_ text: String) throws -> Set<String> {
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if let bad = names.first(where: { !configurationNames.contains($0) }) {
            throw TensorError(.invalidArgument, "--configurations: `\(bad)` is not one of "
                + configurationNames.joined(separator: ", "))
        }
        guard !names.isEmpty else {
            throw TensorError(.invalidArgument, "--configurations needs at least one of "
                + configurationNames.joined(separator: ", "))
        }
        return Set(names)
    }

    /// The named sentence sets: the given files, or the fixture's two sets.
    static func sentenceSets(_ paths: [String]) throws -> [(String, [String])] {
        if !paths.isEmpty {
            return try paths.map { path in
                (URL(fileURLWithPath: path).lastPathComponent,
                 try EmbedInput.read(path, format: try EmbedInput.format(of: path, explicit: nil)))
            }
        }
        let fixture = "Tests/Fixtures/minilm/"
        guard let data = FileManager.default.contents(atPath: fixture + "sentences.json"),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let sentences = object["sentences"] as? [String] else {
            throw TensorError(.io, "bench-embed: cannot read \(fixture)sentences.json; run from the package root or "
                + "pass --sentences FILE")
        }
        return [("fixture sentences", sentences),
                ("bench-sentences.jsonl", try EmbedInput.read(fixture + "bench-sentences.jsonl", format: .jsonl))]
    }

    static func resetPeak() { _ = try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8) }

    /// The process's resident high-water mark (VmHWM) in bytes; 0 where /proc is missing.
    static func peakResident() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
        }
        return 0
    }
}
