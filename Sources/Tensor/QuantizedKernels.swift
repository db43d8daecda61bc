/// The kernel contract between the quantized layouts (module `QLLayouts`) and the backends
/// (`QLCPU`, `QLCUDA`): what the two built-in layouts need computed on a device.
///
/// A layout's handler checks the op's operands, then asks the backend of their device
/// (``DeviceBackends/kernels(for:)``) for one of these kernels: the handler decides *which layout
/// handler* runs, the backend *which kernel*. Every kernel either computes (``KernelResult/done(_:)``)
/// or declines with the reason it cannot (``KernelResult/declined(_:)``); the handler then declines
/// too, and the registry's fallback runs, observably. A kernel that has a fallback path of its own
/// (a slower general kernel, or dequantized operands and a float GEMM) reports it through the
/// ``KernelFallback`` it is given before running it. Operands are on the backend's device; results
/// are on the same device.
///
/// Arithmetic (every backend; the layouts' references in `QLLayouts` define it):
/// - block-wise INT8: `scale = amax(|block|) / 127`, `q = clamp(round(x / scale), -127, 127)`,
///   `x' = q * scale`;
/// - per-tensor FP8: `scale = fixed ?? amax / 448` (1 for all zeros), `q = e4m3(clamp(x / scale, ±448))`;
/// - W8A8 INT8 (per output element, K blocks j in order, float32):
///   `y = sum_j float(sum_{k in j} qx qw) * (sx[m,j] * sw[n/Bn,j]) + b`;
/// - weight-only: `y = sum_k x[m,k] * (q[n,k] * s) + b`, the weight dequantized exactly;
/// - FP8 x FP8: `y = (sum_k float(qx) float(qw)) * (sx * sw) + b`.
package protocol QuantizedKernels: Sendable {
    /// Block-wise INT8 codes and scales of `transform(source)` (logical shape `shape`), the
    /// transformed values rounded to `roundTo` first (the dtype a float op would give them).
    /// - Parameter checkFinite: whether NaN or infinity must throw ``TensorError/Code/nonFiniteValue``;
    ///   a backend that finds them for free may throw anyway.
    func quantizeINT8(_ source: QuantizationSource, shape: [Int], blocks: INT8Blocks,
                      transform: QuantizationTransform, roundTo: DType,
                      checkFinite: Bool) throws -> KernelResult<INT8Parts>

    /// `q * scale` of each element's block, in `dtype`.
    func dequantizeINT8(codes: Tensor, scales: Tensor, blocks: INT8Blocks, to dtype: DType) throws
        -> KernelResult<Tensor>

    /// W8A8: input codes `(M, K)` in 1 x Bk blocks with scales `(M, ceil(K / Bk))`, weight codes
    /// `(N, K)` in `weightBlocks`; returns `(M, N)` in `outputDType`.
    func linearINT8(inputCodes: Tensor, inputScales: Tensor, weight: INT8Parts, weightBlocks: INT8Blocks,
                    bias: Tensor?, outputDType: DType, fallback: KernelFallback) throws -> KernelResult<Tensor>

    /// Weight-only INT8: float input `(M, K)`; returns `(M, N)` in the input's dtype.
    func linearINT8WeightOnly(input: Tensor, weight: INT8Parts, weightBlocks: INT8Blocks,
                              bias: Tensor?) throws -> KernelResult<Tensor>

    /// Per-tensor FP8 codes and scale of `transform(source)`, rounded to `roundTo` first;
    /// `fixedScale` replaces the dynamic `amax / 448`.
    func quantizeFP8(_ source: QuantizationSource, fixedScale: Float?, transform: QuantizationTransform,
                     roundTo: DType, checkFinite: Bool) throws -> KernelResult<FP8Parts>

    /// `float(q) * scale`, in `dtype`.
    func dequantizeFP8(codes: Tensor, scale: Tensor, to dtype: DType) throws -> KernelResult<Tensor>

    /// FP8 x FP8: input codes `(M, K)`, weight codes `(N, K)`; returns `(M, N)` in `outputDType`.
    func linearFP8(input: FP8Parts, weight: FP8Parts, bias: Tensor?, outputDType: DType,
                   fallback: KernelFallback) throws -> KernelResult<Tensor>

    /// Weight-only FP8: float input `(M, K)`; returns `(M, N)` in the input's dtype.
    func linearFP8WeightOnly(input: Tensor, weight: FP8Parts, bias: Tensor?) throws -> KernelResult<Tensor>

    /// W8A8 on a float input `(M, K)` that the kernel quantizes itself, into 1 x `weightBlocks.columns`
    /// blocks with the weight's rounding: the same result, bit for bit, as ``quantizeINT8(_:shape:blocks:transform:roundTo:checkFinite:)``
    /// (no finiteness check) then ``linearINT8(inputCodes:inputScales:weight:weightBlocks:bias:outputDType:fallback:)``,
    /// in fewer passes. `nil` when the backend has no such kernel for the problem (the caller then
    /// quantizes and calls `linearINT8`); not a fallback, the same arithmetic either way.
    func linearINT8QuantizingInput(input: Tensor, weight: INT8Parts, weightBlocks: INT8Blocks, bias: Tensor?,
                                   outputDType: DType) throws -> Tensor?

    /// FP8 x FP8 on a float input `(M, K)` that the kernel quantizes itself (per-tensor scale, the same codes
    /// and scale as ``quantizeFP8(_:fixedScale:transform:roundTo:checkFinite:)`` without a finiteness check),
    /// then ``linearFP8(input:weight:bias:outputDType:fallback:)``'s product `(sum_k qx qw) * (sx * sw) + b`
    /// (products exact, the sum's rounding within FP8's tolerance), in one pass. `nil` when the backend has
    /// no such kernel for the problem (the caller then quantizes and calls `linearFP8`); not a fallback.
    func linearFP8QuantizingInput(input: Tensor, weight: FP8Parts, bias: Tensor?, outputDType: DType) throws -> Tensor?

    /// Runs the kernel calls of one op (e.g. a linear's input quantization, then its GEMM) as one unit
    /// of about `multiplyAdds` multiply-adds. The CPU holds the compute threads such an op can use for
    /// all of its calls, so concurrent callers take turns op by op instead of interleaving their
    /// kernels; other backends just run `body`.
    func runningOp<R>(multiplyAdds: Int, _ body: () throws -> R) throws -> R
}

extension QuantizedKernels {
    /// No fused kernel: the caller quantizes, then calls `linearINT8`.
    package func linearINT8QuantizingInput(input: Tensor, weight: INT8Parts, weightBlocks: INT8Blocks, bias: Tensor?,
                                           outputDType: DType) throws -> Tensor? { nil }

    /// No fused kernel: the caller quantizes, then calls `linearFP8`.
    package func linearFP8QuantizingInput(input: Tensor, weight: FP8Parts, bias: Tensor?,
                                          outputDType: DType) throws -> Tensor? { nil }

    /// No resources to hold across an op's kernel calls.
    package func runningOp<R>(multiplyAdds: Int, _ body: () throws -> R) throws -> R { try body() }
}

/// A kernel's answer: the result, or why this backend cannot compute it.
package enum KernelResult<Value> {
    case done(Value)
    case declined(String)
}

/// Where a kernel reports that it is about to run a fallback path of its own instead of the kernel
/// the problem asked for. The layout handler that called the kernel turns each report into a
/// fallback event (`FallbackStatistics`: counted, recorded, and thrown under the `fail` policy), so
/// the report comes before the fallback path runs.
package struct KernelFallback: Sendable {
    private let record: @Sendable (String) throws -> Void

    package init(_ record: @escaping @Sendable (String) throws -> Void) {
        self.record = record
    }

    /// Reports the fallback and why (what the kernel could not take, and what runs instead).
    /// - Throws: ``TensorError/Code/fallbackForbidden`` under the `fail` policy.
    package func report(_ reason: String) throws { try record(reason) }
}

/// The block shape and rounding of a block-wise INT8 tensor, as kernels see them.
package struct INT8Blocks: Hashable, Sendable {
    package let rows: Int
    package let columns: Int
    package let rounding: Rounding

    package init(rows: Int, columns: Int, rounding: Rounding) {
        self.rows = rows
        self.columns = columns
        self.rounding = rounding
    }

    /// Whether blocks are `1 x B` along the last dimension (what the INT8 GEMM needs of its input).
    package var alongRows: Bool { rows == 1 }

    /// The shape of the scale grid for a tensor of `shape`: `batch + [ceil(R / rows), ceil(C / columns)]`,
    /// or `[ceil(C / columns)]` for rank 1.
    package func scaleShape(for shape: [Int]) -> [Int] {
        guard let columnCount = shape.last else { return [] }
        let columnBlocks = ShapeArithmetic.ceilDiv(columnCount, columns)
        guard shape.count >= 2 else { return [columnBlocks] }
        let rowCount = shape[shape.count - 2]
        return Array(shape.dropLast(2)) + [ShapeArithmetic.ceilDiv(rowCount, rows), columnBlocks]
    }
}

/// A tensor viewed as `batches` matrices of `rows x columns` (a rank-1 tensor is one row).
package struct MatrixGeometry: Sendable {
    package let batches: Int
    package let rows: Int
    package let columns: Int

    package init(_ shape: [Int]) {
        columns = shape.last ?? 1
        rows = shape.count >= 2 ? shape[shape.count - 2] : 1
        batches = shape.count >= 2 ? shape.dropLast(2).reduce(1, *) : 1
    }
}

/// Block-wise INT8 codes (int8, the tensor's shape) and their float32 scale grid.
package struct INT8Parts: Sendable {
    package let codes: Tensor
    package let scales: Tensor

    package init(codes: Tensor, scales: Tensor) {
        self.codes = codes
        self.scales = scales
    }
}

/// FP8 e4m3fn codes (the tensor's shape) and their one-element float32 scale.
package struct FP8Parts: Sendable {
    package let codes: Tensor
    package let scale: Tensor

    package init(codes: Tensor, scale: Tensor) {
        self.codes = codes
        self.scale = scale
    }
}

/// What a quantizer reads.
package enum QuantizationSource: Sendable {
    /// A dense float tensor.
    case dense(Tensor)
    /// Block-wise INT8 codes with their scale grid (the same block shape as the output).
    case int8(INT8Parts)
    /// FP8 codes with their one-element scale.
    case fp8(FP8Parts)

    /// The tensor whose shape and device the source has.
    package var primary: Tensor {
        switch self {
        case .dense(let t): t
        case .int8(let parts): parts.codes
        case .fp8(let parts): parts.codes
        }
    }
}

/// What is applied to the source values before they are quantized.
package enum QuantizationTransform: Sendable {
    case none
    /// `gelu(x)`.
    case gelu(GeluApproximation)
    /// `x + strength * delta` (a LoRA merge); `delta` has the tensor's shape.
    case addDelta(Tensor, strength: Float)
}
