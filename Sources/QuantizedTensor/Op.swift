import QLTensor

/// The closed set of ops the dispatcher routes.
public enum Op: String, Sendable, Hashable, CaseIterable {
    /// `y = x W^T + b`; operands: input, weight, optional bias.
    case linear
    /// `a @ b`; operands: a, b.
    case matmul
    /// Elementwise GELU; operand: x. Attribute: ``OpAttributes/geluApproximation``.
    case gelu
    /// Elementwise `a + b` with broadcasting; operands: a, b.
    case add
    /// Swap two axes; operand: x. Attribute: ``OpAttributes/transposeAxes``.
    case transpose
    /// Back to a dense float tensor; operand: x. Attribute: ``OpAttributes/outputDType``.
    case dequantize
    /// `W + strength * delta`, re-quantized like `W` (a LoRA merge); operands: weight, delta.
    case weightUpdate
    /// Layer norm over the last dimension; operands: x, optional weight, optional bias.
    /// Attribute: ``OpAttributes/epsilon``.
    case layerNorm
    /// Softmax over the last dimension; operands: x, optional additive mask `(B, C)`.
    case softmax
    /// Rows of a table gathered by int32 indices; operands: table, indices.
    case embedding
    /// Elementwise `a * b`, `b` broadcast over `a`'s leading dimensions; operands: a, b.
    case multiply
    /// `x * factor`; operand: x. Attribute: ``OpAttributes/factor``.
    case scaled
    /// Batched `a @ b` (or `a @ b^T`); operands: a, b. Attribute: ``OpAttributes/transposeB``.
    case batchedMatmul
    /// Mean over the sequence positions a mask keeps; operands: x `(B, S, D)`, mask `(B, S)`.
    case maskedMeanPool
    /// `x / max(||x||, eps)` over the last dimension; operand: x. Attribute: ``OpAttributes/epsilon``.
    case l2Normalize
    /// Generic utility: a copy sharing no storage.
    case clone
    /// Generic utility: contiguous components.
    case contiguous
    /// Generic utility: move to ``OpAttributes/targetDevice``.
    case toDevice

    /// Ops every layout gets for free by applying them to its component tensors.
    public var isGenericUtility: Bool {
        switch self {
        case .clone, .contiguous, .toDevice: true
        default: false
        }
    }
}

/// How a linear layer treats a float input when its weight is quantized, and what it returns.
public struct LinearOptions: Sendable {
    /// What to do with a dense input when the weight is quantized.
    public enum FloatInputMode: String, Sendable, CaseIterable {
        /// Quantize the input on the fly (dynamic scales) and run the quantized x quantized GEMM.
        case quantizeInput
        /// Use the weight dequantized and run a float GEMM (weight-only quantization).
        case dequantizeWeight
    }

    public var floatInput: FloatInputMode
    /// When set, the output is returned quantized with this layout (e.g. INT8 activation blocks)
    /// instead of dense.
    public var outputLayout: (any QuantizedLayout)?

    public init(floatInput: FloatInputMode = .quantizeInput, outputLayout: (any QuantizedLayout)? = nil) {
        self.floatInput = floatInput
        self.outputLayout = outputLayout
    }
}

/// Typed attributes of an op call; each op reads only its own.
public struct OpAttributes: Sendable {
    public var linear = LinearOptions()
    public var geluApproximation = GeluApproximation.none
    public var transposeAxes: (Int, Int) = (-2, -1)
    /// For ``Op/dequantize``: the dtype wanted, or `nil` for the original dtype.
    public var outputDType: DType?
    /// For ``Op/weightUpdate``: the factor on the delta.
    public var deltaStrength: Float = 1
    /// For ``Op/toDevice``.
    public var targetDevice = Device.cpu
    /// For ``Op/layerNorm`` and ``Op/l2Normalize``: the epsilon of the denominator.
    public var epsilon: Float = 1e-12
    /// For ``Op/scaled``: the factor.
    public var factor: Float = 1
    /// For ``Op/batchedMatmul``: whether the right operand is `(..., N, K)` and used transposed.
    public var transposeB = false

    public init() {}
}

/// One op invocation: the op, its operands (a `nil` operand is an absent optional one, such as
/// a bias), and its attributes.
public struct OpCall: Sendable {
    public var op: Op
    public var operands: [AnyTensor?]
    public var attributes: OpAttributes

    public init(_ op: Op, _ operands: [AnyTensor?], _ attributes: OpAttributes = OpAttributes()) {
        self.op = op
        self.operands = operands
        self.attributes = attributes
    }

    /// The operand at `index`, or `nil` when absent.
    public func operand(_ index: Int) -> AnyTensor? {
        index < operands.count ? operands[index] : nil
    }

    /// The device all present operands are on (the first operand's).
    public var device: Device { operands.compactMap { $0 }.first?.device ?? .cpu }
}

/// What a handler says about a call: it computed the result, or it declines (and why), so that
/// the dispatcher tries the next handler or the fallback.
public enum HandlerResult: Sendable {
    case done(AnyTensor)
    case declined(String)
}

/// A native implementation of one op for one layout, on the device kinds it serves.
///
/// The built-in layouts register one handler per op for every device kind: the handler checks the
/// operands and asks the backend of their device for the kernel (`DeviceBackends.kernels(for:)`).
/// A handler written for one kind only (a custom layout's CPU code, say) names that kind.
public struct OpHandler: Sendable {
    /// The device kinds whose tensors this handler computes on.
    public let backends: Set<DeviceKind>
    public let body: @Sendable (OpCall) throws -> HandlerResult

    /// A handler for tensors on `backend`'s devices only.
    public init(backend: DeviceKind, _ body: @escaping @Sendable (OpCall) throws -> HandlerResult) {
        self.init(backends: [backend], body)
    }

    /// A handler for tensors on any of `backends` (every kind by default).
    public init(backends: Set<DeviceKind> = Set(DeviceKind.allCases),
                _ body: @escaping @Sendable (OpCall) throws -> HandlerResult) {
        self.backends = backends
        self.body = body
    }
}
