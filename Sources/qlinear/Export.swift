import Foundation
import QuantizedLinear

/// `qlinear export`: a quantized checkpoint back to float.
enum Export {
    static let command = Subcommand(
        name: "export",
        summary: "dequantize a quantized ComfyUI checkpoint back to a float .safetensors file",
        arguments: ["IN", "OUT"],
        discussion: """
            Writes every quantized layer's weight as `q * scale` in the chosen dtype and drops its
            weight_scale, comfy_quant and input_scale; every other tensor is copied unchanged. OUT
            appears only when the export succeeds; it must not be IN, and must be a regular file (or a
            new path).
            """,
        options: [
            .choice("dtype", ["bf16", "f16", "f32"],
                    aliases: ["bfloat16": "bf16", "fp16": "f16", "float16": "f16", "fp32": "f32", "float32": "f32"],
                    default: "bf16", "the float dtype of the dequantized weights"),
            .flag("progress", "draw the progress bar (plain lines) even when stderr is not a terminal"),
        ],
        run: run)

    static func run(_ arguments: ParsedArguments) throws {
        let dtype: DType = ["f16": .float16, "f32": .float32][arguments.string("dtype")!] ?? .bfloat16
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
