import QuantizedLinear
import Testing

/// The weight-only and FP8 float paths at the edges of their tilings: the decode GEMV (M <= 16) with
/// its 32-code FP8 steps and NaN scan, and the decoded-panel GEMM (M > 16) with its 256-column panels,
/// 16-column sub-panels, 256-deep K chunks, 6-row tiles and 2048-row chunks.
@Suite("CPU kernels: weight-only and FP8 tilings")
struct CPUKernelDecodedGEMMTests {
    /// (input shape, N): M = 16 (last GEMV row count) and 17 (first GEMM one) with a 256-column panel
    /// plus a ragged 44 and K two chunks plus 88; N two panels plus one column (a sub-panel of one
    /// column) with K two chunks plus 8; M = 256 / 257 (the float tile's rows prefetched past 256);
    /// M = 2048 (one row chunk) and 2053 (two chunks of whole tiles); K under 8 (element-wise decode);
    /// K a multiple of 32 at M = 1 and 5 (no GEMV tail).
    static let shapes: [([Int], Int)] = [
        ([16, 600], 300), ([17, 600], 300), ([70, 520], 513), ([256, 72], 40), ([257, 72], 40), ([2048, 24], 17),
        ([2053, 40], 20), ([64, 7], 33), ([1, 512], 96), ([5, 64], 9),
    ]

    @Test("weight-only INT8 matches dequantize-then-float32 across the tilings' edges", arguments: [7, 32, 128])
    func int8WeightOnly(blockSize: Int) throws {
        try CPUKernelCheck.onEveryPath { path in
            for (index, (inputShape, n)) in Self.shapes.enumerated() {
                let k = inputShape.last!
                let seed = UInt64(900 + index * 5)
                let layout = try BlockWiseINT8Layout.weight(blockSize: blockSize)
                let x = try Tensor(try CPUKernelCheck.values(inputShape, seed: seed), shape: inputShape)
                let w = try QuantizedTensor.fromFloat(try Tensor(try CPUKernelCheck.values([n, k], seed: seed + 1),
                                                                 shape: [n, k]), layout: layout)
                let dense = try Tensor(BlockWiseINT8Reference.dequantize(
                    try w.data.elements(as: Int8.self), scales: try w.scale.floats(), shape: [n, k], layout: layout),
                    shape: [n, k])
                let bias = try Tensor.randomNormal([n], seed: seed + 2)
                let expected = try DenseOps.linear(x, dense, bias: bias).floats()
                let y = try linear(x, w, bias: bias, options: LinearOptions(floatInput: .dequantizeWeight))
                    .dequantized()
                #expect(y.shape == Array(inputShape.dropLast()) + [n])
                #expect(CPUKernelCheck.relativeError(try y.floats(), expected) <= 1e-6,
                        "\(path) \(inputShape) N=\(n) B=\(blockSize)")
            }
        }
    }

    @Test("FP8 weight-only and W8A8 match their references across the tilings' edges")
    func fp8() throws {
        try CPUKernelCheck.onEveryPath { path in
            for (index, (inputShape, n)) in Self.shapes.enumerated() {
                let (k, m) = (inputShape.last!, inputShape.dropLast().reduce(1, *))
                let seed = UInt64(950 + index * 5)
                let x = try Tensor(try CPUKernelCheck.values(inputShape, seed: seed), shape: inputShape)
                let w = try QuantizedTensor.fromFloat(try Tensor(try CPUKernelCheck.values([n, k], seed: seed + 1),
                                                                 shape: [n, k]), layout: TensorCoreFP8Layout.dynamic)
                let weightCodes = try w.data.elements(as: Float8E4M3FN.self)
                let weightScale = try w.scale.floats()[0]
                let dense = try Tensor(FP8Reference.dequantize(weightCodes, scale: weightScale), shape: [n, k])
                let weightOnly = try linear(x, w, options: LinearOptions(floatInput: .dequantizeWeight)).dequantized()
                #expect(CPUKernelCheck.relativeError(try weightOnly.floats(), try DenseOps.linear(x, dense).floats())
                    <= 1e-6, "\(path) \(inputShape) N=\(n) weight-only")
                let qx = try QuantizedTensor.fromFloat(x, layout: TensorCoreFP8Layout.dynamic)
                let expected = FP8Reference.linear(inputCodes: try qx.data.elements(as: Float8E4M3FN.self),
                                                   inputScale: try qx.scale.floats()[0], m: m, k: k,
                                                   weightCodes: weightCodes, weightScale: weightScale, n: n,
                                                   bias: nil)
                #expect(CPUKernelCheck.relativeError(try linear(x, w).dequantized().floats(), expected) <= 1e-6,
                        "\(path) \(inputShape) N=\(n) W8A8")
            }
        }
    }

    /// An FP8 weight made from its codes: finite codes `0 ..< codeLimit` (a third of them negative) in a
    /// different order in every row; with `nanRow`, that row gets the NaN code `nanCode` at `nanColumn`.
    static func fp8Weight(n: Int, k: Int, scale: Float, codeLimit: Int = 0x7F, nanRow: Int? = nil,
                          nanColumn: Int = 0, nanCode: UInt8 = 0x7F) throws -> QuantizedTensor {
        var codes = (0..<(n * k)).map { index -> Float8E4M3FN in
            let code = UInt8((index * 37 + index / k) % codeLimit)
            return Float8E4M3FN(bitPattern: index % 3 == 0 ? code | 0x80 : code)
        }
        if let nanRow { codes[nanRow * k + nanColumn] = Float8E4M3FN(bitPattern: nanCode) }
        return try QuantizedTensor(layout: TensorCoreFP8Layout.dynamic,
                                   data: try Tensor(elements: codes, shape: [n, k]),
                                   scale: try Tensor([scale], shape: []), shape: [n, k], originalDType: .float32)
    }

    @Test("a NaN code in an FP8 weight row makes exactly that output column NaN, GEMV and GEMM",
          arguments: [(1, 0x7F as UInt8, 5), (4, 0xFF, 40), (1, 0xFF, 97), (20, 0x7F, 0), (20, 0xFF, 99)])
    func fp8NaNCode(m: Int, nanCode: UInt8, nanColumn: Int) throws {
        let (n, k, nanRow) = (40, 100, 13)
        let w = try Self.fp8Weight(n: n, k: k, scale: 0.01, nanRow: nanRow, nanColumn: nanColumn, nanCode: nanCode)
        let x = try Tensor(try CPUKernelCheck.values([m, k], seed: 77), shape: [m, k])
        try CPUKernelCheck.onEveryPath { path in
            let y = try linear(x, w, options: LinearOptions(floatInput: .dequantizeWeight)).dequantized().floats()
            for row in 0..<m {
                for column in 0..<n {
                    let value = y[row * n + column]
                    #expect(column == nanRow ? value.isNaN : value.isFinite,
                            "\(path) M=\(m) code \(nanCode) at k=\(nanColumn): y[\(row), \(column)] = \(value)")
                }
            }
        }
    }

    /// FP8 W8A8 decodes the input codes inside the GEMM's packing (M > 16) or into a small buffer (the
    /// GEMV): an input holding every e4m3 code (subnormals, both zeros, +-448) must give the reference's
    /// product, and a row holding a NaN code (0x7F or 0xFF, in the packing's 8-code steps at K = 40 or its
    /// tail at K = 99) exactly that output row NaN.
    @Test("FP8 W8A8: every input code decodes exactly, a NaN input code makes exactly its row NaN",
          arguments: [(1, 0x7F as UInt8), (5, 0xFF), (20, 0x7F), (40, 0xFF), (70, 0x7F)])
    func fp8InputCodes(m: Int, nanCode: UInt8) throws {
        let (n, k, nanRow) = (24, 100, m / 2)
        let w = try Self.fp8Weight(n: n, k: k, scale: 0.01)
        var codes = (0..<(m * k)).map { index -> UInt8 in
            let code = UInt8((index * 37 + index / k) % 256)
            return code & 0x7F == 0x7F ? code ^ 0x01 : code
        }
        codes[nanRow * k + (m % 2 == 0 ? 40 : 99)] = nanCode
        let inputScale: Float = 0.125
        let qx = try QuantizedTensor(layout: TensorCoreFP8Layout.dynamic,
                                     data: try Tensor(elements: codes.map(Float8E4M3FN.init(bitPattern:)),
                                                      shape: [m, k]),
                                     scale: try Tensor([inputScale], shape: []), shape: [m, k],
                                     originalDType: .float32)
        var finiteCodes = codes
        finiteCodes[nanRow * k + (m % 2 == 0 ? 40 : 99)] = 0
        let expected = FP8Reference.linear(inputCodes: finiteCodes.map(Float8E4M3FN.init(bitPattern:)),
                                           inputScale: inputScale, m: m, k: k,
                                           weightCodes: try w.data.elements(as: Float8E4M3FN.self),
                                           weightScale: 0.01, n: n, bias: nil)
        try CPUKernelCheck.onEveryPath { path in
            let y = try linear(qx, w).dequantized().floats()
            for row in 0..<m where row != nanRow {
                let got = Array(y[row * n..<(row + 1) * n]), want = Array(expected[row * n..<(row + 1) * n])
                #expect(CPUKernelCheck.relativeError(got, want) <= 1e-6, "\(path) M=\(m) row \(row)")
            }
            let nanRowValues = y[nanRow * n..<(nanRow + 1) * n]
            #expect(nanRowValues.allSatisfy { $0.isNaN }, "\(path) M=\(m) NaN row \(nanRow)")
        }
    }

    /// Above FLT_MAX / 256 the kernels' folded factor 256 * scale would overflow: they decode through
    /// the plain path instead, and the dequantized weight (codes below 0x68, |value| <= 60, so at most
    /// 0.3 x FLT_MAX) times a tiny input still matches dequantize-then-float32.
    @Test("an FP8 weight scale above FLT_MAX / 256 still gives the dequantized weight's product", arguments: [1, 3, 40])
    func fp8HugeScale(m: Int) throws {
        let (n, k) = (24, 96)
        let scale = Float.greatestFiniteMagnitude / 200
        let w = try Self.fp8Weight(n: n, k: k, scale: scale, codeLimit: 0x68)
        let dense = try Tensor(FP8Reference.dequantize(try w.data.elements(as: Float8E4M3FN.self), scale: scale),
                               shape: [n, k])
        let x = try Tensor(try CPUKernelCheck.values([m, k], seed: 78).map { $0 * 1e-37 }, shape: [m, k])
        let expected = try DenseOps.linear(x, dense).floats()
        #expect(expected.allSatisfy { $0.isFinite })
        try CPUKernelCheck.onEveryPath { path in
            let y = try linear(x, w, options: LinearOptions(floatInput: .dequantizeWeight)).dequantized()
            #expect(CPUKernelCheck.relativeError(try y.floats(), expected) <= 1e-6, "\(path) M=\(m)")
        }
    }
}
