import QuantizedLinear

/// A piece of a model with named parameters: a layer (``Linear``, ``LayerNorm``, ``Embedding``) or a
/// block made of layers, down to a whole model.
///
/// A module lists its layers by their checkpoint names, so that tools can walk a model without knowing
/// its type: ``Module/quantizeLinears(layout:floatInput:include:exclude:)`` (the counterpart of
/// torchao's `quantize_` and mlx-swift's `quantize(model:)`), ``Module/moved(to:)`` and
/// ``Module/parameterByteCount``. Modules are values: a walk that changes layers changes this copy.
///
/// A block implements the two requirements by forwarding to its children with ``ModuleChildren``:
///
/// ```swift
/// struct FeedForward: Module {
///     var up: Linear
///     var down: Linear
///     mutating func updateLinears(_ body: (String, inout Linear) throws -> Void) rethrows {
///         try ModuleChildren.linears(of: &up, named: "up", body)
///         try ModuleChildren.linears(of: &down, named: "down", body)
///     }
///     mutating func updateTensors(_ body: (String, inout Tensor) throws -> Void) rethrows {}
/// }
/// ```
public protocol Module: Sendable {
    /// Calls `body` with every linear layer of this module (itself included, for a ``Linear``) and its
    /// name relative to this module (`"attention.self.query"`; `""` for the module itself). `body` may
    /// replace the layer.
    mutating func updateLinears(_ body: (_ name: String, _ layer: inout Linear) throws -> Void) rethrows

    /// Calls `body` with every parameter that is not part of a linear layer (layer-norm weights,
    /// dense embedding tables) and its name relative to this module. `body` may replace the tensor.
    mutating func updateTensors(_ body: (_ name: String, _ tensor: inout Tensor) throws -> Void) rethrows

    /// Calls `body` with every ``Embedding`` of this module and its name relative to this module
    /// (`"word_embeddings"`; `""` for the module itself). `body` may replace the layer. The default
    /// lists none: a block holding embeddings forwards to them (``ModuleChildren/embeddings(of:named:_:)``),
    /// or ``Module/quantizeEmbeddings(layout:include:exclude:)`` and ``Module/moved(to:)`` miss its
    /// quantized tables.
    mutating func updateEmbeddings(_ body: (_ name: String, _ layer: inout Embedding) throws -> Void) rethrows
}

/// Helpers for ``Module`` implementations: forward a walk to a child under its name.
public enum ModuleChildren {
    /// `parent.child` names, with an empty part left out.
    public static func qualified(_ parent: String, _ child: String) -> String {
        parent.isEmpty ? child : child.isEmpty ? parent : parent + "." + child
    }

    /// Forwards ``Module/updateLinears(_:)`` to `child`, its names prefixed with `name`.
    public static func linears<M: Module>(of child: inout M, named name: String,
                                          _ body: (String, inout Linear) throws -> Void) rethrows {
        try child.updateLinears { try body(qualified(name, $0), &$1) }
    }

    /// Forwards ``Module/updateTensors(_:)`` to `child`, its names prefixed with `name`.
    public static func tensors<M: Module>(of child: inout M, named name: String,
                                          _ body: (String, inout Tensor) throws -> Void) rethrows {
        try child.updateTensors { try body(qualified(name, $0), &$1) }
    }

    /// Forwards ``Module/updateEmbeddings(_:)`` to `child`, its names prefixed with `name`.
    public static func embeddings<M: Module>(of child: inout M, named name: String,
                                             _ body: (String, inout Embedding) throws -> Void) rethrows {
        try child.updateEmbeddings { try body(qualified(name, $0), &$1) }
    }

    /// Forwards both walks to each element of `children`, named `name.0`, `name.1`, ...
    public static func linears<M: Module>(of children: inout [M], named name: String,
                                          _ body: (String, inout Linear) throws -> Void) rethrows {
        for index in children.indices { try linears(of: &children[index], named: "\(name).\(index)", body) }
    }

    public static func tensors<M: Module>(of children: inout [M], named name: String,
                                          _ body: (String, inout Tensor) throws -> Void) rethrows {
        for index in children.indices { try tensors(of: &children[index], named: "\(name).\(index)", body) }
    }
}

extension Module {
    public mutating func updateEmbeddings(_ body: (_ name: String, _ layer: inout Embedding) throws -> Void)
        rethrows {}

    /// Every embedding layer with its name, in the module's order.
    public var embeddingLayers: [(name: String, layer: Embedding)] {
        var copy = self
        var result: [(name: String, layer: Embedding)] = []
        copy.updateEmbeddings { name, layer in result.append((name, layer)) }
        return result
    }

    /// Every linear layer with its name, in the module's order.
    public var linears: [(name: String, layer: Linear)] {
        var copy = self
        var result: [(name: String, layer: Linear)] = []
        copy.updateLinears { name, layer in result.append((name, layer)) }
        return result
    }

    /// Every other parameter with its name, in the module's order.
    public var tensors: [(name: String, tensor: Tensor)] {
        var copy = self
        var result: [(name: String, tensor: Tensor)] = []
        copy.updateTensors { name, tensor in result.append((name, tensor)) }
        return result
    }

    /// Bytes of every parameter: linear weights (codes and scales when quantized) and biases, every
    /// other tensor (layer norms, dense embedding tables) and quantized embedding tables.
    public var parameterByteCount: Int {
        linears.map(\.layer.byteCount).reduce(0, +) + tensors.map { $0.tensor.count * $0.tensor.dtype.byteSize }
            .reduce(0, +) + embeddingLayers.filter(\.layer.isQuantized).map(\.layer.byteCount).reduce(0, +)
    }

    /// The module with every parameter on `device` (dense and quantized alike).
    public func moved(to device: Device) throws -> Self {
        var copy = self
        try copy.updateLinears { _, layer in layer = try layer.moved(to: device) }
        try copy.updateTensors { _, tensor in tensor = try tensor.to(device) }
        try copy.updateEmbeddings { _, layer in layer = try layer.moved(to: device) }
        return copy
    }
}
