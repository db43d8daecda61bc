import Foundation
import QuantizedLinear

/// `qlinear export`: a quantized checkpoint back to float.
enum Export {
    static let command = Subcommand(
        name: "export",
        summary: "dequantize a quantized ComfyUI checkpoint back to a float .safetensors file",
        help: """
            usage: qlinear export IN OUT [--dtype bf16|f16|f32] [--progress]

            Writes every quantized layer's weight as `q * scale` in the chosen dtype (default bf16) and
            drops its weight_scale, comfy_quant and input_scale; every other tensor is copied unchanged.
            """,
        run: run)

    static func run(_ arguments: CommandArguments) throws {
        guard arguments.positional.count == 2 else {
            throw TensorError(.invalidArgument, "export needs IN and OUT; see `qlinear export --help`")
        }
        let dtype: DType
        switch arguments.string("dtype") ?? "bf16" {
        case "bf16", "bfloat16": dtype = .bfloat16
        case "f16", "fp16", "float16": dtype = .float16
        case "f32", "fp32", "float32": dtype = .float32
        case let other: throw TensorError(.invalidArgument, "export: --dtype `\(other)` is not bf16, f16 or f32")
        }
        let bar = ProgressBar(forced: arguments.flag("progress"))
        let layers: Int
        do {
            layers = try CheckpointExporter.export(input: arguments.positional[0], output: arguments.positional[1],
                                                   dtype: dtype) { done, total, name in
                bar.update(done: done, total: total, unit: "tensors", bytesDone: 0, bytesTotal: 0, current: name)
            }
        } catch {
            bar.finish()
            throw error
        }
        bar.finish()
        print("wrote \(arguments.positional[1]): \(layers) layers dequantized to \(dtype)")
    }
}
