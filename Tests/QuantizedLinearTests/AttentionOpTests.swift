import Foundation
import QuantizedLinear
import Testing

/// `attention(query:key:value:additiveMask:)`: the bits of `batchedMatmul`, `softmax` and `batchedMatmul`
/// in a row, on every CPU path, for the shapes the CPU keeps in cache and for those it hands to the three ops.
@Suite("Attention op: softmax(q k^T + mask) v, bit for bit the three ops")
struct AttentionOpTests {
    /// One problem: batch, heads, S_q, S_k, d, d_v; whether q, k, v are head views of (B, S, H d)
    /// projections (strided rows), and the dtype.
    struct Problem: CustomTestStringConvertible, Sendable {
        let batch: Int, heads: Int, sq: Int, sk: Int, d: Int, dv: Int
        var views = false
        var dtype = DType.float32
        var testDescription: String {
            "B \(batch) H \(heads) \(sq)x\(sk) d \(d)/\(dv)\(views ? " views" : "") \(dtype)"
        }
    }

    static let problems: [Problem] = [
        Problem(batch: 3, heads: 12, sq: 37, sk: 37, d: 32, dv: 32, views: true),   // MiniLM's layout
        Problem(batch: 2, heads: 4, sq: 5, sk: 70, d: 16, dv: 24),                   // S_q != S_k, d != d_v
        Problem(batch: 1, heads: 1, sq: 300, sk: 260, d: 64, dv: 48),                // one large product
        Problem(batch: 2, heads: 1, sq: 1, sk: 17, d: 8, dv: 8),                     // one query row (sgemv)
        Problem(batch: 2, heads: 3, sq: 9, sk: 9, d: 8, dv: 8, dtype: .bfloat16),    // the three ops
    ]

    func operands(_ p: Problem) throws -> (q: Tensor, k: Tensor, v: Tensor, mask: Tensor) {
        func heads(_ rows: Int, _ width: Int, seed: UInt64) throws -> Tensor {
            if p.views {
                let projection = try TestData.tensor([p.batch, rows, p.heads * width], dtype: p.dtype, seed: seed)
                return try projection.reshaped([p.batch, rows, p.heads, width]).permuted([0, 2, 1, 3])
            }
            return try TestData.tensor([p.batch, p.heads, rows, width], dtype: p.dtype, scale: 2, seed: seed)
        }
        let mask = try Tensor((0..<(p.batch * p.sk)).map { $0 % 6 == 5 ? -Float.greatestFiniteMagnitude : 0 },
                              shape: [p.batch, p.sk])
        return (try heads(p.sq, p.d, seed: 51), try heads(p.sk, p.d, seed: 52), try heads(p.sk, p.dv, seed: 53), mask)
    }

    @Test("equals batchedMatmul, softmax, batchedMatmul on every CPU path", arguments: problems)
    func matchesTheThreeOps(problem: Problem) throws {
        let (q, k, v, mask) = try operands(problem)
        for path in CPUKernelPath.supported {
            try CPUKernelPath.withPath(path) {
                for additiveMask in [Optional(mask), nil] {
                    let scores = try batchedMatmul(q, k, transposeB: true)
                    let expected = try batchedMatmul(softmax(scores, additiveMask: additiveMask), v)
                    let y = try withoutFallback { try attention(query: q, key: k, value: v, additiveMask: additiveMask) }
                    #expect(y.shape == [problem.batch, problem.heads, problem.sq, problem.dv] && y.dtype == q.dtype)
                    #expect(try y.floats().map(\.bitPattern) == expected.floats().map(\.bitPattern),
                            "\(problem.testDescription), \(path), mask \(additiveMask != nil)")
                }
            }
        }
    }

    @Test("a fully masked row attends to nothing: zeros, as softmax gives")
    func fullyMaskedRow() throws {
        let q = try TestData.tensor([1, 2, 3, 8], dtype: .float32, seed: 54)
        let k = try TestData.tensor([1, 2, 4, 8], dtype: .float32, seed: 55)
        let v = try TestData.tensor([1, 2, 4, 8], dtype: .float32, seed: 56)
        let mask = try Tensor([Float](repeating: -.infinity, count: 4), shape: [1, 4])
        let y = try attention(query: q, key: k, value: v, additiveMask: mask)
        #expect(try y.floats().allSatisfy { $0 == 0 })
    }

    @Test("mismatched shapes, masks and dtypes are refused with the shapes in the message")
    func errors() throws {
        let q = try TestData.tensor([2, 3, 4, 8], dtype: .float32, seed: 57)
        let k = try TestData.tensor([2, 3, 5, 8], dtype: .float32, seed: 58)
        let v = try TestData.tensor([2, 3, 5, 6], dtype: .float32, seed: 59)
        let cases: [(String, () throws -> Tensor)] = [
            ("d", { try attention(query: q, key: try TestData.tensor([2, 3, 5, 7], seed: 60), value: v) }),
            ("S_k", { try attention(query: q, key: k, value: try TestData.tensor([2, 3, 4, 6], seed: 61)) }),
            ("batch", { try attention(query: q, key: try TestData.tensor([2, 2, 5, 8], seed: 62), value: v) }),
            ("rank", { try attention(query: try TestData.tensor([4, 8], seed: 63), key: try TestData.tensor([5, 8], seed: 64),
                                     value: try TestData.tensor([5, 6], seed: 65)) }),
            ("mask shape", { try attention(query: q, key: k, value: v, additiveMask: try Tensor(zeros: [2, 4])) }),
            ("mask dtype", { try attention(query: q, key: k, value: v,
                                           additiveMask: try Tensor(zeros: [2, 5]).converted(to: .float16)) }),
            ("int8", { try attention(query: try Tensor(zeros: [2, 3, 4, 8], dtype: .int8), key: k, value: v) }),
        ]
        for (name, body) in cases {
            #expect(throws: TensorError.self, "\(name)") { _ = try body() }
        }
    }
}
