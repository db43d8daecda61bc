import QLQuantized
import QLTensor

/// Per-tensor scaled float8 e4m3fn, as the FP8 tensor cores consume it.
///
///     scale = amax(|x|) / 448      (1 for an all-zero tensor; or a fixed scale you choose)
///     q     = e4m3(clamp(x / scale, -448, 448))      (round to nearest even)
///     x'    = float(q) * scale
///
/// Codes have the tensor's shape (dtype ``DType/float8E4M3FN``); the scale is one float32.
public struct TensorCoreFP8Layout: QuantizedLayout, Hashable {
    public static let name = "TensorCoreFP8Layout"

    /// A fixed scale used instead of the dynamic `amax / 448` (a calibrated `input_scale`, say).
    public let fixedScale: Float?

    /// - Throws: ``TensorError/Code/invalidArgument`` when `fixedScale` is not positive and finite.
    public init(fixedScale: Float? = nil) throws {
        if let fixedScale, !(fixedScale > 0 && fixedScale.isFinite) {
            throw TensorError(.invalidArgument, "FP8 scale \(fixedScale) must be positive and finite")
        }
        self.fixedScale = fixedScale
    }

    /// Dynamic per-tensor scaling.
    public static let dynamic = try! TensorCoreFP8Layout()

    public var description: String {
        fixedScale.map { "TensorCoreFP8Layout(scale: \($0))" } ?? "TensorCoreFP8Layout(dynamic scale)"
    }

    public func quantize(_ tensor: Tensor) throws -> QuantizedTensor {
        try QuantizationInput.check(tensor, layout: Self.name)
        let (codes, scale) = try tensor.to(.cpu).withUnsafeFloats { values in
            try FP8Reference.quantize(values, shape: tensor.shape, fixedScale: fixedScale)
        }
        return QuantizedTensor(
            unchecked: self, data: try Tensor(elements: codes, shape: tensor.shape).to(tensor.device),
            scale: try Tensor([scale], shape: []).to(tensor.device), shape: tensor.shape,
            originalDType: tensor.dtype)
    }

    public func dequantize(_ tensor: QuantizedTensor, to dtype: DType) throws -> Tensor {
        let codes = try tensor.data.elements(as: Float8E4M3FN.self)
        let scale = try tensor.scale.floats()[0]
        return try Tensor(FP8Reference.dequantize(codes, scale: scale), shape: tensor.shape, dtype: dtype)
            .to(tensor.device)
    }

    public func validate(data: Tensor, scale: Tensor, shape: [Int]) throws {
        guard data.dtype == .float8E4M3FN else {
            throw TensorError(.unsupportedDType, "FP8 codes must be float8_e4m3fn, got \(data.dtype)")
        }
        guard data.shape == shape else {
            throw TensorError(.shapeMismatch, "FP8 codes have shape \(data.shape), expected \(shape)")
        }
        guard scale.dtype == .float32, scale.count == 1 else {
            throw TensorError(.shapeMismatch,
                              "an FP8 tensor needs one float32 scale, got \(scale.dtype) \(scale.shape)")
        }
    }
}

/// The plain-Swift definition of per-tensor FP8: oracle and fallback.
public enum FP8Reference {
    /// Codes and the per-tensor scale.
    /// - Throws: ``TensorError/Code/nonFiniteValue`` for NaN or infinity.
    public static func quantize(_ values: UnsafeBufferPointer<Float>, shape: [Int], fixedScale: Float?)
        throws -> (codes: [Float8E4M3FN], scale: Float) {
        try QuantizationInput.checkFinite(values, shape: shape, layout: TensorCoreFP8Layout.name)
        let scale = fixedScale ?? dynamicScale(values)
        let codes = values.map { Float8E4M3FN(min(max($0 / scale, -448), 448)) }
        return (codes, scale)
    }

    /// `amax / 448`, or 1 when the tensor is all zeros (the reference divides by zero there).
    public static func dynamicScale(_ values: UnsafeBufferPointer<Float>) -> Float {
        let amax = values.reduce(0) { max($0, abs($1)) }
        return amax > 0 ? amax / 448 : 1
    }

    public static func dequantize(_ codes: [Float8E4M3FN], scale: Float) -> [Float] {
        codes.map { $0.floatValue * scale }
    }

    /// FP8 x FP8 linear: `y = (sum_k qx[m,k] qw[n,k]) * sx * sw + b[n]`, accumulated in float32
    /// (each product of two e4m3 values is exact in float32).
    public static func linear(inputCodes qx: [Float8E4M3FN], inputScale sx: Float, m: Int, k: Int,
                              weightCodes qw: [Float8E4M3FN], weightScale sw: Float, n: Int,
                              bias: [Float]?) -> [Float] {
        let x = qx.map(\.floatValue)
        let w = qw.map(\.floatValue)
        var y = [Float](repeating: 0, count: m * n)
        for row in 0..<m {
            for column in 0..<n {
                var sum: Float = 0
                for p in 0..<k { sum += x[row * k + p] * w[column * k + p] }
                y[row * n + column] = sum * sx * sw + (bias?[column] ?? 0)
            }
        }
        return y
    }
}
