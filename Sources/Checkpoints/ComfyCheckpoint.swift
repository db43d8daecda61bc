import Foundation
import QLLayouts
import QLQuantized
import QLTensor

/// A model's tensors by state-dict key, quantized layers as ``QuantizedTensor``s: what a ComfyUI
/// checkpoint holds, in memory.
///
/// A quantized layer `L` is the entry `L.weight` holding a ``QuantizedTensor``; its scale and format
/// declaration are part of it and are written back as `L.weight_scale` and `L.comfy_quant` (or in the
/// header). Everything else (`L.bias`, `L.input_scale`, norms, embeddings) is a dense tensor.
///
/// ```swift
/// var model = try ComfyCheckpoint(contentsOf: "wan_int8.safetensors")
/// let w = model["blocks.0.attn.q.weight"]            // .quantized(BlockWiseINT8Layout ...)
/// let y = try linear(x, w!, bias: model["blocks.0.attn.q.bias"])
/// try model.write(to: "copy.safetensors")              // per-layer declarations
/// ```
public struct ComfyCheckpoint: Sendable {
    /// Keys in order (file order when loaded, insertion order after).
    public private(set) var names: [String] = []
    /// The tensors by name, byte for byte (``TensorName``): `café` in NFC and in NFD are two tensors.
    private var tensors: [TensorName: AnyTensor] = [:]
    /// Header metadata to write (string values; `_quantization_metadata` is generated, not kept here).
    public var metadata: [String: String]
    /// Tensors of the loaded file left out because the library has no tensors of their dtype (only with
    /// ``ComfyLoadOptions/skipUnsupportedDTypes``); they are not written back.
    public private(set) var skippedTensors: [String] = []

    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
    }

    /// Loads every tensor of `path`. Data stays memory-mapped where aligned (no copy), so loading costs
    /// little memory until tensors are used.
    /// - Throws: ``TensorError`` naming the file and the tensor, as ``ComfyCheckpointReader`` does, and
    ///   ``TensorError/Code/unsupportedDType`` for a tensor of a dtype the library has no tensors of
    ///   unless `options.skipUnsupportedDTypes` is set.
    public init(contentsOf path: String, options: ComfyLoadOptions = ComfyLoadOptions()) throws {
        let reader = try ComfyCheckpointReader(path: path, options: options)
        metadata = reader.metadata
        for name in reader.names {
            if options.skipUnsupportedDTypes, let entry = reader.file.entry(name), entry.dtype.tensorDType == nil {
                skippedTensors.append(name)
                continue
            }
            self[name] = try reader.tensor(name)
        }
    }

    /// The tensor at `name`; setting a new name appends it, setting `nil` removes it.
    public subscript(name: String) -> AnyTensor? {
        get { tensors[TensorName(name)] }
        set {
            let key = TensorName(name)
            if newValue != nil && tensors[key] == nil { names.append(name) }
            if newValue == nil && tensors[key] != nil { names.removeAll { TensorName($0) == key } }
            tensors[key] = newValue
        }
    }

    /// Quantized layers (names without `.weight`) and their formats, in order.
    public var quantizedLayers: [(layer: String, format: ComfyQuantFormat)] {
        names.compactMap { name in
            guard name.hasSuffix(ComfyKeys.weight), let q = self[name]?.quantizedTensor,
                  let format = ComfyQuantFormat(layout: q.layout) else { return nil }
            return (String(name.dropLast(ComfyKeys.weight.count)), format)
        }
    }

    /// Writes the checkpoint in ComfyUI's format, streaming tensor by tensor through a temporary file.
    ///
    /// A quantized `L.weight` becomes `L.weight` (I8 or F8_E4M3 codes), `L.weight_scale` (F32) and, with
    /// `.perLayer` declarations, `L.comfy_quant` (U8 JSON); with `.header`, the layers are listed in the
    /// `_quantization_metadata` header entry instead.
    /// - Throws: ``TensorError/Code/unsupportedOperation`` for a quantized tensor that is not a weight
    ///   (`L.weight`), whose layout ComfyUI has no format for (activation blocking, say), or an INT8 weight
    ///   that is not 2-D; ``TensorError/Code/io`` when writing fails.
    public func write(to path: String, declaration: ComfyQuantDeclaration = .perLayer) throws {
        var declarations: [SafetensorsWriter.Declaration] = []
        var payloads: [(name: String, write: (SafetensorsWriter) throws -> Void)] = []
        var layers: [(layer: String, format: ComfyQuantFormat)] = []
        for name in names {
            switch self[name]! {
            case .dense(let tensor):
                declarations.append(.init(name: name, dtype: SafetensorsDType(tensor.dtype), shape: tensor.shape))
                payloads.append((name, { try $0.write(name, tensor: tensor) }))
            case .quantized(let q):
                guard name.hasSuffix(ComfyKeys.weight), let format = ComfyQuantFormat(layout: q.layout) else {
                    throw TensorError(.unsupportedOperation, "\(path): tensor `\(name)`: ComfyUI checkpoints hold "
                        + "quantized weights `L.weight` in \(ComfyQuantFormat.supportedNames.joined(separator: " or "))"
                        + "; \(q.layout) cannot be written, dequantize it first")
                }
                if case .int8Blockwise = format, q.rank != 2 {
                    throw TensorError(.unsupportedOperation, "\(path): tensor `\(name)`: an int8_blockwise weight "
                        + "must be 2-D (N, K), this one is \(q.shape)")
                }
                let layer = String(name.dropLast(ComfyKeys.weight.count))
                layers.append((layer, format))
                let parts = ComfyLayerTensors(layer: layer, format: format, shape: q.shape,
                                              declaration: declaration)
                declarations += parts.declarations
                payloads.append((name, { try parts.write(q, to: $0) }))
            }
        }
        var header = metadata.filter { $0.key != ComfyKeys.quantizationMetadata }
        if declaration == .header && !layers.isEmpty {
            header[ComfyKeys.quantizationMetadata] = ComfyKeys.quantizationMetadata(layers)
        }
        let writer = try SafetensorsWriter(path: path, tensors: declarations, metadata: header)
        do {
            for payload in payloads { try payload.write(writer) }
            try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
    }
}

/// The tensors one quantized layer becomes in a ComfyUI checkpoint, and how to write them.
struct ComfyLayerTensors {
    let layer: String
    let format: ComfyQuantFormat
    let shape: [Int]
    let declaration: ComfyQuantDeclaration

    var comfyQuantBytes: [UInt8] { Array(format.json.utf8) }

    var declarations: [SafetensorsWriter.Declaration] {
        var result: [SafetensorsWriter.Declaration] = [
            .init(name: layer + ComfyKeys.weight, dtype: format.weightDType, shape: shape),
            .init(name: layer + ComfyKeys.weightScale, dtype: .float32, shape: format.scaleShape(forWeight: shape)),
        ]
        if declaration == .perLayer {
            result.append(.init(name: layer + ComfyKeys.comfyQuant, dtype: .uint8, shape: [comfyQuantBytes.count]))
        }
        return result
    }

    /// Writes codes, scale and (per-layer) declaration of `q`, whose layout is `format`'s.
    func write(_ q: QuantizedTensor, to writer: SafetensorsWriter) throws {
        try writer.write(layer + ComfyKeys.weight, tensor: q.data)
        let scale = try q.scale.to(.cpu).reshaped(format.scaleShape(forWeight: shape))
        try writer.write(layer + ComfyKeys.weightScale, tensor: scale)
        if declaration == .perLayer {
            try comfyQuantBytes.withUnsafeBytes { try writer.write(layer + ComfyKeys.comfyQuant, bytes: $0) }
        }
    }
}
