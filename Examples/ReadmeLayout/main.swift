import QuantizedLinear

/// Symmetric INT8 with one scale for the whole tensor: q = round(w / s), s = max|w| / 127.
struct PerTensorINT8Layout: QuantizedLayout, Hashable {
    static let name = "PerTensorINT8Layout"                    // stable: registry and checkpoint key
    var description: String { Self.name }

    func quantize(_ tensor: Tensor) throws -> QuantizedTensor {  // the definition (and test oracle)
        let values = try tensor.floats()
        let scale = (values.map(abs).max() ?? 0) / 127
        let codes = values.map { scale > 0 ? Int8(($0 / scale).rounded()) : 0 }
        return QuantizedTensor(unchecked: self, data: try Tensor(elements: codes, shape: tensor.shape),
                               scale: try Tensor([scale], shape: [1]), shape: tensor.shape,
                               originalDType: tensor.dtype)
    }

    func dequantize(_ q: QuantizedTensor, to dtype: DType) throws -> Tensor {
        let scale = try q.scale.floats()[0]
        return try Tensor(try q.data.elements(as: Int8.self).map { Float($0) * scale }, shape: q.shape, dtype: dtype)
    }

    func validate(data: Tensor, scale: Tensor, shape: [Int]) throws {
        guard data.dtype == .int8, data.shape == shape, scale.shape == [1] else {
            throw TensorError(.shapeMismatch, "per-tensor INT8 parts do not fit shape \(shape)")
        }
    }

    static func registerHandlers(in registry: LayoutRegistry) {  // called when the layout is first seen
        registry.register(.linear, for: Self.self, OpHandler(backend: .cpu) { call in
            guard let x = call.operand(0)?.denseTensor, let w = call.operand(1)?.quantizedTensor,
                  call.operand(2) == nil else { return .declined("no bias support") }  // -> the fallback
            return .done(.dense(try DenseOps.linear(x, try w.dequantize())))        // y = x (q s)^T
        })
    }
}

let q = try QuantizedTensor.fromFloat(try Tensor.randomNormal([64, 128], seed: 1), layout: PerTensorINT8Layout())
let x = try Tensor.randomNormal([2, 128], seed: 2)
let (y, events) = try FallbackStatistics.recording { try linear(x, q) }      // the handler above: no events
let (t, fellBack) = try FallbackStatistics.recording { try transpose(q) }    // no handler: one fallback event
print(y.shape, events.count, t.shape, fellBack.map(\.reason))
