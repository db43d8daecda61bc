/// Overflow-checked arithmetic on shapes, the one place where element counts, byte counts, strides and
/// block counts are computed from untrusted dimensions.
///
/// A ``Tensor`` exists only for a shape whose *extent* fits: `prod_i max(d_i, 1) * elementSize <= Int.max`.
/// The extent bounds every partial product of the dimensions (in any order), every row-major stride and
/// the byte count, so code holding a tensor can multiply its dimensions with plain `*` and never trap.
/// A zero-element shape such as `[0, 2^40, 2^40]` has no representable row-major strides (the first
/// would be 2^80) and is refused with ``TensorError/Code/invalidArgument`` rather than trapping.
public enum ShapeArithmetic {
    /// Checks that `shape` has no negative dimension and that its extent times `elementSize` fits in `Int`.
    /// - Throws: ``TensorError/Code/invalidArgument`` naming the shape.
    public static func validate(_ shape: [Int], elementSize: Int = 1) throws {
        if let bad = shape.first(where: { $0 < 0 }) {
            throw TensorError(.invalidArgument, "shape \(shape) has a negative dimension \(bad)")
        }
        var extent = max(elementSize, 1)
        for dimension in shape {
            let (product, overflow) = extent.multipliedReportingOverflow(by: max(dimension, 1))
            guard !overflow else {
                throw TensorError(.invalidArgument, "shape \(shape) is too large: its strides or byte count "
                    + "(product of the dimensions, zeros counted as 1, times \(elementSize) bytes) exceed Int.max; "
                    + "no tensor can have it")
            }
            extent = product
        }
    }

    /// The number of elements, `prod_i d_i`, multiplied left to right.
    /// - Throws: ``TensorError/Code/invalidArgument`` on a negative dimension or overflow.
    public static func elementCount(_ shape: [Int]) throws -> Int {
        var count = 1
        for dimension in shape {
            guard dimension >= 0 else {
                throw TensorError(.invalidArgument, "shape \(shape) has a negative dimension \(dimension)")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else {
                throw TensorError(.invalidArgument, "shape \(shape) has more than Int.max elements")
            }
            count = product
        }
        return count
    }

    /// `elementCount(shape) * elementSize`, checked.
    /// - Throws: ``TensorError/Code/invalidArgument`` on a negative dimension or overflow.
    public static func byteCount(_ shape: [Int], elementSize: Int) throws -> Int {
        let (bytes, overflow) = try elementCount(shape).multipliedReportingOverflow(by: elementSize)
        guard !overflow else {
            throw TensorError(.invalidArgument, "shape \(shape) of \(elementSize)-byte elements is over Int.max bytes")
        }
        return bytes
    }

    /// Row-major strides in elements: `stride_i = prod_{j > i} max(d_j, 1)`.
    /// - Throws: ``TensorError/Code/invalidArgument`` when a stride overflows (see ``validate(_:elementSize:)``).
    public static func contiguousStrides(_ shape: [Int]) throws -> [Int] {
        try validate(shape)
        return rowMajorStrides(ofValid: shape)
    }

    /// Row-major strides of a shape already known to pass ``validate(_:elementSize:)`` (a tensor's).
    static func rowMajorStrides(ofValid shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in shape.indices.reversed() {
            strides[axis] = running
            running &*= max(shape[axis], 1)
        }
        return strides
    }

    /// `ceil(value / divisor)` for `value >= 0`, `divisor > 0`, without the overflow of `(value + divisor - 1)`.
    @inline(__always)
    public static func ceilDiv(_ value: Int, _ divisor: Int) -> Int {
        value / divisor + (value % divisor == 0 ? 0 : 1)
    }

    /// The product of non-negative `factors`, `Int.max` when it overflows (a work estimate, e.g. a
    /// GEMM's `m * n * k` multiply-adds, never a size).
    package static func saturatingProduct(_ factors: Int...) -> Int {
        var product = 1
        for factor in factors {
            let (next, overflow) = product.multipliedReportingOverflow(by: factor)
            if overflow { return Int.max }
            product = next
        }
        return product
    }
}
