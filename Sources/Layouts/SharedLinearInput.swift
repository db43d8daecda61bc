import QLQuantized
import QLTensor

/// The W8A8 input of several linears that read the same float input (attention's query, key and value):
/// quantized once instead of once per linear.
package enum SharedLinearInput {
    /// `x` quantized the way a W8A8 linear with a weight of each of `weightLayouts` quantizes a float
    /// input, when they all do it the same way (INT8 with the same 1 x Bk blocks and rounding, or FP8);
    /// nil otherwise (a dense or custom layout, or layouts that disagree): each linear then quantizes
    /// `x` itself. The codes and scales are the ones each linear's own quantization gives.
    package static func quantized(_ x: Tensor, weightLayouts: [any QuantizedLayout]) throws -> QuantizedTensor? {
        var shared: (any KernelQuantizedLayout)?
        for weightLayout in weightLayouts {
            guard let kernelLayout = weightLayout as? any KernelQuantizedLayout else { return nil }
            let inputLayout = try kernelLayout.w8a8InputLayout
            if let shared, !shared.isEqual(to: inputLayout) { return nil }
            shared = inputLayout
        }
        guard let shared else { return nil }
        do {
            return try quantize(x, with: shared)
        } catch is Declined {
            return nil
        }
    }

    /// `x` quantized with `layout` as a linear's float input: not checked for NaN or infinity (such rows
    /// come out non-finite, as in a float linear).
    static func quantize(_ x: Tensor, with layout: any KernelQuantizedLayout) throws -> QuantizedTensor {
        try layout.quantized(.dense(x), shape: x.shape, originalDType: x.dtype, transform: .none, checkFinite: false)
    }
}
