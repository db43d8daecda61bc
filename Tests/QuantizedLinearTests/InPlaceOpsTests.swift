import Foundation
import QuantizedLinear
import Testing

/// The in-place ops (`gelu(inPlace:)`, `add(inPlace:_:)`, `softmax(inPlace:)`, `scaled(inPlace:by:)`):
/// the out-of-place op's bits, written over the tensor's own buffer when it owns it alone, and never
/// visible through another tensor.
@Suite("In-place dense ops: the out-of-place bits, the buffer reused, value semantics kept")
struct InPlaceOpsTests {
    static let dtypes: [DType] = [.float32, .float16, .bfloat16]
    /// Odd sizes: vector tails, several parallel ranges (the elementwise split starts at 32768 values).
    static let shape = [3, 129, 257]

    /// One in-place op beside its out-of-place form.
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let outOfPlace: @Sendable (Tensor) throws -> Tensor
        let inPlace: @Sendable (inout Tensor) throws -> Void
        var testDescription: String { name }
    }

    static let residual = try! TestData.tensor(shape, dtype: .float32, seed: 21)
    static let row = try! TestData.tensor([shape.last!], dtype: .bfloat16, seed: 22)
    static let column = try! TestData.tensor([shape[0], shape[1], 1], dtype: .float32, seed: 23)
    /// `(B, C)`: 0 for tokens, the most negative float for a few padding columns.
    static let mask = try! Tensor((0..<(shape[0] * shape.last!)).map { $0 % 7 == 3 ? -Float.greatestFiniteMagnitude : 0 },
                                  shape: [shape[0], shape.last!])

    static let cases: [Case] = [
        Case(name: "gelu erf", outOfPlace: { try gelu($0).requireDense() },
             inPlace: { try gelu(inPlace: &$0) }),
        Case(name: "gelu tanh", outOfPlace: { try gelu($0, approximation: .tanh).requireDense() },
             inPlace: { try gelu(inPlace: &$0, approximation: .tanh) }),
        Case(name: "add, same shape", outOfPlace: { try add($0, residual).requireDense() },
             inPlace: { try add(inPlace: &$0, residual) }),
        Case(name: "add, a row broadcast", outOfPlace: { try add($0, row).requireDense() },
             inPlace: { try add(inPlace: &$0, row) }),
        Case(name: "add, a column broadcast (not a suffix)", outOfPlace: { try add($0, column).requireDense() },
             inPlace: { try add(inPlace: &$0, column) }),
        Case(name: "softmax with a mask", outOfPlace: { try softmax($0, additiveMask: mask) },
             inPlace: { try softmax(inPlace: &$0, additiveMask: mask) }),
        Case(name: "softmax", outOfPlace: { try softmax($0) }, inPlace: { try softmax(inPlace: &$0) }),
        Case(name: "scaled", outOfPlace: { try scaled($0, by: 0.125) }, inPlace: { try scaled(inPlace: &$0, by: 0.125) }),
    ]

    func bits(_ tensor: Tensor) throws -> [UInt32] { try tensor.floats().map(\.bitPattern) }

    @Test("bit-identical to the out-of-place op on every CPU path, in the input's buffer", arguments: cases, dtypes)
    func matchesOutOfPlace(op: Case, dtype: DType) throws {
        for path in CPUKernelPath.supported {
            try CPUKernelPath.withPath(path) {
                let x = try TestData.tensor(Self.shape, kind: .outliers, dtype: dtype, scale: 4, seed: 24)
                let expected = try withoutFallback { try op.outOfPlace(x) }
                var y = try x.converted(to: dtype)
                try withoutFallback { try op.inPlace(&y) }
                #expect(y.shape == x.shape && y.dtype == dtype)
                #expect(try bits(y) == bits(expected), "\(op.name), \(dtype), \(path)")
            }
        }
    }

    @Test("a tensor that owns its buffer alone is written in place: the same storage afterwards",
          arguments: cases.filter { !$0.name.contains("not a suffix") })
    func reusesTheBuffer(op: Case) throws {
        var x = try TestData.tensor(Self.shape, dtype: .float32, seed: 25)
        let before = ObjectIdentifier(x.storage)
        try op.inPlace(&x)
        #expect(ObjectIdentifier(x.storage) == before, "\(op.name) copied a tensor it could overwrite")
    }

    @Test("a copy sharing the storage, and the base of a strided view, keep their values", arguments: cases)
    func valueSemantics(op: Case) throws {
        let base = try TestData.tensor(Self.shape, dtype: .float32, seed: 26)
        let original = try bits(base)
        var shared = base
        try op.inPlace(&shared)
        #expect(try bits(base) == original, "\(op.name) changed a copy's values")
        #expect(try bits(shared) == bits(op.outOfPlace(base)))

        // A permuted view of a (B, C, C) tensor: strided, so it is copied before the write.
        let square = try TestData.tensor([2, 37, 37], kind: .outliers, dtype: .bfloat16, scale: 3, seed: 27)
        let squareBits = try bits(square)
        var view = try square.permuted([0, 2, 1])
        if op.name.hasPrefix("gelu") || op.name == "scaled" || op.name == "softmax" {
            let expected = try bits(op.outOfPlace(view.contiguous()))
            try op.inPlace(&view)
            #expect(try bits(view) == expected)
        }
        #expect(try bits(square) == squareBits, "\(op.name) wrote through a view into its base")
    }

    @Test("add(inPlace:) refuses a broadcast that would change the tensor's shape")
    func addShapeMismatch() throws {
        var x = try TestData.tensor([4, 8], dtype: .float32, seed: 28)
        let wider = try TestData.tensor([3, 4, 8], dtype: .float32, seed: 29)
        #expect(throws: TensorError.self) { try add(inPlace: &x, wider) }
        let mismatched = try TestData.tensor([5], dtype: .float32, seed: 30)
        #expect(throws: TensorError.self) { try add(inPlace: &x, mismatched) }
        var integers = try Tensor(elements: [Int32](repeating: 1, count: 8), shape: [8])
        #expect(throws: TensorError.self) { try gelu(inPlace: &integers) }
    }

    @Test("float8 gelu in place: the out-of-place op's result (through float32)")
    func float8Gelu() throws {
        let x = try TestData.tensor([7, 33], dtype: .float32, scale: 3, seed: 31).converted(to: .float8E4M3FN)
        var y = x
        try gelu(inPlace: &y)
        #expect(y.dtype == .float8E4M3FN)
        #expect(try bits(y) == bits(gelu(x).requireDense()))
    }
}
