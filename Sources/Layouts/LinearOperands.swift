import QLQuantized
import QLTensor

/// A handler's reason to pass a call on to the next handler or the fallback.
struct Declined: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}

/// The checked operands of a linear call whose weight is quantized with layout `L`.
///
/// Shape and device errors are the user's and are thrown; a weight of another layout, or a
/// quantized bias, is a combination this handler does not cover and is declined.
struct LinearOperands<L: QuantizedLayout> {
    let input: AnyTensor
    let weight: QuantizedTensor
    let weightLayout: L
    let bias: Tensor?
    /// Input rows once batch dimensions are flattened, and the GEMM sizes.
    let m: Int
    let n: Int
    let k: Int
    let outputShape: [Int]

    /// `m * n * k`, the product's multiply-adds (saturating at `Int.max`).
    var multiplyAdds: Int { ShapeArithmetic.saturatingProduct(m, n, k) }
    let options: LinearOptions

    init(_ call: OpCall) throws {
        guard let input = call.operand(0), let weightOperand = call.operand(1) else {
            throw TensorError(.invalidArgument, "linear needs an input and a weight")
        }
        guard let weight = weightOperand.quantizedTensor, let layout = weight.layout as? L else {
            throw Declined("the weight is not \(L.name)")
        }
        guard weight.rank == 2 else {
            throw TensorError(.shapeMismatch, "linear: the weight must be 2-D (out_features, in_features), "
                + "got \(weight.shape)")
        }
        guard input.shape.count >= 1 else {
            throw TensorError(.shapeMismatch, "linear: the input must have rank >= 1")
        }
        let k = weight.shape[1]
        let n = weight.shape[0]
        guard input.shape.last == k else {
            throw TensorError(.shapeMismatch, "linear: input \(input.shape) has K = \(input.shape.last ?? 0) but "
                + "weight \(weight.shape) has K = \(k); the weight must be (out_features, in_features)")
        }
        var bias: Tensor?
        if let biasOperand = call.operand(2) {
            guard let dense = biasOperand.denseTensor else { throw Declined("the bias is quantized") }
            guard dense.shape == [n] else {
                throw TensorError(.shapeMismatch, "linear: bias has shape \(dense.shape), expected [\(n)]")
            }
            guard dense.dtype.isFloatingPoint else {
                throw TensorError(.unsupportedDType, "linear: bias dtype \(dense.dtype) is not a float type")
            }
            bias = dense
        }
        let devices = Set([input.device, weight.device] + (bias.map { [$0.device] } ?? []))
        guard devices.count == 1 else {
            throw TensorError(.deviceMismatch, "linear: operands are on different devices "
                + "\(devices.map(\.description).sorted()); move them with `.to(_:)`")
        }
        guard input.floatDType.isFloatingPoint else {
            throw TensorError(.unsupportedDType, "linear: input dtype \(input.floatDType) is not a float type")
        }
        self.input = input
        self.weight = weight
        self.weightLayout = layout
        self.bias = bias
        self.k = k
        self.n = n
        self.m = input.shape.dropLast().reduce(1, *)
        self.outputShape = Array(input.shape.dropLast()) + [n]
        self.options = call.attributes.linear
    }

    /// The result `y` (of ``outputShape``): dense in the input's float dtype, or quantized with the
    /// requested output layout.
    func output(_ y: Tensor) throws -> AnyTensor {
        if let layout = options.outputLayout { return .quantized(try QuantizedTensor.fromFloat(y, layout: layout)) }
        return .dense(y)
    }
}

extension HandlerResult {
    /// Runs a handler body, turning ``Declined`` into `.declined`.
    static func attempt(_ body: () throws -> AnyTensor) throws -> HandlerResult {
        do {
            return .done(try body())
        } catch let declined as Declined {
            return .declined(declined.reason)
        }
    }
}

/// Checks of single-operand calls shared by the layouts' handlers.
enum UnaryOperand {
    /// The quantized first operand with layout `L`, or a decline.
    static func quantized<L: QuantizedLayout>(_ call: OpCall, as layout: L.Type) throws -> (QuantizedTensor, L) {
        guard let q = call.operand(0)?.quantizedTensor, let layout = q.layout as? L else {
            throw Declined("the operand is not \(L.name)")
        }
        return (q, layout)
    }

    /// An embedding call's quantized 2-D table with layout `L` (else a decline) and its indices.
    static func table<L: QuantizedLayout>(_ call: OpCall, as layout: L.Type) throws
        -> (table: QuantizedTensor, layout: L, indices: Tensor) {
        let (table, layout) = try quantized(call, as: layout)
        guard let indices = call.operand(1)?.denseTensor else {
            throw TensorError(.invalidArgument, "embedding needs a table and int32 indices")
        }
        guard table.rank == 2 else {
            throw TensorError(.shapeMismatch, "embedding: the table must be 2-D (V, D), got \(table.shape)")
        }
        return (table, layout, indices)
    }

    /// The dense delta of a weight update, checked against the weight's shape and device.
    static func delta(_ call: OpCall, weight: QuantizedTensor) throws -> Tensor {
        guard let delta = try call.operand(1)?.dequantized() else {
            throw TensorError(.invalidArgument, "weight update needs a delta")
        }
        guard delta.shape == weight.shape else {
            throw TensorError(.shapeMismatch, "weight update: delta \(delta.shape) does not match weight "
                + "\(weight.shape); a LoRA delta is up (N x r) times down (r x K)")
        }
        guard delta.device == weight.device else {
            throw TensorError(.deviceMismatch, "weight update: the delta is on \(delta.device), the weight on "
                + "\(weight.device); move the delta with `.to(_:)`")
        }
        return delta
    }
}

extension KernelResult {
    /// The kernel's result, or ``Declined`` with its reason (the handler then declines).
    func orDecline() throws -> Value {
        switch self {
        case .done(let value): return value
        case .declined(let reason): throw Declined(reason)
        }
    }
}
