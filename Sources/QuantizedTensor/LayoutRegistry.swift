import Foundation
import QLTensor

/// Handlers keyed by (op, layout name), and the dispatcher that routes op calls through them.
///
/// Dispatch order for a call with at least one quantized operand:
/// 1. generic utilities (``Op/clone``, ``Op/contiguous``, ``Op/toDevice``) are applied to each
///    component tensor of each quantized operand: no handler needed;
/// 2. the handlers registered for (op, layout) of each quantized operand's layout, in operand order,
///    keeping only those for the operands' device kind; each may compute or decline;
/// 3. otherwise the fallback: subject to ``FallbackPolicy``, counted in ``FallbackStatistics``,
///    every quantized operand is dequantized and the dense op runs.
/// ``Op/dequantize`` with no handler uses the layout's own ``QuantizedLayout/dequantize(_:to:)``,
/// which is the definition of the layout, not a fallback; in place of a handler that declined, the
/// same call is a fallback (recorded under the policy).
public final class LayoutRegistry: @unchecked Sendable {
    public static let shared = LayoutRegistry()

    struct Key: Hashable {
        let op: Op
        let layout: String
    }

    private let lock = NSRecursiveLock()
    private var handlers: [Key: [OpHandler]] = [:]
    private var layouts: [String: any QuantizedLayout.Type] = [:]
    private var quantizers: [String: [QuantizeKernel]] = [:]

    /// A fast implementation of a layout's quantization (the plain one is the layout's own), for
    /// tensors on the device kinds it serves; it returns `nil` to decline a tensor.
    public struct QuantizeKernel: Sendable {
        public let backends: Set<DeviceKind>
        public let body: @Sendable (Tensor, any QuantizedLayout) throws -> QuantizedTensor?

        /// A quantizer for tensors on `backend`'s devices only.
        public init(backend: DeviceKind,
                    _ body: @escaping @Sendable (Tensor, any QuantizedLayout) throws -> QuantizedTensor?) {
            self.init(backends: [backend], body)
        }

        /// A quantizer for tensors on any of `backends` (every kind by default).
        public init(backends: Set<DeviceKind> = Set(DeviceKind.allCases),
                    _ body: @escaping @Sendable (Tensor, any QuantizedLayout) throws -> QuantizedTensor?) {
            self.backends = backends
            self.body = body
        }
    }

    public init() {}

    /// Registers `layout`'s handlers the first time the layout is seen.
    public func ensureRegistered(_ layout: any QuantizedLayout.Type) {
        lock.lock()
        defer { lock.unlock() }
        guard layouts[layout.name] == nil else { return }
        layouts[layout.name] = layout
        layout.registerHandlers(in: self)
    }

    /// Adds a handler for (op, layout); handlers registered earlier are tried first.
    public func register(_ op: Op, for layout: any QuantizedLayout.Type, _ handler: OpHandler) {
        lock.withLock {
            layouts[layout.name] = layouts[layout.name] ?? layout
            handlers[Key(op: op, layout: layout.name), default: []].append(handler)
        }
    }

    /// Adds a backend quantize kernel for `layout`; it may return `nil` to decline a tensor.
    public func registerQuantizer(for layout: any QuantizedLayout.Type, _ kernel: QuantizeKernel) {
        lock.withLock { quantizers[layout.name, default: []].append(kernel) }
    }

    /// The names of every layout registered so far, sorted.
    public var layoutNames: [String] { lock.withLock { layouts.keys.sorted() } }

    /// The layout type registered under `name`, if any (checkpoints look layouts up by name).
    public func layoutType(named name: String) -> (any QuantizedLayout.Type)? {
        lock.withLock { layouts[name] }
    }

    /// The device kinds with a native handler for (op, layout), in ``DeviceKind`` order; empty when
    /// only the fallback exists.
    public func nativeBackends(for op: Op, layout: String) -> [DeviceKind] {
        let served = lock.withLock { Set((handlers[Key(op: op, layout: layout)] ?? []).flatMap(\.backends)) }
        return DeviceKind.allCases.filter(served.contains)
    }

    /// A table of every op against every registered layout: the backends with a native handler,
    /// `generic` for utilities, or `fallback`.
    public func coverageReport() -> String {
        let names = layoutNames
        let width = max(14, (names.map(\.count).max() ?? 0) + 2)
        var lines = ["op".padding(toLength: 14, withPad: " ", startingAt: 0)
            + names.map { $0.padding(toLength: width, withPad: " ", startingAt: 0) }.joined()]
        for op in Op.allCases {
            var line = op.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0)
            for name in names {
                let backends = nativeBackends(for: op, layout: name)
                let cell = op.isGenericUtility ? "generic"
                    : backends.isEmpty ? (op == .dequantize ? "layout" : "fallback")
                    : "native(" + Set(backends).map(\.rawValue).sorted().joined(separator: ",") + ")"
                line += cell.padding(toLength: width, withPad: " ", startingAt: 0)
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    // MARK: Quantize

    /// Quantizes with a registered backend kernel for the tensor's device, else the layout's own.
    func quantize(_ tensor: Tensor, layout: any QuantizedLayout) throws -> QuantizedTensor {
        let kernels = lock.withLock { quantizers[layout.name] ?? [] }
        for kernel in kernels where kernel.backends.contains(tensor.device.kind) {
            if let result = try kernel.body(tensor, layout) { return result }
        }
        return try layout.quantize(tensor)
    }

    // MARK: Dispatch

    /// Routes `call` to a generic utility, a native handler, or the fallback.
    public func dispatch(_ call: OpCall) throws -> AnyTensor {
        let quantizedOperands = call.operands.compactMap { $0?.quantizedTensor }
        guard !quantizedOperands.isEmpty else { return try runDense(call) }
        for q in quantizedOperands { ensureRegistered(type(of: q.layout)) }
        if call.op.isGenericUtility { return try runGenericUtility(call) }

        var reasons: [String] = []
        var handlerDeclined = false
        var triedLayouts: Set<String> = []
        let kind = call.device.kind
        for q in quantizedOperands where triedLayouts.insert(q.layout.name).inserted {
            let candidates = lock.withLock { handlers[Key(op: call.op, layout: q.layout.name)] ?? [] }
            for handler in candidates where handler.backends.contains(kind) {
                switch try handler.body(call) {
                case .done(let result): return result
                case .declined(let reason):
                    reasons.append(reason)
                    handlerDeclined = true
                }
            }
            if candidates.isEmpty {
                reasons.append("no native handler")
            } else if !candidates.contains(where: { $0.backends.contains(kind) }) {
                reasons.append("no handler for \(kind.rawValue) tensors")
            }
        }
        let primary = quantizedOperands[0]
        let event = FallbackEvent(op: call.op, layout: primary.layout.name, reason: reasons.joined(separator: "; "))
        if call.op == .dequantize {
            // The layout's own dequantize is its definition; it is a fallback only in place of a
            // handler that declined (a kernel that does not write the dtype asked for, say).
            if handlerDeclined { try FallbackStatistics.shared.record(event) }
            return .dense(try primary.layout.dequantize(primary,
                                                        to: call.attributes.outputDType ?? primary.originalDType))
        }
        try FallbackStatistics.shared.record(event)
        var dense = call
        dense.operands = try call.operands.map { operand in
            try operand.map { .dense(try $0.dequantized()) }
        }
        return try runDense(dense)
    }

    private func runGenericUtility(_ call: OpCall) throws -> AnyTensor {
        guard let operand = call.operand(0) else {
            throw TensorError(.invalidArgument, "\(call.op.rawValue) needs one operand")
        }
        let transform: (Tensor) throws -> Tensor = switch call.op {
        case .clone: { try Tensor.copying($0) }
        case .contiguous: { try $0.contiguous() }
        default: { [target = call.attributes.targetDevice] in try $0.to(target) }
        }
        switch operand {
        case .dense(let t): return .dense(try transform(t))
        case .quantized(let q): return .quantized(try q.mapComponents(transform))
        }
    }

    /// The dense op on dense operands.
    func runDense(_ call: OpCall) throws -> AnyTensor {
        func dense(_ index: Int, _ role: String) throws -> Tensor {
            guard let operand = call.operand(index) else {
                throw TensorError(.invalidArgument, "\(call.op.rawValue) is missing its \(role)")
            }
            return try operand.dequantized()
        }
        let attributes = call.attributes
        switch call.op {
        case .linear:
            let bias = try call.operand(2).map { try $0.dequantized() }
            let y = try DenseOps.linear(try dense(0, "input"), try dense(1, "weight"), bias: bias)
            if let layout = attributes.linear.outputLayout {
                return .quantized(try QuantizedTensor.fromFloat(y, layout: layout))
            }
            return .dense(y)
        case .matmul:
            return .dense(try DenseOps.matmul(try dense(0, "left operand"), try dense(1, "right operand")))
        case .gelu:
            return .dense(try DenseOps.gelu(try dense(0, "input"), approximation: attributes.geluApproximation))
        case .add:
            return .dense(try DenseOps.add(try dense(0, "left operand"), try dense(1, "right operand")))
        case .transpose:
            let (a, b) = attributes.transposeAxes
            return .dense(try dense(0, "input").transposed(a, b))
        case .dequantize:
            let x = try dense(0, "input")
            return .dense(try x.converted(to: attributes.outputDType ?? x.dtype))
        case .weightUpdate:
            let weight = try dense(0, "weight")
            let delta = try dense(1, "delta")
            guard delta.shape == weight.shape else {
                throw TensorError(.shapeMismatch,
                                  "weight update: delta \(delta.shape) does not match weight \(weight.shape)")
            }
            let scaled = try Tensor(try delta.floats().map { $0 * attributes.deltaStrength }, shape: delta.shape)
            return .dense(try DenseOps.add(weight, scaled.to(weight.device)))
        case .layerNorm:
            return .dense(try DenseOps.layerNorm(try dense(0, "input"), weight: try call.operand(1)?.dequantized(),
                                                 bias: try call.operand(2)?.dequantized(), epsilon: attributes.epsilon))
        case .softmax:
            return .dense(try DenseOps.softmax(try dense(0, "input"), additiveMask: try call.operand(1)?.dequantized()))
        case .embedding:
            return .dense(try DenseOps.embedding(try dense(0, "table"), indices: try dense(1, "indices")))
        case .multiply:
            return .dense(try DenseOps.multiply(try dense(0, "left operand"), try dense(1, "right operand")))
        case .scaled:
            return .dense(try DenseOps.scaled(try dense(0, "input"), by: attributes.factor))
        case .batchedMatmul:
            return .dense(try DenseOps.batchedMatmul(try dense(0, "left operand"), try dense(1, "right operand"),
                                                     transposeB: attributes.transposeB))
        case .maskedMeanPool:
            return .dense(try DenseOps.maskedMeanPool(try dense(0, "input"), mask: try dense(1, "mask")))
        case .l2Normalize:
            return .dense(try DenseOps.l2Normalize(try dense(0, "input"), epsilon: attributes.epsilon))
        case .clone, .contiguous, .toDevice:
            return try runGenericUtility(call)
        }
    }
}
