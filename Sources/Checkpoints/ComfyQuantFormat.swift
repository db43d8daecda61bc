import Foundation
import QLLayouts
import QLQuantized
import QLTensor

/// A layer's quantization format as ComfyUI names it in a checkpoint.
///
/// | format | `L.weight` | `L.weight_scale` | layout |
/// |---|---|---|---|
/// | `int8_blockwise` (`group_size` B) | I8 `(N, K)` | F32 `(ceil(N/B), ceil(K/B))` | `B x B` ``BlockWiseINT8Layout`` |
/// | `float8_e4m3fn` | F8_E4M3 `(N, K)` | F32, one value | ``TensorCoreFP8Layout`` |
///
/// The rounding mode is not stored in checkpoints; a loaded INT8 layer re-quantizes (a LoRA merge,
/// say) with the rounding the loader is given, nearest-even by default.
public enum ComfyQuantFormat: Hashable, Sendable, CustomStringConvertible {
    case int8Blockwise(groupSize: Int)
    case float8E4M3FN

    /// ComfyUI's block size when a declaration leaves `group_size` out.
    public static let defaultGroupSize = 128

    /// Larger group sizes are refused, in files and by the converter: the INT8 layout's own limit
    /// (``BlockWiseINT8Layout/maximumBlockDimension``), so what the converter writes the reader reads.
    public static let maximumGroupSize = BlockWiseINT8Layout.maximumBlockDimension

    /// The format names this library reads and writes.
    public static let supportedNames = ["int8_blockwise", "float8_e4m3fn"]

    /// The `format` string.
    public var name: String {
        switch self {
        case .int8Blockwise: "int8_blockwise"
        case .float8E4M3FN: "float8_e4m3fn"
        }
    }

    /// The dtype of `L.weight`.
    public var weightDType: SafetensorsDType {
        switch self {
        case .int8Blockwise: .int8
        case .float8E4M3FN: .float8E4M3
        }
    }

    /// The layout of the loaded weight.
    public func layout(rounding: Rounding = .nearestEven) throws -> any QuantizedLayout {
        switch self {
        case .int8Blockwise(let groupSize): try BlockWiseINT8Layout.weight(blockSize: groupSize, rounding: rounding)
        case .float8E4M3FN: TensorCoreFP8Layout.dynamic
        }
    }

    /// The shape `L.weight_scale` must have for a weight of `shape`.
    public func scaleShape(forWeight shape: [Int]) -> [Int] {
        switch self {
        case .int8Blockwise(let groupSize): shape.map { ShapeArithmetic.ceilDiv($0, groupSize) }
        case .float8E4M3FN: []
        }
    }

    /// The format of a quantized tensor's layout, if ComfyUI has one for it: square-block INT8 weights
    /// and per-tensor FP8.
    public init?(layout: any QuantizedLayout) {
        if let int8 = layout as? BlockWiseINT8Layout, int8.blockRows == int8.blockColumns {
            self = .int8Blockwise(groupSize: int8.blockRows)
        } else if layout is TensorCoreFP8Layout {
            self = .float8E4M3FN
        } else {
            return nil
        }
    }

    /// The declaration as the JSON object ComfyUI writes (Python `json.dumps` spacing), for example
    /// `{"format": "int8_blockwise", "group_size": 128}`.
    public var json: String {
        switch self {
        case .int8Blockwise(let groupSize): "{\"format\": \"\(name)\", \"group_size\": \(groupSize)}"
        case .float8E4M3FN: "{\"format\": \"\(name)\"}"
        }
    }

    public var description: String {
        switch self {
        case .int8Blockwise(let groupSize): "\(name) (group_size \(groupSize))"
        case .float8E4M3FN: name
        }
    }

    /// Parses one layer's declaration (`{"format": ..., "group_size": ...}`; other keys are ignored).
    /// - Throws: ``TensorError/Code/checkpointFormat`` naming `path` and `tensor` for a missing or
    ///   unknown format or a group size that is not a positive integer.
    init(declaration value: HeaderJSON, path: String, tensor: String) throws {
        guard case .object(let members) = value else {
            throw CheckpointError.format(path, tensor: tensor, "the quantization declaration must be a JSON object "
                + "like {\"format\": \"int8_blockwise\", \"group_size\": 128}")
        }
        func field(_ key: String) -> HeaderJSON? { members.first { $0.key.utf8.elementsEqual(key.utf8) }?.value }
        guard case .string(let name)? = field("format") else {
            throw CheckpointError.format(path, tensor: tensor, "the quantization declaration has no \"format\" string")
        }
        switch name {
        case "int8_blockwise":
            var groupSize = Self.defaultGroupSize
            if let value = field("group_size") {
                guard case .integer(let size) = value, size > 0, size <= Self.maximumGroupSize else {
                    throw CheckpointError.format(path, tensor: tensor, "group_size \(value.written) is not an integer in "
                        + "1...\(Self.maximumGroupSize)")
                }
                groupSize = size
            }
            self = .int8Blockwise(groupSize: groupSize)
        case "float8_e4m3fn":
            self = .float8E4M3FN
        default:
            throw CheckpointError.format(path, tensor: tensor, "quantization format \"\(name)\" is not supported "
                + "(supported: \(Self.supportedNames.joined(separator: ", ")))")
        }
    }
}

/// Where a checkpoint declares its quantized layers.
public enum ComfyQuantDeclaration: String, Sendable, CaseIterable {
    /// A U8 tensor `L.comfy_quant` per layer holding the JSON declaration (current ComfyUI).
    case perLayer
    /// One header metadata entry `_quantization_metadata`:
    /// `{"format_version": "1.0", "layers": {"L": {...}, ...}}` (older ComfyUI).
    case header
}

/// ComfyUI's key names.
public enum ComfyKeys {
    public static let weight = ".weight"
    public static let weightScale = ".weight_scale"
    public static let inputScale = ".input_scale"
    public static let comfyQuant = ".comfy_quant"
    public static let quantizationMetadata = "_quantization_metadata"

    /// The `_quantization_metadata` value for `layers` (in the given order).
    public static func quantizationMetadata(_ layers: [(layer: String, format: ComfyQuantFormat)]) -> String {
        "{\"format_version\": \"1.0\", \"layers\": {"
            + layers.map { "\(SafetensorsWriter.jsonString($0.layer)): \($0.format.json)" }.joined(separator: ", ")
            + "}}"
    }
}
