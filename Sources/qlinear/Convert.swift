import Foundation
import QuantizedLinear

/// `qlinear convert`: a float checkpoint in, a ComfyUI-format quantized checkpoint out.
enum Convert {
    static let command = Subcommand(
        name: "convert",
        summary: "quantize a float .safetensors checkpoint into ComfyUI's INT8 block-wise or FP8 format",
        help: """
            usage: qlinear convert IN OUT [options] [--progress]

            Quantizes every 2-D float (F32/F16/BF16) `L.weight` of IN into `L.weight` + `L.weight_scale`
            + `L.comfy_quant` and copies every other tensor unchanged. Streams tensor by tensor: memory
            stays near a few times the largest layer. OUT appears only when the conversion succeeds.

            options (put flags after IN and OUT):
              --format F          int8_blockwise (default) or float8_e4m3fn
              --block-size B      INT8 block (group) size, default 128
              --rounding R        nearest (default, round half to even) or toward-zero (ComfyUI's reference)
              --include P         quantize only layers matching P (repeatable); a glob on the layer name
                                  (`blocks.*.attn.*`), or a regex written re:EXPR or /EXPR/
              --exclude P         leave layers matching P dense (repeatable)
              --min-elements N    leave weights with fewer than N elements dense (default 0)
              --lora FILE         make the scales also cover base + S * LoRA delta (repeatable; kohya
                                  lora_up/lora_down/alpha or PEFT lora_B/lora_A keys)
              --lora-strength S   the strength S the LoRAs will be used at (default 1)
              --declaration D     per-layer (default: L.comfy_quant tensors) or header
                                  (`_quantization_metadata` in the header, older ComfyUI)
              --progress          draw the progress bar even when stderr is not a terminal
            """,
        run: run)

    static func run(_ arguments: CommandArguments) throws {
        guard arguments.positional.count == 2 else {
            throw TensorError(.invalidArgument, "convert needs IN and OUT, got \(arguments.positional); "
                + "see `qlinear convert --help`")
        }
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

    static func conversionOptions(_ arguments: CommandArguments) throws -> ConversionOptions {
        var options = ConversionOptions()
        let blockSize = try arguments.int("block-size", default: ComfyQuantFormat.defaultGroupSize)
        switch arguments.string("format") ?? "int8_blockwise" {
        case "int8_blockwise", "int8":
            guard blockSize > 0 else {
                throw TensorError(.invalidBlockSize, "convert: --block-size must be positive, got \(blockSize)")
            }
            options.format = .int8Blockwise(groupSize: blockSize)
        case "float8_e4m3fn", "fp8":
            options.format = .float8E4M3FN
        case let other:
            throw TensorError(.invalidArgument, "convert: --format `\(other)` is not int8_blockwise or float8_e4m3fn")
        }
        switch arguments.string("rounding") ?? "nearest" {
        case "nearest", "nearest-even": options.rounding = .nearestEven
        case "toward-zero", "truncate": options.rounding = .towardZero
        case let other:
            throw TensorError(.invalidArgument, "convert: --rounding `\(other)` is not nearest or toward-zero")
        }
        switch arguments.string("declaration") ?? "per-layer" {
        case "per-layer": options.declaration = .perLayer
        case "header": options.declaration = .header
        case let other:
            throw TensorError(.invalidArgument, "convert: --declaration `\(other)` is not per-layer or header")
        }
        options.include = try arguments.strings("include").map(LayerPattern.init)
        options.exclude = try arguments.strings("exclude").map(LayerPattern.init)
        options.minimumElements = try arguments.int("min-elements", default: 0)
        options.loraPaths = arguments.strings("lora")
        options.loraStrength = try arguments.float("lora-strength", default: 1)
        guard options.loraStrength.isFinite else {
            throw TensorError(.invalidArgument, "convert: --lora-strength must be a finite number")
        }
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
