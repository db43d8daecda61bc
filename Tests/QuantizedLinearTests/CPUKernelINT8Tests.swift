import Foundation
import QuantizedLinear
import Testing

/// Shared checks of the CPU kernel tests: every kernel against its layout's reference.
enum CPUKernelCheck {
    /// ||a - b|| / ||b|| in float64.
    static func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count, "compared arrays differ in length")
        var difference = 0.0
        var norm = 0.0
        for (x, y) in zip(a, b) {
            difference += (Double(x) - Double(y)) * (Double(x) - Double(y))
            norm += Double(y) * Double(y)
        }
        return norm == 0 ? difference.squareRoot() : (difference / norm).squareRoot()
    }

    /// The raw bytes of a tensor's elements.
    static func bytes(_ tensor: Tensor) throws -> [UInt8] {
        try tensor.withUnsafeContiguousBytes { Array($0) }
    }

    /// Gaussian values with a different magnitude in every group of 5 columns, so blocks get
    /// different scales, and a few exact zeros.
    static func values(_ shape: [Int], seed: UInt64) throws -> [Float] {
        var values = try Tensor.randomNormal(shape, seed: seed).floats()
        let columns = shape.last ?? 1
        for index in values.indices {
            let column = index % max(columns, 1)
            values[index] *= Float(1 << (column / 5 % 7)) / 8
            if index % 97 == 13 { values[index] = 0 }
        }
        return values
    }

    /// Tolerance of a linear output written in `dtype` against the float32 reference.
    static func tolerance(_ dtype: DType) -> Double {
        switch dtype {
        case .float16: 1e-3
        case .bfloat16: 6e-3
        default: 1e-6
        }
    }

    /// Runs `body` with every CPU kernel path this machine supports forced in turn, under the
    /// `fail` fallback policy so that a silent fallback cannot pass.
    static func onEveryPath(_ body: (CPUKernelPath) throws -> Void) throws {
        for path in CPUKernelPath.supported {
            try CPUKernelPath.withPath(path) { try FallbackPolicy.withPolicy(.fail) { try body(path) } }
        }
    }
}

@Suite("CPU kernels: block-wise INT8")
struct CPUKernelINT8Tests {
    static let blockSizes = [32, 48, 64, 128, 256, 7]

    @Test("quantize is bit-identical to the reference", arguments: blockSizes)
    func quantizeMatchesReference(blockSize: Int) throws {
        let shapes: [[Int]] = [[7], [1, 300], [3, 130], [17, 257], [2, 3, 129], [130, 97]]
        try CPUKernelCheck.onEveryPath { path in
            for (index, shape) in shapes.enumerated() {
                let values = try CPUKernelCheck.values(shape, seed: UInt64(100 + index))
                for rounding in Rounding.allCases {
                    for layout in [try BlockWiseINT8Layout.weight(blockSize: blockSize, rounding: rounding),
                                   try BlockWiseINT8Layout.activation(blockSize: blockSize, rounding: rounding),
                                   try BlockWiseINT8Layout(blockRows: 3, blockColumns: blockSize, rounding: rounding)] {
                        let q = try QuantizedTensor.fromFloat(try Tensor(values, shape: shape), layout: layout)
                        let expected = try values.withUnsafeBufferPointer {
                            try BlockWiseINT8Reference.quantize($0, shape: shape, layout: layout)
                        }
                        #expect(try q.data.elements(as: Int8.self) == expected.codes, "\(path) \(shape) \(layout)")
                        #expect(try q.scale.floats().map(\.bitPattern) == expected.scales.map(\.bitPattern),
                                "\(path) \(shape) \(layout)")
                    }
                }
            }
        }
    }

    @Test("quantize rounds ties to even, or toward zero, like the reference")
    func quantizeTies() throws {
        // amax 127 gives scale 1, so every x / scale is exactly a tie between two codes.
        let values: [Float] = [127, 2.5, -3.5, 0.5, -0.5, 1.5, 126.5, -126.5] + (0..<24).map { Float($0) - 11.5 }
        try CPUKernelCheck.onEveryPath { path in
            for rounding in Rounding.allCases {
                let layout = try BlockWiseINT8Layout.activation(blockSize: 32, rounding: rounding)
                let q = try QuantizedTensor.fromFloat(try Tensor(values, shape: [1, 32]), layout: layout)
                let expected = try values.withUnsafeBufferPointer {
                    try BlockWiseINT8Reference.quantize($0, shape: [1, 32], layout: layout)
                }
                #expect(try q.data.elements(as: Int8.self) == expected.codes, "\(path) \(rounding)")
            }
        }
    }

    /// Every path's codes are the true division's, above all where x / scale lands on or one ulp beside a
    /// rounding tie (a plain reciprocal multiply gives hundreds of other codes here). Blocks of 32: one value sets amax (scales from 1e-38 to 1e37), the others sit at
    /// (k + 1/2) scale and its neighbours.
    @Test("quantize's quotient gives the true division's codes at and beside every rounding tie")
    func quantizeQuotientNearTies() throws {
        var values: [Float] = []
        var generator = SeededGenerator(seed: 77)
        for exponent in stride(from: -38, through: 37, by: 1) {
            for _ in 0..<6 {
                let amax = Float(Double(generator.next() % 1000 + 1) * 1e-3 * pow(10, Double(exponent)))
                let scale = amax / 127
                var block: [Float] = [amax]
                while block.count < 32 {
                    let k = Float(Int(generator.next() % 254) - 127)
                    let tie = (k + 0.5) * scale
                    let pick = generator.next() % 3
                    block.append(pick == 0 ? tie : pick == 1 ? tie.nextUp : tie.nextDown)
                }
                values += block.map { $0.isFinite ? $0 : amax }
            }
        }
        let shape = [1, values.count]
        try CPUKernelCheck.onEveryPath { path in
            for rounding in Rounding.allCases {
                let layout = try BlockWiseINT8Layout.activation(blockSize: 32, rounding: rounding)
                let q = try QuantizedTensor.fromFloat(try Tensor(values, shape: shape), layout: layout)
                let expected = try values.withUnsafeBufferPointer {
                    try BlockWiseINT8Reference.quantize($0, shape: shape, layout: layout)
                }
                let codes = try q.data.elements(as: Int8.self)
                let mismatches = zip(codes, expected.codes).filter { $0 != $1 }.count
                #expect(mismatches == 0, "\(path) \(rounding): \(mismatches) of \(codes.count) codes differ")
            }
        }
    }

    @Test("quantize of an all-zero block gives scale 0 and zero codes; NaN and infinity are refused")
    func quantizeEdgeValues() throws {
        try CPUKernelCheck.onEveryPath { path in
            var values = [Float](repeating: 0, count: 64) + (0..<64).map { Float($0) / 10 + 0.1 }
            let q = try QuantizedTensor.fromFloat(try Tensor(values, shape: [1, 128]),
                                                  layout: try BlockWiseINT8Layout.activation(blockSize: 64))
            #expect(try q.scale.floats()[0] == 0, "\(path)")
            #expect(try q.data.elements(as: Int8.self).prefix(64).allSatisfy { $0 == 0 }, "\(path)")
            for bad in [Float.nan, .infinity, -.infinity] {
                values[100] = bad
                #expect(throws: TensorError.self) {
                    _ = try QuantizedTensor.fromFloat(try Tensor(values, shape: [2, 64]),
                                                      layout: try BlockWiseINT8Layout.weight(blockSize: 32))
                }
            }
        }
    }

    @Test("dequantize is bit-identical to the reference in float32, float16 and bfloat16", arguments: blockSizes)
    func dequantizeMatchesReference(blockSize: Int) throws {
        let shapes: [[Int]] = [[5], [3, 130], [2, 33, 70], [129, 257]]
        try CPUKernelCheck.onEveryPath { path in
            for (index, shape) in shapes.enumerated() {
                let values = try CPUKernelCheck.values(shape, seed: UInt64(200 + index))
                let layout = try BlockWiseINT8Layout.weight(blockSize: blockSize)
                let q = try QuantizedTensor.fromFloat(try Tensor(values, shape: shape), layout: layout)
                let reference = BlockWiseINT8Reference.dequantize(try q.data.elements(as: Int8.self),
                                                                  scales: try q.scale.floats(), shape: shape,
                                                                  layout: layout)
                for dtype in [DType.float32, .float16, .bfloat16] {
                    let fast = try q.dequantize(to: dtype)
                    #expect(fast.dtype == dtype)
                    #expect(try CPUKernelCheck.bytes(fast)
                        == CPUKernelCheck.bytes(try Tensor(reference, shape: shape, dtype: dtype)),
                        "\(path) \(shape) \(dtype)")
                }
            }
        }
    }

    /// (input shape, N): decode shapes (M <= 16: GEMV) and GEMM shapes, odd N and K, batch dims;
    /// the GEMV's row chunks of four with a single row left (5) or a short chunk (6, 14), every chunk
    /// full (16), one row over block counts that are and are not multiples of four, K not a multiple of
    /// the 64-byte vector (1030, 520); M = 17..64 (the small GEMM range), M past one AMX tile pair
    /// (33, 70), N past one 64-column panel with a ragged last panel (130, 200), K over one 512-deep
    /// chunk (1030), M over a 96-row chunk (100).
    static let linearShapes: [([Int], Int)] = [
        ([1, 300], 45), ([3, 129], 70), ([2, 7, 100], 21), ([5, 1030], 19), ([6, 200], 9), ([16, 520], 11),
        ([1, 2048], 33), ([17, 257], 37), ([2, 9, 200], 70), ([40, 96], 33),
        ([2, 150], 130), ([64, 64], 16), ([33, 1030], 200), ([70, 130], 67), ([100, 264], 40),
    ]

    @Test("W8A8 linear matches the reference for every output dtype, with and without bias",
          arguments: blockSizes)
    func w8a8MatchesReference(blockSize: Int) throws {
        try CPUKernelCheck.onEveryPath { path in
            for (index, (inputShape, n)) in Self.linearShapes.enumerated() {
                try checkW8A8(inputShape: inputShape, n: n, blockSize: blockSize, seed: UInt64(300 + index * 7),
                              rounding: index % 2 == 0 ? .nearestEven : .towardZero, path: path)
            }
        }
    }

    /// The packed GEMM keeps its weight panel and float tile in a pooled scratch buffer between
    /// calls (`ck_scratch_acquire`): a large product, a small one that reuses the larger buffer with
    /// stale bytes in it, then the large one again, and one whose float tile (33000 rows) is past the kept
    /// size (allocated per call), must each match the reference.
    @Test("W8A8 linear stays exact when consecutive products grow and shrink the kept scratch")
    func w8a8ReusesScratch() throws {
        let sequence: [([Int], Int)] = [([90, 2100], 150), ([17, 40], 9), ([90, 2100], 150), ([20, 64], 70),
                                        ([33000, 16], 8), ([33, 130], 67)]
        try CPUKernelCheck.onEveryPath { path in
            for (index, (inputShape, n)) in sequence.enumerated() {
                try checkW8A8(inputShape: inputShape, n: n, blockSize: 128, seed: UInt64(1700 + index),
                              rounding: .nearestEven, path: path)
            }
        }
    }

    // The AVX-VNNI, AVX-512 VNNI and AMX kernels are compiled everywhere but run only where the CPU
    // (and, for AMX, the OS) allows; each test is skipped elsewhere (this Zen 3 dev machine has none).

    @Test("W8A8 linear runs the AVX-VNNI kernel like the reference",
          .enabled(if: CPUKernelPath.avxvnni.isSupported, "skipped: this CPU has no AVX-VNNI"),
          arguments: blockSizes)
    func w8a8OnAVXVNNI(blockSize: Int) throws {
        try checkW8A8(forcing: .avxvnni, blockSize: blockSize)
    }

    @Test("W8A8 linear runs the AVX-512 VNNI kernel like the reference",
          .enabled(if: CPUKernelPath.avx512vnni.isSupported, "skipped: this CPU has no AVX-512 VNNI"),
          arguments: blockSizes)
    func w8a8OnVNNI(blockSize: Int) throws {
        try checkW8A8(forcing: .avx512vnni, blockSize: blockSize)
    }

    @Test("W8A8 linear runs the AMX kernel like the reference",
          .enabled(if: CPUKernelPath.amx.isSupported,
                   "skipped: this CPU has no AMX-INT8, or the OS refused tile data"),
          arguments: blockSizes)
    func w8a8OnAMX(blockSize: Int) throws {
        try checkW8A8(forcing: .amx, blockSize: blockSize)
    }

    func checkW8A8(forcing path: CPUKernelPath, blockSize: Int) throws {
        try CPUKernelPath.withPath(path) {
            try FallbackPolicy.withPolicy(.fail) {
                for (index, (inputShape, n)) in Self.linearShapes.enumerated() {
                    try checkW8A8(inputShape: inputShape, n: n, blockSize: blockSize, seed: UInt64(900 + index),
                                  rounding: .nearestEven, path: path)
                }
            }
        }
    }

    /// Codes at +-127 everywhere (signs in runs, so that many adjacent pairs multiply to +16129 and
    /// pair sums reach 2 x 127 x 127 = 32258, the int16 limit of the vpmaddubsw step, and signs
    /// that mix): every block sum must be exact. The expected value is the contract's arithmetic on
    /// exact integer block sums, `acc += Float(S) * (sx * sw)` in increasing j, bias last, so the
    /// kernels must equal it bit for bit. A saturating int16 step (u8 = q + 128 times s8) would give
    /// sums off by thousands.
    @Test("W8A8 block sums stay exact with every code at +-127 (no int16 saturation)",
          arguments: [(32, 20, 96), (128, 3, 1030), (256, 40, 512), (64, 1, 64)])
    func w8a8ExtremeCodesAreExact(blockSize: Int, m: Int, k: Int) throws {
        let n = 70
        let xValues = (0..<(m * k)).map { index -> Float in (index / 3 + index / k) % 2 == 0 ? 1 : -1 }
        let wValues = (0..<(n * k)).map { index -> Float in (index / 5 + index / k) % 3 == 0 ? -1 : 1 }
        let weightLayout = try BlockWiseINT8Layout.weight(blockSize: blockSize)
        let w = try QuantizedTensor.fromFloat(try Tensor(wValues, shape: [n, k]), layout: weightLayout)
        let qx = try QuantizedTensor.fromFloat(try Tensor(xValues, shape: [m, k]),
                                               layout: try BlockWiseINT8Layout.activation(blockSize: blockSize))
        let xCodes = try qx.data.elements(as: Int8.self), wCodes = try w.data.elements(as: Int8.self)
        #expect(xCodes.allSatisfy { abs(Int($0)) == 127 } && wCodes.allSatisfy { abs(Int($0)) == 127 })
        let sx = try qx.scale.floats(), sw = try w.scale.floats()
        let bias = try Tensor.randomNormal([n], seed: 77)
        let biasValues = try bias.floats()
        let kBlocks = (k + blockSize - 1) / blockSize
        var expected = [Float](repeating: 0, count: m * n)
        for row in 0..<m {
            for column in 0..<n {
                var total: Float = 0
                for j in 0..<kBlocks {
                    var sum = 0
                    for p in j * blockSize..<min(k, (j + 1) * blockSize) {
                        sum += Int(xCodes[row * k + p]) * Int(wCodes[column * k + p])
                    }
                    let scale = sx[row * kBlocks + j] * sw[(column / weightLayout.blockRows) * kBlocks + j]
                    let term = Float(sum) * scale
                    total = total + term
                }
                expected[row * n + column] = total + biasValues[column]
            }
        }
        try CPUKernelCheck.onEveryPath { path in
            let y = try linear(qx, w, bias: bias).dequantized().floats()
            #expect(y.map(\.bitPattern) == expected.map(\.bitPattern), "\(path) B=\(blockSize) M=\(m) K=\(k)")
        }
    }

    func checkW8A8(inputShape: [Int], n: Int, blockSize: Int, seed: UInt64, rounding: Rounding,
                   path: CPUKernelPath) throws {
        let k = inputShape.last!
        let m = inputShape.dropLast().reduce(1, *)
        let x = try Tensor(try CPUKernelCheck.values(inputShape, seed: seed), shape: inputShape)
        let weightLayout = try BlockWiseINT8Layout(blockRows: blockSize == 7 ? 5 : blockSize,
                                                   blockColumns: blockSize, rounding: rounding)
        let w = try QuantizedTensor.fromFloat(try Tensor(try CPUKernelCheck.values([n, k], seed: seed + 1),
                                                         shape: [n, k]), layout: weightLayout)
        let bias = try Tensor.randomNormal([n], seed: seed + 2)
        let qx = try QuantizedTensor.fromFloat(x, layout: try BlockWiseINT8Layout.activation(blockSize: blockSize,
                                                                                           rounding: rounding))
        for withBias in [false, true] {
            let expected = BlockWiseINT8Reference.linear(
                inputCodes: try qx.data.elements(as: Int8.self), inputScales: try qx.scale.floats(), m: m, k: k,
                weightCodes: try w.data.elements(as: Int8.self), weightScales: try w.scale.floats(), n: n,
                weightBlockRows: weightLayout.blockRows, blockColumns: blockSize,
                bias: withBias ? try bias.floats() : nil)
            for dtype in [DType.float32, .float16, .bfloat16] {
                let input = try x.converted(to: dtype)
                // A quantized input and a float input quantized on the fly take the same kernel.
                let fromQuantized = try linear(qx, w, bias: withBias ? bias : nil).dequantized()
                #expect(fromQuantized.shape == Array(inputShape.dropLast()) + [n])
                #expect(CPUKernelCheck.relativeError(try fromQuantized.floats(), expected) <= 1e-6,
                        "\(path) \(inputShape) N=\(n) B=\(blockSize) bias=\(withBias)")
                if dtype != .float32 {
                    let y = try linear(input, w, bias: withBias ? bias : nil).dequantized()
                    #expect(y.dtype == dtype)
                    // The input rounded to 16 bits quantizes differently: compare with its own reference.
                    let qInput = try QuantizedTensor.fromFloat(input, layout: try BlockWiseINT8Layout.activation(
                        blockSize: blockSize, rounding: rounding))
                    let reference = BlockWiseINT8Reference.linear(
                        inputCodes: try qInput.data.elements(as: Int8.self), inputScales: try qInput.scale.floats(),
                        m: m, k: k, weightCodes: try w.data.elements(as: Int8.self),
                        weightScales: try w.scale.floats(), n: n, weightBlockRows: weightLayout.blockRows,
                        blockColumns: blockSize, bias: withBias ? try bias.floats() : nil)
                    #expect(CPUKernelCheck.relativeError(try y.floats(), reference)
                        <= CPUKernelCheck.tolerance(dtype), "\(path) \(inputShape) N=\(n) B=\(blockSize) \(dtype)")
                }
            }
        }
    }

    /// A float input to a W8A8 linear is quantized inside the GEMM's parallel region on the CPU (M > 16:
    /// quantize and pack per 16-row vector, then the columns): the result must be, bit for bit, that of
    /// quantizing it first (`fromFloat` with the activation layout) and calling the linear on the codes,
    /// on every path, for every float dtype, and a NaN or an infinity must still be refused.
    @Test("W8A8 on a float input (quantized in the GEMM's region) equals quantize-then-linear bit for bit",
          arguments: [32, 128, 7])
    func w8a8QuantizingInputIsQuantizeThenLinear(blockSize: Int) throws {
        let shapes: [([Int], Int)] = [([17, 257], 37), ([2, 9, 200], 70), ([64, 3072], 300), ([300, 1024], 200),
                                      ([33, 130], 67), ([1030, 96], 90), ([5, 200], 40)]
        try CPUKernelCheck.onEveryPath { path in
            for (index, (inputShape, n)) in shapes.enumerated() {
                let k = inputShape.last!
                let rounding: Rounding = index % 2 == 0 ? .nearestEven : .towardZero
                let weightLayout = try BlockWiseINT8Layout(blockRows: blockSize == 7 ? 5 : blockSize,
                                                           blockColumns: blockSize, rounding: rounding)
                let w = try QuantizedTensor.fromFloat(
                    try Tensor(try CPUKernelCheck.values([n, k], seed: UInt64(40 + index)), shape: [n, k]),
                    layout: weightLayout)
                let bias = try Tensor.randomNormal([n], seed: UInt64(60 + index))
                let x = try Tensor(try CPUKernelCheck.values(inputShape, seed: UInt64(50 + index)), shape: inputShape)
                for dtype in [DType.float32, .float16, .bfloat16] {
                    let input = try x.converted(to: dtype)
                    let qx = try QuantizedTensor.fromFloat(
                        input, layout: try BlockWiseINT8Layout.activation(blockSize: blockSize, rounding: rounding))
                    let fused = try linear(input, w, bias: bias).dequantized()
                    let twoSteps = try linear(qx, w, bias: bias).dequantized()
                    #expect(fused.dtype == twoSteps.dtype && fused.shape == twoSteps.shape)
                    #expect(try CPUKernelCheck.bytes(fused) == CPUKernelCheck.bytes(twoSteps),
                            "\(path) \(inputShape) N=\(n) B=\(blockSize) \(dtype)")
                }
                var bad = try x.floats()
                bad[bad.count / 2] = index % 2 == 0 ? .nan : .infinity
                #expect(throws: TensorError.self, "\(path) \(inputShape): a non-finite input must be refused") {
                    _ = try linear(try Tensor(bad, shape: inputShape), w)
                }
            }
        }
    }

    @Test("weight-only linear matches dequantize-then-float32", arguments: blockSizes)
    func weightOnlyMatchesReference(blockSize: Int) throws {
        try CPUKernelCheck.onEveryPath { path in
            for (index, (inputShape, n)) in Self.linearShapes.enumerated() {
                let k = inputShape.last!
                let seed = UInt64(500 + index * 5)
                let x = try Tensor(try CPUKernelCheck.values(inputShape, seed: seed), shape: inputShape)
                let w = try QuantizedTensor.fromFloat(try Tensor(try CPUKernelCheck.values([n, k], seed: seed + 1),
                                                                 shape: [n, k]),
                                                      layout: try BlockWiseINT8Layout.weight(blockSize: blockSize))
                let bias = try Tensor.randomNormal([n], seed: seed + 2)
                let dense = try Tensor(BlockWiseINT8Reference.dequantize(
                    try w.data.elements(as: Int8.self), scales: try w.scale.floats(), shape: [n, k],
                    layout: try BlockWiseINT8Layout.weight(blockSize: blockSize)), shape: [n, k])
                for withBias in [false, true] {
                    let expected = try DenseOps.linear(x, dense, bias: withBias ? bias : nil).floats()
                    for dtype in [DType.float32, .float16, .bfloat16] {
                        let y = try linear(try x.converted(to: dtype), w, bias: withBias ? bias : nil,
                                           options: LinearOptions(floatInput: .dequantizeWeight)).dequantized()
                        #expect(y.dtype == dtype)
                        let reference = dtype == .float32 ? expected
                            : try DenseOps.linear(try x.converted(to: dtype), dense, bias: withBias ? bias : nil)
                                .floats()
                        #expect(CPUKernelCheck.relativeError(try y.floats(), reference)
                            <= CPUKernelCheck.tolerance(dtype), "\(path) \(inputShape) N=\(n) B=\(blockSize) \(dtype)")
                    }
                }
            }
        }
    }

    @Test("forcing a path the CPU lacks is an error that names the CPU's features")
    func unsupportedPathIsRefused() throws {
        for path in CPUKernelPath.allCases where !path.isSupported {
            #expect(throws: TensorError.self) { try CPUKernelPath.withPath(path) {} }
        }
        #expect(CPUKernelPath.supported.contains(.portable))
        #expect(CPUKernelPath.current == CPUKernelPath.best)
    }
}
