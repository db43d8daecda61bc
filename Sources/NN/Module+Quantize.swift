import QuantizedLinear

/// What ``Module/quantizeLinears(layout:floatInput:include:exclude:)`` or
/// ``Module/quantizeEmbeddings(layout:include:exclude:)`` did, layer by layer.
public struct QuantizationReport: Sendable, CustomStringConvertible {
    /// A linear layer that was quantized.
    public struct Layer: Sendable {
        public let name: String
        public let shape: [Int]
        /// Layer bytes (weight and bias) before (dense weight) and after (codes + scales).
        public let bytesBefore: Int
        public let bytesAfter: Int
    }

    public let layout: String
    /// What the quantized linear layers do with a float input; nil for embedding tables.
    public let floatInput: LinearOptions.FloatInputMode?
    /// What was walked: "linear layers" or "embedding tables".
    public let kind: String
    public internal(set) var quantized: [Layer] = []
    /// Linear layers left as they were, with the reason (not matched, excluded, already quantized).
    public internal(set) var skipped: [(name: String, reason: String)] = []

    public var description: String {
        let before = quantized.map(\.bytesBefore).reduce(0, +)
        let after = quantized.map(\.bytesAfter).reduce(0, +)
        let mode = floatInput.map { " (\($0.rawValue))" } ?? ""
        var lines = ["\(quantized.count) \(kind) quantized with \(layout)\(mode): \(before) -> \(after) bytes"]
        lines += skipped.map { "  kept \($0.name): \($0.reason)" }
        return lines.joined(separator: "\n")
    }
}

extension Module {
    /// Quantizes the weights of the linear layers whose names match, like torchao's `quantize_` or
    /// mlx-swift's `quantize(model:)`.
    ///
    /// ```swift
    /// let report = try model.quantizeLinears(layout: try BlockWiseINT8Layout.weight(blockSize: 128),
    ///                                        include: [try LayerPattern("encoder.layer.*")])
    /// print(report)   // 36 linear layers quantized with BlockWiseINT8Layout(...) ...
    /// ```
    /// Embedding tables and layer norms are not touched (they are not linear layers; see
    /// ``quantizeEmbeddings(layout:include:exclude:)``).
    /// - Parameters:
    ///   - layout: the weight layout (``BlockWiseINT8Layout/weight(blockSize:rounding:)``,
    ///     ``TensorCoreFP8Layout/dynamic``, or one from another module).
    ///   - floatInput: W8A8 (``LinearOptions/FloatInputMode/quantizeInput``) or weight-only
    ///     (``LinearOptions/FloatInputMode/dequantizeWeight``), set on every matched layer, including
    ///     ones the checkpoint already had quantized.
    ///   - include: layer-name patterns (``LayerPattern``: globs, or `re:` regexes); empty means every linear.
    ///   - exclude: patterns of layers to leave dense.
    /// - Returns: the layers quantized and the ones kept, with the reason.
    /// - Throws: the quantizer's errors (a non-finite weight), naming the layer.
    @discardableResult
    public mutating func quantizeLinears(layout: some QuantizedLayout,
                                         floatInput: LinearOptions.FloatInputMode = .quantizeInput,
                                         include: [LayerPattern] = [], exclude: [LayerPattern] = []) throws
        -> QuantizationReport {
        var report = QuantizationReport(layout: "\(layout)", floatInput: floatInput, kind: "linear layers")
        try updateLinears { name, layer in
            if let reason = Self.patternSkipReason(name, include: include, exclude: exclude) {
                report.skipped.append((name, reason))
                return
            }
            layer.floatInput = floatInput
            if let existing = layer.weight.quantizedTensor {
                report.skipped.append((name, "already quantized (\(existing.layout))"))
                return
            }
            let before = layer.byteCount
            do {
                try layer.quantize(layout: layout, floatInput: floatInput)
            } catch let error as TensorError {
                throw TensorError(error.code, "layer `\(name)`: \(error.message)", underlying: error.underlying)
            }
            report.quantized.append(.init(name: name, shape: layer.weight.shape, bytesBefore: before,
                                          bytesAfter: layer.byteCount))
        }
        return report
    }
}

extension Module {
    /// Why the layer `name` is left out by the `include` / `exclude` patterns of a quantize walk, or nil
    /// when it is taken (an empty `include` takes every name).
    static func patternSkipReason(_ name: String, include: [LayerPattern], exclude: [LayerPattern]) -> String? {
        if !include.isEmpty && !include.contains(where: { $0.matches(name) }) { return "matches no include pattern" }
        if let pattern = exclude.first(where: { $0.matches(name) }) { return "excluded by `\(pattern)`" }
        return nil
    }

    /// Quantizes the tables of the embedding layers whose names match (token, position, ... tables),
    /// each with `layout`; lookups then gather and dequantize only the rows they read.
    ///
    /// ```swift
    /// try model.quantizeEmbeddings(layout: try BlockWiseINT8Layout.activation(blockSize: 128))
    /// ```
    /// - Parameters:
    ///   - layout: a layout whose rows dequantize on their own: block-wise INT8 with 1 x B blocks
    ///     (``BlockWiseINT8Layout/activation(blockSize:rounding:)``) or ``TensorCoreFP8Layout/dynamic``.
    ///   - include: name patterns (``LayerPattern``); empty means every embedding layer.
    ///   - exclude: patterns of tables to leave dense.
    /// - Returns: the tables quantized (``QuantizationReport/quantized``) and the ones kept, with the reason.
    /// - Throws: ``TensorError/Code/invalidArgument`` for blocks over several rows, the quantizer's
    ///   errors, naming the layer.
    @discardableResult
    public mutating func quantizeEmbeddings(layout: some QuantizedLayout, include: [LayerPattern] = [],
                                            exclude: [LayerPattern] = []) throws -> QuantizationReport {
        var report = QuantizationReport(layout: "\(layout)", floatInput: nil, kind: "embedding tables")
        try updateEmbeddings { name, layer in
            if let reason = Self.patternSkipReason(name, include: include, exclude: exclude) {
                report.skipped.append((name, reason))
                return
            }
            if layer.isQuantized {
                report.skipped.append((name, "already quantized"))
                return
            }
            let before = layer.byteCount
            do {
                try layer.quantize(layout: layout)
            } catch let error as TensorError {
                throw TensorError(error.code, "embedding `\(name)`: \(error.message)", underlying: error.underlying)
            }
            report.quantized.append(.init(name: name, shape: layer.table.shape, bytesBefore: before,
                                          bytesAfter: layer.byteCount))
        }
        return report
    }
}
