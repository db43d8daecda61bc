import Foundation
import QLLayouts
import QLQuantized
import QLTensor

/// What ``CheckpointConverter/convert(input:output:options:progress:)`` quantizes, and how.
public struct ConversionOptions: Sendable {
    /// The format of quantized layers.
    public var format: ComfyQuantFormat
    /// Rounding of INT8 codes (FP8 always rounds to nearest even).
    public var rounding: Rounding
    /// When not empty, only layers matching one of these are quantized.
    public var include: [LayerPattern]
    /// Layers matching one of these are not quantized.
    public var exclude: [LayerPattern]
    /// Weights with fewer elements stay as they are.
    public var minimumElements: Int
    /// LoRA files whose patched weights the scales must also cover.
    public var loraPaths: [String]
    /// The strength the LoRAs will be applied with.
    public var loraStrength: Float
    /// Where the output declares its quantized layers.
    public var declaration: ComfyQuantDeclaration

    public init(format: ComfyQuantFormat = .int8Blockwise(groupSize: ComfyQuantFormat.defaultGroupSize),
                rounding: Rounding = .nearestEven, include: [LayerPattern] = [], exclude: [LayerPattern] = [],
                minimumElements: Int = 0, loraPaths: [String] = [], loraStrength: Float = 1,
                declaration: ComfyQuantDeclaration = .perLayer) {
        self.format = format
        self.rounding = rounding
        self.include = include
        self.exclude = exclude
        self.minimumElements = minimumElements
        self.loraPaths = loraPaths
        self.loraStrength = loraStrength
        self.declaration = declaration
    }
}

/// Where a conversion stands, reported after each tensor.
public struct ConversionProgress: Sendable {
    public let tensorsDone: Int
    public let tensorsTotal: Int
    public let layersQuantized: Int
    public let layersToQuantize: Int
    /// Input bytes processed so far and in all.
    public let bytesDone: Int
    public let bytesTotal: Int
    public let current: String
}

/// What a conversion did.
public struct ConversionReport: Sendable {
    public struct QuantizedLayer: Sendable {
        public let layer: String
        public let shape: [Int]
        public let inputDType: SafetensorsDType
        public let format: ComfyQuantFormat
        /// `||dequantize(q) - w|| / ||w||` against the base weight (0 for an all-zero weight).
        public let relativeError: Double
        /// How many LoRA updates the scales cover.
        public let loraCount: Int
    }

    /// A `*.weight` tensor left as it was, and why.
    public struct SkippedWeight: Sendable {
        public let name: String
        public let reason: String
    }

    public var quantized: [QuantizedLayer] = []
    public var skipped: [SkippedWeight] = []
    /// Tensors copied unchanged (biases, norms, skipped weights, ...).
    public var copiedTensors = 0
    public var inputBytes = 0
    public var outputBytes = 0
    /// `FILE: key` of LoRA layers that match no layer of the model (or match several).
    public var unmatchedLoRALayers: [String] = []
    /// `FILE: key -> layer` of LoRA layers whose layer is not quantized (they do not affect any scale).
    public var loraLayersOnUnquantizedLayers: [String] = []
    /// `FILE: key` of LoRA tensors that are not up/down/alpha (ignored).
    public var ignoredLoRAKeys: [String] = []
}

/// Turns a float checkpoint into a ComfyUI-format quantized one, tensor by tensor.
///
/// Every `L.weight` that is a 2-D float tensor (F32, F16, BF16), has at least `minimumElements`
/// elements and passes the include/exclude patterns is quantized into `L.weight`, `L.weight_scale`
/// and (per-layer declarations) `L.comfy_quant`; every other tensor is copied byte for byte, and the
/// header metadata is kept. The input is memory-mapped and each tensor's pages are released once
/// written, the output streams through a temporary file: peak memory is a few times the largest layer,
/// whatever the model's size, and a failure leaves no output file.
///
/// With LoRA files, each INT8 block's scale is the largest `amax / 127` over the base weight and over
/// `base + strength * up @ down * (alpha / rank)` for each LoRA that patches the layer (FP8: the same
/// over the whole tensor, `/ 448`), so that the patched weights stay in range when the LoRA is merged
/// later. The codes are those of the base weight under that scale.
public enum CheckpointConverter {
    /// Converts `input` into `output`, which must not be `input` or one of the LoRA files (compared as
    /// files: device and inode, so another spelling or a link of the same file is caught too).
    /// - Parameter progress: called after each tensor is written.
    /// - Returns: what was quantized, skipped and matched, with per-layer error.
    /// - Throws: ``TensorError`` naming the file and tensor: `output` being an input, a bad input or LoRA
    ///   file, a LoRA whose shapes do not fit its layer, a weight with NaN or infinity, a write failure.
    ///   Nothing is written at `output` then.
    @discardableResult
    public static func convert(input: String, output: String, options: ConversionOptions = ConversionOptions(),
                               progress: ((ConversionProgress) -> Void)? = nil) throws -> ConversionReport {
        try OutputPath.requireDistinct(output, from: [input] + options.loraPaths)
        // The target layout is built before anything is read or written, so bad options (a block size past
        // the layout's limit) fail up front with the layout's own error.
        _ = try options.format.layout(rounding: options.rounding)
        let reader = try ComfyCheckpointReader(path: input)
        let file = reader.file
        var report = ConversionReport()
        report.inputBytes = file.fileByteCount
        let plan = try plan(reader, options: options, report: &report)
        let patches = try loraPatches(plan: plan, reader: reader, options: options, report: &report)

        var declarations: [SafetensorsWriter.Declaration] = []
        for entry in file.entries {
            if let format = plan.formats[TensorName(entry.name)] {
                declarations += layerTensors(entry, format: format, options: options).declarations
            } else {
                declarations.append(.init(name: entry.name, dtype: entry.dtype, shape: entry.shape))
            }
        }
        var metadata = file.metadata
        if options.declaration == .header {
            let existing = reader.formats.sorted { $0.key < $1.key }.map { (layer: $0.key.string, format: $0.value) }
            let added = file.entries.compactMap { entry in
                plan.formats[TensorName(entry.name)].map { (layer: layerName(entry.name), format: $0) }
            }
            metadata[ComfyKeys.quantizationMetadata] = ComfyKeys.quantizationMetadata(existing + added)
        }
        let writer = try SafetensorsWriter(path: output, tensors: declarations, metadata: metadata)
        do {
            var bytesDone = 0
            let bytesTotal = file.entries.reduce(0) { $0 + $1.byteCount }
            for (index, entry) in file.entries.enumerated() {
                if let format = plan.formats[TensorName(entry.name)] {
                    let layer = layerName(entry.name)
                    let (q, error) = try quantize(entry, in: reader, format: format, options: options,
                                                  patches: patches[TensorName(layer)] ?? [])
                    try layerTensors(entry, format: format, options: options).write(q, to: writer)
                    report.quantized.append(.init(layer: layer, shape: entry.shape, inputDType: entry.dtype,
                                                  format: format, relativeError: error,
                                                  loraCount: patches[TensorName(layer)]?.count ?? 0))
                } else {
                    try file.withRawBytes(of: entry.name) { try writer.write(entry.name, bytes: $0) }
                    report.copiedTensors += 1
                }
                file.releasePages(of: entry.name)
                bytesDone += entry.byteCount
                progress?(ConversionProgress(
                    tensorsDone: index + 1, tensorsTotal: file.entries.count, layersQuantized: report.quantized.count,
                    layersToQuantize: plan.formats.count, bytesDone: bytesDone,
                    bytesTotal: bytesTotal, current: entry.name))
            }
            try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
        report.outputBytes = writer.totalByteCount
        return report
    }

    // MARK: Planning

    struct Plan {
        /// Weight tensor name -> format, for the weights to quantize.
        var formats: [TensorName: ComfyQuantFormat] = [:]
        /// Layer name -> weight shape, for every `L.weight` of the model (quantized or not).
        var weightShapes: [TensorName: [Int]] = [:]
    }

    static func layerName(_ weightName: String) -> String { String(weightName.dropLast(ComfyKeys.weight.count)) }

    static func layerTensors(_ entry: SafetensorsFile.Entry, format: ComfyQuantFormat, options: ConversionOptions)
        -> ComfyLayerTensors {
        ComfyLayerTensors(layer: layerName(entry.name), format: format, shape: entry.shape,
                          declaration: options.declaration)
    }

    static func plan(_ reader: ComfyCheckpointReader, options: ConversionOptions, report: inout ConversionReport)
        throws -> Plan {
        var plan = Plan()
        let file = reader.file
        for entry in file.entries where entry.name.hasSuffix(ComfyKeys.weight) {
            let layer = layerName(entry.name)
            plan.weightShapes[TensorName(layer)] = entry.shape
            let reason: String?
            if reader.formats[TensorName(layer)] != nil || file.entry(layer + ComfyKeys.weightScale) != nil {
                reason = "already quantized (has \(layer + ComfyKeys.weightScale))"
            } else if ![.float32, .float16, .bfloat16].contains(entry.dtype) {
                reason = "not a float tensor (\(entry.dtype))"
            } else if entry.shape.count != 2 {
                reason = "not 2-D (shape \(entry.shape))"
            } else if entry.elementCount < options.minimumElements {
                reason = "\(entry.elementCount) elements, fewer than --min-elements \(options.minimumElements)"
            } else if !options.include.isEmpty && !options.include.contains(where: { $0.matches(layer) }) {
                reason = "matches no --include pattern"
            } else if let pattern = options.exclude.first(where: { $0.matches(layer) }) {
                reason = "excluded by --exclude \(pattern)"
            } else {
                reason = nil
            }
            if let reason {
                report.skipped.append(.init(name: entry.name, reason: reason))
            } else {
                plan.formats[TensorName(entry.name)] = options.format
            }
        }
        return plan
    }

    /// A LoRA update that patches one layer.
    struct Patch {
        let lora: LoRAFile
        let update: LoRAFile.Update
    }

    /// Opens the LoRA files, matches their layers to the model's and checks every shape before anything
    /// is written.
    static func loraPatches(plan: Plan, reader: ComfyCheckpointReader, options: ConversionOptions,
                            report: inout ConversionReport) throws -> [TensorName: [Patch]] {
        guard !options.loraPaths.isEmpty else { return [:] }
        let matcher = LoRALayerMatcher(layers: plan.weightShapes.keys.map(\.string))
        var patches: [TensorName: [Patch]] = [:]
        for path in options.loraPaths {
            let lora = try LoRAFile(path: path)
            guard !lora.updates.isEmpty else {
                throw CheckpointError.format(path, "no LoRA layers found: expected keys ending in .lora_up.weight and "
                    + ".lora_down.weight (kohya) or .lora_B.weight and .lora_A.weight (PEFT); is this a LoRA file?")
            }
            report.ignoredLoRAKeys += lora.ignoredKeys.map { "\(path): \($0)" }
            for update in lora.updates {
                guard let layer = matcher.layer(for: update.key) else {
                    report.unmatchedLoRALayers.append("\(path): \(update.key)")
                    continue
                }
                guard plan.formats[TensorName(layer + ComfyKeys.weight)] != nil else {
                    report.loraLayersOnUnquantizedLayers.append("\(path): \(update.key) -> \(layer)")
                    continue
                }
                try lora.checkFits(update, layer: layer, weightShape: plan.weightShapes[TensorName(layer)]!)
                patches[TensorName(layer), default: []].append(Patch(lora: lora, update: update))
            }
        }
        return patches
    }

    // MARK: Quantization

    /// The quantized weight and its relative error against the base weight.
    static func quantize(_ entry: SafetensorsFile.Entry, in reader: ComfyCheckpointReader, format: ComfyQuantFormat,
                         options: ConversionOptions, patches: [Patch]) throws -> (QuantizedTensor, Double) {
        let path = reader.file.path
        do {
            let weight = try reader.file.tensor(entry.name)
            let layout = try format.layout(rounding: options.rounding)
            guard !patches.isEmpty else {
                let q = try QuantizedTensor.fromFloat(weight, layout: layout)
                return (q, try relativeError(of: q, format: format, against: weight.floats()))
            }
            // The maxima of the base and of every patched copy, so one scale grid serves them all.
            guard let scaled = layout as? any MaximumScaledLayout else {
                throw TensorError(.unsupportedOperation, "\(layout) has no scales from maxima to share with LoRA patches")
            }
            let base = try weight.floats()
            var amax = try base.withUnsafeBufferPointer { try scaled.blockMaxima(of: $0, shape: entry.shape) }
            for patch in patches {
                // The patched weight is built in the delta's own buffer: one layer-sized float buffer per LoRA.
                var patched = try patch.lora.delta(patch.update, strength: options.loraStrength,
                                                   layer: layerName(entry.name), weightShape: entry.shape)
                let patchAmax = try patched.withUnsafeMutableElements(as: Float.self) { values in
                    for index in values.indices { values[index] += base[index] }
                    return try scaled.blockMaxima(of: UnsafeBufferPointer(values), shape: entry.shape)
                }
                for index in amax.indices { amax[index] = max(amax[index], patchAmax[index]) }
            }
            let q = try base.withUnsafeBufferPointer {
                try scaled.quantize($0, shape: entry.shape, maxima: amax, originalDType: weight.dtype)
            }
            return (q, try relativeError(of: q, format: format, against: base))
        } catch {
            throw CheckpointError.wrapping(error, path, tensor: entry.name)
        }
    }

    /// `||q * scale - w|| / ||w||` in float64, straight from codes and scales (no dequantized copy, to keep
    /// the converter's memory near the layer's size). `q` holds a 2-D weight in `format`.
    static func relativeError(of q: QuantizedTensor, format: ComfyQuantFormat, against original: [Float]) throws
        -> Double {
        let scales = try q.scale.floats()
        let columns = q.shape[1]
        var difference = 0.0
        var norm = 0.0
        try q.data.withUnsafeContiguousBytes { codes in
            for (index, value) in original.enumerated() {
                let restored: Float
                switch format {
                case .int8Blockwise(let groupSize):
                    let columnBlocks = ShapeArithmetic.ceilDiv(columns, groupSize)
                    let scale = scales[index / columns / groupSize * columnBlocks + index % columns / groupSize]
                    restored = Float(Int8(bitPattern: codes[index])) * scale
                case .float8E4M3FN:
                    restored = Float8E4M3FN(bitPattern: codes[index]).floatValue * scales[0]
                }
                difference += Double(restored - value) * Double(restored - value)
                norm += Double(value) * Double(value)
            }
        }
        return norm > 0 ? (difference / norm).squareRoot() : 0
    }
}
