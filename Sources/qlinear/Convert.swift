import Foundation
import QuantizedLinear

/// `qlinear convert`: a float checkpoint in, a ComfyUI-format quantized checkpoint out.
enum Convert {
    static let command = Subcommand(
        name: "convert",
        summary: "quantize a float .safetensors checkpoint into ComfyUI's INT8 block-wise or FP8 format",
        arguments: ["IN", "OUT"],
        discussion: """
            Quantizes every 2-D float (F32/F16/BF16) `L.weight` of IN into `L.weight` + `L.weight_scale`
            + `L.comfy_quant` and copies every other tensor unchanged. Streams tensor by tensor: memory
            stays near a few times the largest layer. OUT appears only when the conversion succeeds; it
            must not be IN, and must be a regular file (or a new path).
            """,
        options: [
            .choice("format", ["int8_blockwise", "float8_e4m3fn"],
                    aliases: ["int8": "int8_blockwise", "fp8": "float8_e4m3fn"], default: "int8_blockwise",
                    "block-wise INT8 or per-tensor FP8"),
            .integer("block-size", placeholder: "B", default: ComfyQuantFormat.defaultGroupSize,
                     in: 1...ComfyQuantFormat.maximumGroupSize, "INT8 block (group) size"),
            .choice("rounding", ["nearest", "toward-zero"],
                    aliases: ["nearest-even": "nearest", "truncate": "toward-zero"], default: "nearest",
                    "INT8 rounding: round half to even, or ComfyUI's reference truncation"),
            .text("include", placeholder: "P", repeatable: true, validate: { _ = try LayerPattern($0) },
                  "quantize only layers matching P: a glob on the layer name (`blocks.*.attn.*`), or a regex "
                      + "written re:EXPR or /EXPR/"),
            .text("exclude", placeholder: "P", repeatable: true, validate: { _ = try LayerPattern($0) },
                  "leave layers matching P dense"),
            .integer("min-elements", default: 0, in: 0...Int.max, "leave weights with fewer than N elements dense"),
            .text("lora", placeholder: "FILE", repeatable: true,
                  "make the scales also cover base + S * LoRA delta (kohya lora_up/lora_down/alpha or PEFT "
                      + "lora_B/lora_A keys)"),
            .number("lora-strength", placeholder: "S", default: 1, in: -1000...1000,
                    "the strength S the LoRAs will be used at"),
            .choice("declaration", ["per-layer", "header"], default: "per-layer",
                    "per-layer L.comfy_quant tensors, or `_quantization_metadata` in the header (older ComfyUI)"),
            .flag("progress", "draw the progress bar (plain lines) even when stderr is not a terminal"),
        ],
        run: run)

    static func run(_ arguments: ParsedArguments) throws {
        let options = try conversionOptions(arguments)
        let (input, output) = (arguments.positional[0], arguments.positional[1])
        let bar = ProgressBar(forced: arguments.flag("progress"))
        let start = DispatchTime.now().uptimeNanoseconds
        let report: ConversionReport
        do {
            report = try CheckpointConverter.convert(input: input, output: output, options: options) { progress in
                bar.update(done: progress.tensorsDone, total: progress.tensorsTotal, unit: "tensors",
                           bytesDone: progress.bytesDone, bytesTotal: progress.bytesTotal,
                           current: "\(progress.layersQuantized)/\(progress.layersToQuantize) layers quantized  "
                               + progress.current)
            }
        } catch {
            bar.finish()
            throw error
        }
        bar.finish()
        printSummary(report, options: options, seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9,
                     output: output)
    }

    /// The library's options from the parsed command line (every value already checked by the parser).
    static func conversionOptions(_ arguments: ParsedArguments) throws -> ConversionOptions {
        var options = ConversionOptions()
        options.format = arguments.string("format") == "float8_e4m3fn" ? .float8E4M3FN
            : .int8Blockwise(groupSize: arguments.int("block-size"))
        options.rounding = arguments.string("rounding") == "toward-zero" ? .towardZero : .nearestEven
        options.declaration = arguments.string("declaration") == "header" ? .header : .perLayer
        options.include = try arguments.strings("include").map(LayerPattern.init)
        options.exclude = try arguments.strings("exclude").map(LayerPattern.init)
        options.minimumElements = arguments.int("min-elements")
        options.loraPaths = arguments.strings("lora")
        options.loraStrength = Float(arguments.number("lora-strength"))
        return options
    }

    static func printSummary(_ report: ConversionReport, options: ConversionOptions, seconds: Double, output: String) {
        let rounding = options.rounding == .nearestEven ? "nearest-even" : "toward-zero"
        print("wrote \(output) in \(String(format: "%.1f", seconds)) s: \(report.quantized.count) layers quantized to "
            + "\(options.format)" + (options.format == .float8E4M3FN ? "" : ", rounding \(rounding)")
            + ", \(report.copiedTensors) tensors copied")
        let ratio = report.inputBytes > 0 ? Double(report.outputBytes) / Double(report.inputBytes) : 0
        print("size: \(ProgressBar.bytes(report.inputBytes)) -> \(ProgressBar.bytes(report.outputBytes)) "
            + "(\(String(format: "%.2f", ratio))x)")
        if !report.quantized.isEmpty {
            let width = min(60, max(5, report.quantized.map(\.layer.count).max()!)) + 2
            print("")
            print(pad("layer", width) + pad("shape", 14) + pad("from", 6) + pad("rel. error", 12) + "LoRAs")
            for layer in report.quantized {
                print(pad(layer.layer, width) + pad(layer.shape.map(String.init).joined(separator: "x"), 14)
                    + pad(layer.inputDType.rawValue, 6) + pad(String(format: "%.3e", layer.relativeError), 12)
                    + "\(layer.loraCount)")
            }
            let errors = report.quantized.map(\.relativeError).sorted()
            let worst = report.quantized.max { $0.relativeError < $1.relativeError }!
            print("relative error ||q*scale - w|| / ||w||: median \(String(format: "%.3e", errors[errors.count / 2])), "
                + "max \(String(format: "%.3e", worst.relativeError)) (\(worst.layer))")
        }
        if !report.skipped.isEmpty {
            print("\nweights left unquantized (\(report.skipped.count)):")
            for skipped in report.skipped { print("  \(skipped.name): \(skipped.reason)") }
        }
        let loraNotes = [("LoRA layers matching no layer of the model (ignored)", report.unmatchedLoRALayers),
                         ("LoRA layers on layers that are not quantized (ignored)",
                          report.loraLayersOnUnquantizedLayers),
                         ("LoRA tensors that are not up/down/alpha (ignored)", report.ignoredLoRAKeys)]
        for (title, items) in loraNotes where !items.isEmpty {
            print("\n\(title) (\(items.count)):")
            for item in items.prefix(50) { print("  \(item)") }
            if items.count > 50 { print("  ... and \(items.count - 50) more") }
        }
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text.padding(toLength: width, withPad: " ", startingAt: 0)
    }
}
