import QLQuantized
import QLTensor

/// A layout whose quantized tensors the backends' kernels produce (the two built-in ones): gelu and
/// weight updates are both "quantize `transform(source)`" with the layout's kernel, so their handlers,
/// the quantizer, transpose and linear are registered once here for every such layout.
protocol KernelQuantizedLayout: QuantizedLayout {
    /// `transform(source)` quantized with this layout by the kernel of the source's device, the
    /// transformed values rounded to `originalDType` first (as a float op would give them).
    /// - Throws: ``Declined`` when the backend's kernel declines (or the shape has no blocks).
    func quantized(_ source: QuantizationSource, shape: [Int], originalDType: DType,
                   transform: QuantizationTransform, checkFinite: Bool) throws -> QuantizedTensor

    /// The codes and scales of `q` as a kernel reads them.
    static func source(of q: QuantizedTensor) -> QuantizationSource

    /// The layout gelu's result is quantized with, given the input's.
    var geluLayout: Self { get }

    /// The layout a linear with a weight of this layout quantizes a float input with for W8A8.
    var w8a8InputLayout: any KernelQuantizedLayout { get throws }

    static func linear(_ call: OpCall) throws -> AnyTensor
    static func transpose(_ call: OpCall) throws -> QuantizedTensor
}

extension KernelQuantizedLayout {
    /// One handler per op, for tensors on every device kind: each checks the operands and runs the
    /// kernel of their device's backend (`QuantizedKernels`); a kernel that declines makes the
    /// handler decline, and the registry's fallback runs (observably). `dequantize` is the layout's own.
    static func registerKernelHandlers(in registry: LayoutRegistry) {
        registry.registerQuantizer(for: Self.self, LayoutRegistry.QuantizeKernel { tensor, layout in
            guard let layout = layout as? Self else { return nil }
            try QuantizationInput.check(tensor, layout: Self.name)
            do {
                return try layout.quantized(.dense(tensor), shape: tensor.shape, originalDType: tensor.dtype,
                                            transform: .none, checkFinite: true)
            } catch is Declined {
                return nil  // the layout's own quantize serves it (or says why it cannot)
            }
        })
        registry.register(.gelu, for: Self.self, OpHandler { call in
            try HandlerResult.attempt {
                let (q, layout) = try UnaryOperand.quantized(call, as: Self.self)
                return .quantized(try layout.geluLayout.quantized(
                    source(of: q), shape: q.shape, originalDType: q.originalDType,
                    transform: .gelu(call.attributes.geluApproximation), checkFinite: false))
            }
        })
        registry.register(.weightUpdate, for: Self.self, OpHandler { call in
            try HandlerResult.attempt {
                let (weight, layout) = try UnaryOperand.quantized(call, as: Self.self)
                let delta = try UnaryOperand.delta(call, weight: weight)
                // Re-quantized with the weight's own layout (for INT8 its blocks: it stays a GEMM weight).
                return .quantized(try layout.quantized(
                    source(of: weight), shape: weight.shape, originalDType: weight.originalDType,
                    transform: .addDelta(delta, strength: call.attributes.deltaStrength), checkFinite: true))
            }
        })
        registry.register(.transpose, for: Self.self, OpHandler { call in
            // Codes (and a scale grid) swap as views; kernels make them contiguous when they read them.
            try HandlerResult.attempt { .quantized(try transpose(call)) }
        })
        registry.register(.linear, for: Self.self, OpHandler { call in
            try HandlerResult.attempt { try linear(call) }
        })
    }
}
