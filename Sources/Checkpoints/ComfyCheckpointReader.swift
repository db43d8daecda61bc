import Foundation
import QLLayouts
import QLQuantized
import QLTensor

/// How quantized layers are turned into ``QuantizedTensor``s on loading.
public struct ComfyLoadOptions: Sendable, Hashable {
    /// The dtype a loaded quantized weight stands for and dequantizes to by default. Checkpoints do not
    /// record it; float32 makes `dequantize()` return exactly `q * scale`.
    public var originalDType: DType
    /// The rounding of the INT8 layout for later re-quantization (checkpoints do not record it).
    public var rounding: Rounding
    /// Whether ``ComfyCheckpoint/init(contentsOf:options:)`` leaves out tensors of dtypes the library has
    /// no tensors of (`I64` position ids, `F64`, `BOOL`, ...) and lists them in
    /// ``ComfyCheckpoint/skippedTensors``, instead of failing.
    public var skipUnsupportedDTypes: Bool

    public init(originalDType: DType = .float32, rounding: Rounding = .nearestEven,
                skipUnsupportedDTypes: Bool = false) {
        self.originalDType = originalDType
        self.rounding = rounding
        self.skipUnsupportedDTypes = skipUnsupportedDTypes
    }
}

/// A ComfyUI-format checkpoint opened for reading tensor by tensor.
///
/// Opening finds the quantized layers, declared per layer (`L.comfy_quant`) or in the header
/// (`_quantization_metadata`), and checks from the header alone that each has its `L.weight` in the
/// format's dtype and its `L.weight_scale` with the right shape, so a broken checkpoint fails before
/// any data is read. ``names`` lists the state-dict keys a user sees: a quantized layer's
/// `L.weight_scale` and `L.comfy_quant` are folded into its `L.weight`, every other tensor
/// (`L.bias`, `L.input_scale`, norms, ...) is itself.
public struct ComfyCheckpointReader: Sendable {
    public let file: SafetensorsFile
    /// Quantized layers by layer name (`L`, without `.weight`).
    /// Keys compare byte for byte (``TensorName``): names that differ only in Unicode normalisation are
    /// different layers, as in the file.
    public let formats: [TensorName: ComfyQuantFormat]
    /// The state-dict keys, in file order, without the folded-in scale and declaration tensors.
    public let names: [String]
    /// Header metadata without `_quantization_metadata` (which ``formats`` replaces).
    public let metadata: [String: String]
    public let options: ComfyLoadOptions

    /// Opens `path` and validates its quantized layers.
    /// - Throws: ``TensorError`` naming the file and tensor: an invalid safetensors file, a declaration
    ///   that is not valid JSON or names an unknown format, a declared layer without its weight or scale,
    ///   a weight of the wrong dtype, a scale of the wrong dtype or shape, or declarations that disagree.
    public init(path: String, options: ComfyLoadOptions = ComfyLoadOptions()) throws {
        try self.init(file: SafetensorsFile(path: path), options: options)
    }

    public init(file: SafetensorsFile, options: ComfyLoadOptions = ComfyLoadOptions()) throws {
        self.file = file
        self.options = options
        let path = file.path
        var formats: [TensorName: ComfyQuantFormat] = [:]
        if let text = file.metadata[ComfyKeys.quantizationMetadata] {
            let tensor = "__metadata__.\(ComfyKeys.quantizationMetadata)"
            let json = Array(text.utf8).withUnsafeBytes { try? HeaderJSON.parse($0) }
            guard case .object(let members)? = json,
                  case .object(let layers)? = members.first(where: { $0.key == "layers" })?.value else {
                throw CheckpointError.format(path, tensor: tensor, "not a JSON object with a \"layers\" object, like "
                    + "{\"format_version\": \"1.0\", \"layers\": {\"L\": {\"format\": \"float8_e4m3fn\"}}}")
            }
            for (layer, declaration) in layers {
                formats[TensorName(layer)] = try ComfyQuantFormat(declaration: declaration, path: path,
                                                      tensor: tensor + ".\(layer)")
            }
        }
        for entry in file.entries where entry.name.hasSuffix(ComfyKeys.comfyQuant) {
            let layer = String(entry.name.dropLast(ComfyKeys.comfyQuant.count))
            let format = try Self.parseComfyQuant(entry, in: file)
            if let other = formats[TensorName(layer)], other != format {
                throw CheckpointError.format(path, tensor: entry.name, "declares \(format) but "
                    + "`\(ComfyKeys.quantizationMetadata)` declares \(other) for layer `\(layer)`; remove one")
            }
            formats[TensorName(layer)] = format
        }
        var folded = Set<TensorName>()
        for (layer, format) in formats {
            try Self.validate(layer: layer.string, format: format, in: file)
            folded.insert(TensorName(layer.string + ComfyKeys.weightScale))
            folded.insert(TensorName(layer.string + ComfyKeys.comfyQuant))
        }
        self.formats = formats
        names = file.entries.map(\.name).filter { !folded.contains(TensorName($0)) }
        metadata = file.metadata.filter { $0.key != ComfyKeys.quantizationMetadata }
    }

    /// The layer whose quantized weight `name` is, if it is one.
    public func quantizedLayer(ofWeight name: String) -> String? {
        guard name.hasSuffix(ComfyKeys.weight) else { return nil }
        let layer = String(name.dropLast(ComfyKeys.weight.count))
        return formats[TensorName(layer)] == nil ? nil : layer
    }

    /// The tensor behind state-dict key `name`: a ``QuantizedTensor`` for a quantized layer's weight, a
    /// dense tensor otherwise. Data is borrowed from the file's mapping where aligned.
    public func tensor(_ name: String) throws -> AnyTensor {
        if let layer = quantizedLayer(ofWeight: name) { return .quantized(try quantizedWeight(layer: layer)) }
        return .dense(try file.tensor(name))
    }

    /// The quantized weight of `layer`: codes from `L.weight`, scales from `L.weight_scale` (as float32),
    /// dequantizing to exactly `q * scale`.
    public func quantizedWeight(layer: String) throws -> QuantizedTensor {
        guard let format = formats[TensorName(layer)] else {
            throw CheckpointError.format(file.path, tensor: layer + ComfyKeys.weight,
                                         "layer `\(layer)` is not quantized")
        }
        let codes = try file.tensor(layer + ComfyKeys.weight)
        var scale = try file.tensor(layer + ComfyKeys.weightScale).converted(to: .float32)
        if case .float8E4M3FN = format { scale = try scale.reshaped([]) }
        do {
            return try QuantizedTensor(layout: format.layout(rounding: options.rounding), data: codes, scale: scale,
                                       shape: codes.shape, originalDType: options.originalDType)
        } catch {
            throw CheckpointError.wrapping(error, file.path, tensor: layer + ComfyKeys.weight)
        }
    }

    /// Hands the pages of `name` (and, for a quantized weight, of its scale) back to the kernel.
    public func releasePages(of name: String) {
        file.releasePages(of: name)
        if let layer = quantizedLayer(ofWeight: name) { file.releasePages(of: layer + ComfyKeys.weightScale) }
    }

    private static func parseComfyQuant(_ entry: SafetensorsFile.Entry, in file: SafetensorsFile) throws
        -> ComfyQuantFormat {
        guard entry.dtype == .uint8, entry.shape.count == 1 else {
            throw CheckpointError.format(file.path, tensor: entry.name, "must be a 1-D U8 tensor of UTF-8 JSON, "
                + "got \(entry.dtype) \(entry.shape)")
        }
        let data = try file.withRawBytes(of: entry.name) { Data($0) }
        guard let json = data.withUnsafeBytes({ try? HeaderJSON.parse($0) }) else {
            throw CheckpointError.format(file.path, tensor: entry.name, "does not hold valid UTF-8 JSON "
                + "(\(String(decoding: data.prefix(80), as: UTF8.self)))")
        }
        return try ComfyQuantFormat(declaration: json, path: file.path, tensor: entry.name)
    }

    private static func validate(layer: String, format: ComfyQuantFormat, in file: SafetensorsFile) throws {
        let weightName = layer + ComfyKeys.weight
        let scaleName = layer + ComfyKeys.weightScale
        guard let weight = file.entry(weightName) else {
            throw CheckpointError.format(file.path, tensor: weightName, "layer `\(layer)` is declared \(format) "
                + "but the file has no `\(weightName)`")
        }
        guard weight.dtype == format.weightDType else {
            throw CheckpointError.format(file.path, tensor: weightName, "a \(format) weight must be "
                + "\(format.weightDType), got \(weight.dtype)")
        }
        if case .int8Blockwise = format, weight.shape.count != 2 {
            throw CheckpointError.format(file.path, tensor: weightName, "an int8_blockwise weight must be 2-D "
                + "(N, K), got shape \(weight.shape)")
        }
        guard let scale = file.entry(scaleName) else {
            throw CheckpointError.format(file.path, tensor: scaleName, "layer `\(layer)` is declared \(format) "
                + "but has no scale `\(scaleName)`; the checkpoint is incomplete")
        }
        guard [.float32, .float16, .bfloat16].contains(scale.dtype) else {
            throw CheckpointError.format(file.path, tensor: scaleName, "a weight scale must be F32, got \(scale.dtype)")
        }
        let expected = format.scaleShape(forWeight: weight.shape)
        let matches = expected.isEmpty ? scale.elementCount == 1 : scale.shape == expected
        guard matches else {
            throw CheckpointError.format(file.path, tensor: scaleName, "has shape \(scale.shape) but a \(format) "
                + "weight \(weight.shape) needs " + (expected.isEmpty ? "a single value" : "\(expected)"))
        }
    }
}
