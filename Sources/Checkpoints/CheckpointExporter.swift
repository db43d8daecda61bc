import Foundation
import QLQuantized
import QLTensor

/// Turns a quantized ComfyUI checkpoint back into a float one.
public enum CheckpointExporter {
    /// Dequantizes every quantized layer of `input` into `dtype` and writes the result to `output`,
    /// tensor by tensor: `L.weight` becomes a float tensor, `L.weight_scale`, `L.comfy_quant` and the
    /// activation scale `L.input_scale` of quantized layers are dropped, and every other tensor and the
    /// header metadata (less `_quantization_metadata`) are copied unchanged.
    /// - Parameters:
    ///   - dtype: a float dtype: float32, float16 or bfloat16.
    ///   - progress: called after each tensor with (tensors done, tensors in all, current name).
    /// - Returns: the number of layers dequantized.
    /// - Throws: ``TensorError`` naming the file and tensor for a bad checkpoint or a failed write, and
    ///   ``TensorError/Code/invalidArgument`` when `output` is `input` (the same file, however spelled);
    ///   nothing is written at `output` then.
    @discardableResult
    public static func export(input: String, output: String, dtype: DType = .bfloat16,
                              progress: ((Int, Int, String) -> Void)? = nil) throws -> Int {
        guard [.float32, .float16, .bfloat16].contains(dtype) else {
            throw TensorError(.unsupportedDType, "export writes float32, float16 or bfloat16, not \(dtype)")
        }
        try OutputPath.requireDistinct(output, from: [input])
        let reader = try ComfyCheckpointReader(path: input, options: ComfyLoadOptions(originalDType: dtype))
        let dropped = Set(reader.formats.keys.map { TensorName($0.string + ComfyKeys.inputScale) })
        let names = reader.names.filter { !dropped.contains(TensorName($0)) }
        let declarations = try names.map { name -> SafetensorsWriter.Declaration in
            let entry = try reader.file.requireEntry(name)
            let isQuantized = reader.quantizedLayer(ofWeight: name) != nil
            return .init(name: name, dtype: isQuantized ? SafetensorsDType(dtype) : entry.dtype, shape: entry.shape)
        }
        let writer = try SafetensorsWriter(path: output, tensors: declarations, metadata: reader.metadata)
        do {
            for (index, name) in names.enumerated() {
                if let layer = reader.quantizedLayer(ofWeight: name) {
                    try writer.write(name, tensor: reader.quantizedWeight(layer: layer).dequantize(to: dtype))
                } else {
                    try reader.file.withRawBytes(of: name) { try writer.write(name, bytes: $0) }
                }
                reader.releasePages(of: name)
                progress?(index + 1, names.count, name)
            }
            try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
        return reader.formats.count
    }
}
