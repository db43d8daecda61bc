import Foundation
import QLTensor
import QLCPU

/// The low-rank updates in one LoRA file, found by key name.
///
/// Two key forms are read, for a LoRA layer key `P`:
/// - kohya: `P.lora_up.weight` (N, r), `P.lora_down.weight` (r, K), optional `P.alpha` (a scalar);
/// - PEFT: `P.lora_B.weight` (N, r), `P.lora_A.weight` (r, K) (also with `.default` before `.weight`).
///
/// The update of the layer's weight is `delta = up @ down * (alpha / r)`, with `alpha = r` when the file
/// has none (PEFT keeps alpha outside the file). `P` is mapped to a base layer by ``LoRALayerMatcher``.
public struct LoRAFile: Sendable {
    /// One layer's update as the file holds it.
    public struct Update: Sendable, Hashable {
        /// The LoRA-side layer key `P`.
        public let key: String
        public let upName: String
        public let downName: String
        public let alphaName: String?
    }

    public let file: SafetensorsFile
    /// Updates by LoRA layer key, in file order.
    public let updates: [Update]
    /// Keys that are not part of a recognised low-rank update (DoRA scales, LoHa factors, ...); they are
    /// ignored, and the converter lists them.
    public let ignoredKeys: [String]

    private static let upSuffixes = [".lora_up.weight", ".lora_B.weight", ".lora_B.default.weight"]
    private static let downSuffixes = [".lora_down.weight", ".lora_A.weight", ".lora_A.default.weight"]
    private static let alphaSuffix = ".alpha"

    /// Opens `path` and pairs up and down matrices.
    /// - Throws: ``TensorError/Code/checkpointFormat`` naming the file and key for an up matrix
    ///   without its down matrix or the other way round, and the reader's errors for a bad file.
    public init(path: String) throws {
        file = try SafetensorsFile(path: path)
        var ups: [String: String] = [:]
        var downs: [String: String] = [:]
        var alphas: [String: String] = [:]
        var order: [String] = []
        var ignored: [String] = []
        for entry in file.entries {
            let name = entry.name
            if let suffix = Self.upSuffixes.first(where: name.hasSuffix) {
                let key = String(name.dropLast(suffix.count))
                if ups[key] == nil && downs[key] == nil { order.append(key) }
                ups[key] = name
            } else if let suffix = Self.downSuffixes.first(where: name.hasSuffix) {
                let key = String(name.dropLast(suffix.count))
                if ups[key] == nil && downs[key] == nil { order.append(key) }
                downs[key] = name
            } else if name.hasSuffix(Self.alphaSuffix) {
                alphas[String(name.dropLast(Self.alphaSuffix.count))] = name
            } else {
                ignored.append(name)
            }
        }
        updates = try order.map { key in
            guard let up = ups[key], let down = downs[key] else {
                let present = ups[key] ?? downs[key]!
                throw CheckpointError.format(path, tensor: present, "LoRA layer `\(key)` has "
                    + (ups[key] == nil ? "a down matrix but no up matrix" : "an up matrix but no down matrix")
                    + "; the LoRA file is incomplete")
            }
            return Update(key: key, upName: up, downName: down, alphaName: alphas[key])
        }
        let paired = Set(order)
        ignoredKeys = ignored + alphas.filter { !paired.contains($0.key) }.map(\.value).sorted()
    }

    /// Checks that `update` fits a layer whose weight is `weightShape`: up `(N, r)`, down `(r, K)`.
    /// - Throws: ``TensorError/Code/shapeMismatch`` naming the LoRA file, its key, the model's layer and
    ///   the shapes.
    public func checkFits(_ update: Update, layer: String, weightShape: [Int]) throws {
        let up = try file.requireEntry(update.upName)
        let down = try file.requireEntry(update.downName)
        let fits = up.shape.count == 2 && down.shape.count == 2 && weightShape.count == 2 && down.shape[0] > 0
            && up.shape[1] == down.shape[0] && up.shape[0] == weightShape[0] && down.shape[1] == weightShape[1]
        guard fits else {
            throw TensorError(.shapeMismatch, "\(file.path): LoRA `\(update.key)` (up \(up.shape), down "
                + "\(down.shape)) does not fit layer `\(layer)` of the model, whose weight is \(weightShape); "
                + "up must be (N, r) and down (r, K) with r >= 1. Is this LoRA for another model?")
        }
    }

    /// `strength * (alpha / r) * up @ down` for `update`, as a float32 `(N, K)` tensor, after checking it
    /// fits the layer (``checkFits(_:layer:weightShape:)``).
    public func delta(_ update: Update, strength: Float, layer: String, weightShape: [Int]) throws -> Tensor {
        try checkFits(update, layer: layer, weightShape: weightShape)
        let down = try file.requireEntry(update.downName)
        let rank = Float(down.shape[0])
        var alpha = rank
        if let alphaName = update.alphaName {
            let values = try file.tensor(alphaName).floats()
            guard values.count == 1, values[0].isFinite else {
                throw CheckpointError.format(file.path, tensor: alphaName, "alpha must be one finite number, got "
                    + "\(values.prefix(4))")
            }
            alpha = values[0]
        }
        // The product goes straight into the result's buffer (DenseOps.matmul would hold two layer-sized
        // copies at once, the converter's peak memory).
        let (n, r, k) = (weightShape[0], down.shape[0], weightShape[1])
        var product = try Tensor(zeros: [n, k])
        let up = try file.tensor(update.upName).floats()
        let downValues = try file.tensor(update.downName).floats()
        file.releasePages(of: update.upName)
        file.releasePages(of: update.downName)
        let factor = strength * (alpha / rank)
        try product.withUnsafeMutableElements(as: Float.self) { values in
            OpenBLAS.shared.gemmNN(m: n, n: k, k: r, a: up, b: downValues, c: values.baseAddress!)
            for index in values.indices { values[index] *= factor }
        }
        return product
    }
}

/// Maps LoRA layer keys to a model's layer names.
///
/// LoRA trainers name layers their own way: kohya flattens dots to underscores and adds a prefix
/// (`lora_unet_blocks_0_attn_q` for `blocks.0.attn.q`), PEFT adds `base_model.model.`, ComfyUI
/// checkpoints prefix `model.diffusion_model.`. Both sides are normalised (known prefixes removed, dots
/// turned into underscores) and compared; when no name is equal, a unique match on a whole-component
/// suffix (`..._attn_q`) is accepted. Two model layers that normalise alike make a key ambiguous, and
/// it matches nothing.
public struct LoRALayerMatcher: Sendable {
    /// Prefixes stripped from LoRA keys and layer names before comparing.
    public static let knownPrefixes = [
        "lora_unet_", "lora_transformer_", "base_model.model.", "model.diffusion_model.", "diffusion_model.",
        "transformer.", "unet.",
    ]

    private let byNormalizedName: [String: [String]]

    public init(layers: [String]) {
        byNormalizedName = Dictionary(grouping: layers, by: Self.normalized)
    }

    /// The model layer `key` refers to, or `nil` when none does or several could.
    public func layer(for key: String) -> String? {
        let normalized = Self.normalized(key)
        if let exact = byNormalizedName[normalized] { return exact.count == 1 ? exact[0] : nil }
        let candidates = byNormalizedName.filter { name, _ in
            name.hasSuffix("_" + normalized) || normalized.hasSuffix("_" + name)
        }
        guard candidates.count == 1, let only = candidates.first, only.value.count == 1 else { return nil }
        return only.value[0]
    }

    static func normalized(_ name: String) -> String {
        var result = Substring(name)
        while let prefix = knownPrefixes.first(where: { result.hasPrefix($0) }) {
            result = result.dropFirst(prefix.count)
        }
        return result.replacingOccurrences(of: ".", with: "_")
    }
}
