import Foundation
import QuantizedLinear

/// `qlinear synthesize`: a synthetic float checkpoint to try and benchmark the converter on.
enum Synthesize {
    static let command = Subcommand(
        name: "synthesize",
        summary: "write a synthetic float checkpoint (Gaussian linear layers) for trying `convert`",
        help: """
            usage: qlinear synthesize OUT [--layers L] [--rows N] [--columns K] [--dtype bf16|f16|f32] [--seed S]

            Writes L blocks, each `blocks.i.linear.weight` (N x K, normal with std 1/sqrt(K)),
            `blocks.i.linear.bias` (N) and `blocks.i.norm.weight` (K), streaming one layer at a time.
            Defaults: 8 layers of 3072 x 3072 bf16. 80 layers of 5120 x 5120 bf16 make a 4 GiB file.
            """,
        run: run)

    static func run(_ arguments: CommandArguments) throws {
        guard arguments.positional.count == 1 else {
            throw TensorError(.invalidArgument, "synthesize needs OUT; see `qlinear synthesize --help`")
        }
        let layers = try arguments.int("layers", default: 8)
        let rows = try arguments.int("rows", default: 3072)
        let columns = try arguments.int("columns", default: 3072)
        let seed = try arguments.int("seed", default: 1)
        let dtype: DType
        switch arguments.string("dtype") ?? "bf16" {
        case "bf16": dtype = .bfloat16
        case "f16": dtype = .float16
        case "f32": dtype = .float32
        case let other: throw TensorError(.invalidArgument, "synthesize: --dtype `\(other)` is not bf16, f16 or f32")
        }
        guard layers > 0, rows > 0, columns > 0 else {
            throw TensorError(.invalidArgument, "synthesize: --layers, --rows and --columns must be positive")
        }
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
