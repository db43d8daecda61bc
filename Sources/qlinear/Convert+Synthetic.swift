import Foundation
import QuantizedLinear

/// `qlinear synthesize`: a synthetic float checkpoint to try and benchmark the converter on.
enum Synthesize {
    static let command = Subcommand(
        name: "synthesize",
        summary: "write a synthetic float checkpoint (Gaussian linear layers) for trying `convert`",
        arguments: ["OUT"],
        discussion: """
            Writes L blocks, each `blocks.i.linear.weight` (N x K, normal with std 1/sqrt(K)),
            `blocks.i.linear.bias` (N) and `blocks.i.norm.weight` (K), streaming one layer at a time.
            80 layers of 5120 x 5120 bf16 make a 4 GiB file. N x K is at most 2^30 elements.
            """,
        options: [
            .integer("layers", placeholder: "L", default: 8, in: 1...100_000, "number of blocks"),
            .integer("rows", default: 3072, in: 1...maximumDimension, "rows N of each weight"),
            .integer("columns", placeholder: "K", default: 3072, in: 1...maximumDimension, "columns K of each weight"),
            .choice("dtype", ["bf16", "f16", "f32"], default: "bf16", "the dtype of every tensor"),
            .integer("seed", placeholder: "S", default: 1, in: 0...Int.max, "seed of the random values"),
            .flag("progress", "draw the progress bar (plain lines) even when stderr is not a terminal"),
        ],
        validate: { arguments in
            guard arguments.int("rows") * arguments.int("columns") <= maximumLayerElements else {
                throw TensorError(.invalidArgument, "synthesize: --rows x --columns is "
                    + "\(arguments.int("rows") * arguments.int("columns")) elements; at most \(maximumLayerElements) "
                    + "(one layer is held in memory)")
            }
        },
        run: run)

    /// The largest `--rows` and `--columns`.
    static let maximumDimension = 1 << 20
    /// The largest weight, N x K elements (4 GiB in f32), so one layer fits in memory.
    static let maximumLayerElements = 1 << 30

    static func run(_ arguments: ParsedArguments) throws {
        let layers = arguments.int("layers")
        let rows = arguments.int("rows")
        let columns = arguments.int("columns")
        let seed = arguments.int("seed")
        let dtype: DType = ["f16": .float16, "f32": .float32][arguments.string("dtype")!] ?? .bfloat16
        let code = SafetensorsDType(dtype)
        var declarations: [SafetensorsWriter.Declaration] = []
        for layer in 0..<layers {
            declarations += [.init(name: "blocks.\(layer).linear.weight", dtype: code, shape: [rows, columns]),
                             .init(name: "blocks.\(layer).linear.bias", dtype: code, shape: [rows]),
                             .init(name: "blocks.\(layer).norm.weight", dtype: code, shape: [columns])]
        }
        let writer = try SafetensorsWriter(path: arguments.positional[0], tensors: declarations,
                                           metadata: ["generator": "qlinear synthesize"])
        let bar = ProgressBar(forced: arguments.flag("progress"))
        let layerBytes = declarations.prefix(3).reduce(0) { $0 + $1.byteCount }
        do {
            for layer in 0..<layers {
                let base = UInt64(seed) &* 1_000_003 &+ UInt64(layer) &* 3
                try writer.write("blocks.\(layer).linear.weight", tensor: Tensor.randomNormal(
                    [rows, columns], standardDeviation: 1 / Float(columns).squareRoot(), dtype: dtype, seed: base))
                try writer.write("blocks.\(layer).linear.bias", tensor: Tensor.randomNormal(
                    [rows], standardDeviation: 0.01, dtype: dtype, seed: base + 1))
                try writer.write("blocks.\(layer).norm.weight", tensor: Tensor.randomNormal(
                    [columns], standardDeviation: 0.1, dtype: dtype, seed: base + 2))
                bar.update(done: layer + 1, total: layers, unit: "layers", bytesDone: (layer + 1) * layerBytes,
                           bytesTotal: layers * layerBytes, current: "blocks.\(layer)")
            }
            try writer.finish()
        } catch {
            bar.finish()
            writer.abandon()
            throw error
        }
        bar.finish()
        print("wrote \(arguments.positional[0]): \(layers) layers of \(rows) x \(columns) \(dtype), "
            + ProgressBar.bytes(writer.totalByteCount))
    }
}
