import QuantizedLinear

/// A lookup table: token ids `(...)` (int32) become rows of `table` `(...) + (D)`.
///
/// Embedding tables stay dense: ``Module/quantizeLinears(layout:floatInput:include:exclude:)`` walks
/// linear layers only.
public struct Embedding: Module {
    /// `(V, D)`.
    public private(set) var table: Tensor

    /// - Throws: ``TensorError/Code/shapeMismatch`` unless `table` is 2-D.
    public init(table: Tensor) throws {
        guard table.rank == 2 else {
            throw TensorError(.shapeMismatch, "Embedding: the table must be 2-D (V, D), got \(table.shape)")
        }
        self.table = table
    }

    public var count: Int { table.shape[0] }
    public var dimension: Int { table.shape[1] }

    /// Rows of the table for `indices` (int32, any shape, on the table's device).
    /// - Throws: ``TensorError/Code/invalidArgument`` for an index outside `0..<count`.
    public func callAsFunction(_ indices: Tensor) throws -> Tensor {
        try embedding(table, indices: indices)
    }

    public mutating func updateLinears(_ body: (String, inout Linear) throws -> Void) rethrows {}

    public mutating func updateTensors(_ body: (String, inout Tensor) throws -> Void) rethrows {
        try body("weight", &table)
    }
}
