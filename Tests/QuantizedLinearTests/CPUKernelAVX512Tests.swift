import CQLKernels
import QuantizedLinear
import Testing

/// The kernels that run only on AVX-512 / AMX hosts (session 5): the decoded-panel float GEMM's AVX-512
/// micro-kernel (24 x 16 since session 7) and 16 x 16 INT8 decode, which must give the AVX2 path's bits, and the AMX W8A8 GEMM's in-place
/// activation (tail rows copied), one wide column range per core and panels of up to 256 columns,
/// which must give the reference's bits. Skipped, with the reason, on CPUs without them (this Zen 3 dev
/// machine has neither).
@Suite("CPU kernels: AVX-512 decoded GEMM and AMX tilings")
struct CPUKernelAVX512Tests {
    /// (input shape, N) at the AVX-512 micro-kernel's edges: rows in groups of four 6-row tiles (M = 17, 18:
    /// three tiles, the last short / full; 23 / 24: a group short by one / full; 25: a group and one row;
    /// 47: a group and three tiles), ragged 16-column sub-panels (N = 300: 18.75 sub-panels, 529 two panels
    /// plus one column), K two chunks plus 88 (80 decoded 16 at a time, 8 by the AVX2 decode) or 8 (AVX2
    /// only), M = 257 (float-tile rows prefetched), M = 2053 (two row chunks), K < 8.
    static let decodedShapes: [([Int], Int)] = [
        ([17, 600], 300), ([18, 600], 529), ([23, 520], 48), ([24, 520], 16), ([25, 600], 33), ([47, 264], 300),
        ([257, 72], 40), ([2053, 40], 20), ([64, 7], 33), ([3, 30, 40], 270),
    ]

    /// The paths whose float GEMM runs the AVX-512 micro-kernel.
    static let avx512Paths = [CPUKernelPath.avx512vnni, .amx].filter(\.isSupported)

    @Test("decoded GEMM: the AVX-512 micro-kernel gives the AVX2 path's bits (INT8 and FP8, weight-only and W8A8)",
          .enabled(if: CPUKernelPath.avx512vnni.isSupported, "skipped: this CPU has no AVX-512 (F, BW, VL, VNNI)"))
    func decodedGEMMMatchesAVX2() throws {
        for (index, (inputShape, n)) in Self.decodedShapes.enumerated() {
            let k = inputShape.last!
            let seed = UInt64(4100 + index * 7)
            let x = try Tensor(try CPUKernelCheck.values(inputShape, seed: seed), shape: inputShape)
            let wValues = try Tensor(try CPUKernelCheck.values([n, k], seed: seed + 1), shape: [n, k])
            let bias = try Tensor.randomNormal([n], seed: seed + 2)
            let weights = [
                try QuantizedTensor.fromFloat(wValues, layout: try BlockWiseINT8Layout.weight(blockSize: 32)),
                try QuantizedTensor.fromFloat(wValues, layout: try BlockWiseINT8Layout.weight(blockSize: 7)),
                // B = 16: the AVX-512 decode's smallest block; B = 8: it declines, the AVX2 decode runs.
                try QuantizedTensor.fromFloat(wValues, layout: try BlockWiseINT8Layout.weight(blockSize: 16)),
                try QuantizedTensor.fromFloat(wValues, layout: try BlockWiseINT8Layout.weight(blockSize: 8)),
                try QuantizedTensor.fromFloat(wValues, layout: TensorCoreFP8Layout.dynamic),
            ]
            for (which, w) in weights.enumerated() {
                // INT8 W8A8 is not a float GEMM; FP8 W8A8 is (decoded input codes).
                let modes: [LinearOptions?] = which == weights.count - 1 ? [LinearOptions(floatInput: .dequantizeWeight), nil]
                                                         : [LinearOptions(floatInput: .dequantizeWeight)]
                for options in modes {
                    func run(_ path: CPUKernelPath) throws -> [UInt32] {
                        try CPUKernelPath.withPath(path) {
                            try FallbackPolicy.withPolicy(.fail) {
                                let y = try options.map { try linear(x, w, bias: bias, options: $0) }
                                    ?? linear(x, w, bias: bias)
                                return try y.dequantized().floats().map(\.bitPattern)
                            }
                        }
                    }
                    let expected = try run(.avx2)
                    for path in Self.avx512Paths {
                        let mode = options == nil ? "W8A8" : "weight-only"
                        #expect(try run(path) == expected, "\(path) \(inputShape) N=\(n) weight \(which) \(mode)")
                    }
                }
            }
        }
    }

    /// (input shape, N, block size) for the weight-only INT8 GEMV's one-row zmm loop (session 9): M = 1 with
    /// whole 32-code steps (K = 3072, B = 128), a last block of 40 (one step and an 8-code tail), blocks
    /// shorter than a step (B = 16 and 7: tails only), M = 5 (four rows on the AVX2 loop, then one on zmm)
    /// and M = 2 (the AVX2 loop only).
    static let gemvCases: [([Int], Int, Int)] = [
        ([1, 3072], 300, 128), ([1, 3112], 33, 128), ([1, 640], 20, 16), ([1, 96], 17, 7), ([5, 200], 20, 32),
        ([2, 1, 256], 9, 64),
    ]

    @Test("weight-only INT8 GEMV: the AVX-512 one-row loop gives the AVX2 path's bits",
          .enabled(if: CPUKernelPath.avx512vnni.isSupported, "skipped: this CPU has no AVX-512 (F, BW, VL, VNNI)"))
    func weightOnlyGEMVMatchesAVX2() throws {
        for (index, (inputShape, n, block)) in Self.gemvCases.enumerated() {
            let k = inputShape.last!
            let seed = UInt64(5300 + index * 7)
            let x = try Tensor(try CPUKernelCheck.values(inputShape, seed: seed), shape: inputShape)
            let wValues = try Tensor(try CPUKernelCheck.values([n, k], seed: seed + 1), shape: [n, k])
            let bias = try Tensor.randomNormal([n], seed: seed + 2)
            let w = try QuantizedTensor.fromFloat(wValues, layout: try BlockWiseINT8Layout.weight(blockSize: block))
            func run(_ path: CPUKernelPath) throws -> [UInt32] {
                try CPUKernelPath.withPath(path) {
                    try FallbackPolicy.withPolicy(.fail) {
                        try linear(x, w, bias: bias, options: LinearOptions(floatInput: .dequantizeWeight))
                            .dequantized().floats().map(\.bitPattern)
                    }
                }
            }
            let expected = try run(.avx2)
            for path in Self.avx512Paths {
                #expect(try run(path) == expected, "\(path) \(inputShape) N=\(n) B=\(block)")
            }
        }
    }

    /// (input shape, N) for the FP8 GEMV's one-row zmm loop (session 9): M = 1 with whole 32-code steps (K =
    /// 3072), a tail of 8 codes after one step (K = 40), a tail only (K = 20), M = 5 (four rows on the AVX2
    /// loop, then one on zmm), M = 2 (the AVX2 loop only); one case holds a NaN code (0x7F), which must make
    /// exactly its output column NaN on both loops.
    static let fp8GEMVCases: [([Int], Int)] = [([1, 3072], 300), ([1, 40], 33), ([1, 20], 9), ([5, 200], 20),
                                               ([2, 1, 256], 9)]

    @Test("FP8 GEMV (weight-only and W8A8): the AVX-512 one-row loop gives the AVX2 path's bits",
          .enabled(if: CPUKernelPath.avx512vnni.isSupported, "skipped: this CPU has no AVX-512 (F, BW, VL, VNNI)"))
    func fp8GEMVMatchesAVX2() throws {
        for (index, (inputShape, n)) in Self.fp8GEMVCases.enumerated() {
            let k = inputShape.last!
            let seed = UInt64(5600 + index * 7)
            let x = try Tensor(try CPUKernelCheck.values(inputShape, seed: seed), shape: inputShape)
            var w = try QuantizedTensor.fromFloat(try Tensor(try CPUKernelCheck.values([n, k], seed: seed + 1),
                                                             shape: [n, k]), layout: TensorCoreFP8Layout.dynamic)
            if index == 0 {
                var codes = try w.data.elements(as: Float8E4M3FN.self)
                codes[3 * k + 100] = Float8E4M3FN(bitPattern: 0x7F)
                w = try QuantizedTensor(layout: TensorCoreFP8Layout.dynamic, data: try Tensor(elements: codes, shape: [n, k]),
                                        scale: w.scale, shape: [n, k], originalDType: .float32)
            }
            let bias = try Tensor.randomNormal([n], seed: seed + 2)
            for floatInput in [LinearOptions.FloatInputMode.dequantizeWeight, .quantizeInput] {
                func run(_ path: CPUKernelPath) throws -> [UInt32] {
                    try CPUKernelPath.withPath(path) {
                        try FallbackPolicy.withPolicy(.fail) {
                            try linear(x, w, bias: bias, options: LinearOptions(floatInput: floatInput))
                                .dequantized().floats().map(\.bitPattern)
                        }
                    }
                }
                let expected = try run(.avx2)
                if index == 0 {
                    let nanColumns = Set(expected.indices.filter { Float(bitPattern: expected[$0]).isNaN }.map { $0 % n })
                    #expect(nanColumns == [3], "the NaN code's column, and only it, is NaN (\(floatInput))")
                }
                for path in Self.avx512Paths {
                    #expect(try run(path) == expected, "\(path) \(inputShape) N=\(n) \(floatInput)")
                }
            }
        }
    }

    /// (input shape, N, block size): K blocks of multiples of 64 (activation read in place) with M % 32
    /// tail rows (17, 40, 100, 1) and without (64, 96), N past 256 columns per core's range on a
    /// 16-core host (5000: two panels per range, the last range ending off a multiple of 32), block widths
    /// 64, 128 and 256, and K not a multiple of 64 with B = 64 (packed: the last block is padded).
    static let amxCases: [([Int], Int, Int)] = [
        ([17, 256], 70, 64), ([40, 512], 300, 128), ([64, 768], 130, 256), ([96, 384], 5000, 128),
        ([2, 50, 128], 5000, 64), ([100, 200], 33, 64), ([1, 33, 640], 96, 64),
    ]

    @Test("AMX W8A8: in-place activation, tail rows and wide panels are bit-identical to the reference",
          .enabled(if: CPUKernelPath.amx.isSupported, "skipped: this CPU has no AMX-INT8, or the OS refused tile data"))
    func amxTilingsAreExact() throws {
        try Self.expectLinearsMatchReference(Self.amxCases, path: .amx, firstSeed: 4300, label: "AMX")
    }

    /// (input shape, N, block size) for the AVX-512 VNNI W8A8 GEMM that reads the weight in place (session
    /// 6, int8_gemm_avx512.c: k and the block multiples of 4): 64-row tiles of 1-4 row vectors (M = 17, 33,
    /// 48, 64, 100, 130: 2, 3, 4 vectors, two and three tiles), column groups of 24 / rv with a ragged last
    /// group (N = 70, 37, 5000), 16 K blocks reduced at once and a partial set (K = 2304 at B = 128: 18 blocks),
    /// block widths 4, 36 and 100 (masked block-sum tails), the last block shorter (K = 1000 at B = 128),
    /// and K = 1002 (not a multiple of 4: the packed path). Session 7 (block sums at the first tile's
    /// flush, kept for later tiles; 16 x 16 transposes in the packer and the 48-column output spans):
    /// K = 388 (97 quads: 16-quad transposes plus one quad per row), N = 49 and 97 (a span plus 1 / 2 spans
    /// plus 1 column), M = 80 (a 4-vector tile, then a 1-vector tile of 24-column groups reading the sums),
    /// M = 1030 (17 tiles, the last one with 6 live rows).
    static let vnniCases: [([Int], Int, Int)] = [
        ([17, 256], 70, 128), ([33, 2304], 37, 128), ([48, 1000], 96, 128), ([64, 384], 5000, 128),
        ([2, 50, 512], 100, 4), ([100, 720], 33, 36), ([130, 400], 40, 100), ([40, 1002], 24, 128),
        ([64, 388], 49, 4), ([80, 3072], 97, 128), ([1030, 256], 97, 128), ([21, 1028], 50, 128),
    ]

    @Test("AVX-512 VNNI W8A8 with the weight in place is bit-identical to the reference (and at codes +-127)",
          .enabled(if: CPUKernelPath.avx512vnni.isSupported, "skipped: this CPU has no AVX-512 (F, BW, VL, VNNI)"))
    func vnniWeightInPlaceIsExact() throws {
        try Self.expectLinearsMatchReference(Self.vnniCases, path: .avx512vnni, firstSeed: 4500, label: "VNNI")
        try Self.expectExtremeCodesExact(m: 64, n: 30, k: 3072)
        try Self.expectExtremeCodesExact(m: 37, n: 50, k: 1028)
    }

    /// Codes at +-127 everywhere on `.avx512vnni` (a constant input and an alternating weight quantize to
    /// exactly those codes): the reference's bits.
    static func expectExtremeCodesExact(m: Int, n: Int, k: Int) throws {
        let x = try Tensor([Float](repeating: -1, count: m * k), shape: [m, k])
        let wValues = (0..<(n * k)).map { Float(($0 + $0 / k) % 2 == 0 ? 1 : -1) }
        let layout = try BlockWiseINT8Layout.weight(blockSize: 128)
        let w = try QuantizedTensor.fromFloat(try Tensor(wValues, shape: [n, k]), layout: layout)
        let qx = try QuantizedTensor.fromFloat(x, layout: try BlockWiseINT8Layout.activation(blockSize: 128))
        let codes = try w.data.elements(as: Int8.self), inputCodes = try qx.data.elements(as: Int8.self)
        #expect(codes.allSatisfy { $0 == 127 || $0 == -127 } && inputCodes.allSatisfy { $0 == -127 })
        let expected = BlockWiseINT8Reference.linear(
            inputCodes: inputCodes, inputScales: try qx.scale.floats(), m: m, k: k, weightCodes: codes,
            weightScales: try w.scale.floats(), n: n, weightBlockRows: layout.blockRows, blockColumns: 128, bias: nil)
        let y = try CPUKernelPath.withPath(.avx512vnni) {
            try FallbackPolicy.withPolicy(.fail) { try linear(qx, w).dequantized().floats() }
        }
        #expect(y.map(\.bitPattern) == expected.map(\.bitPattern), "VNNI +-127 M=\(m) N=\(n) K=\(k)")
    }

    @Test("AVX-512 VNNI in-place packer: any row ranges (16-row vectors split or whole) give the same bytes",
          .enabled(if: CPUKernelPath.avx512vnni.isSupported, "skipped: this CPU has no AVX-512 (F, BW, VL, VNNI)"))
    func vnniPackerRangesAgree() throws {
        // M = 70 (80 rows: a 64-row tile and a 16-row tile), K = 388 (97 quads), B = 128 (4 blocks).
        let (m, k, bk) = (70, 388, 128)
        let path = Int32(CK_PATH_AVX512VNNI)
        let codes = (0..<(m * k)).map { Int8(truncatingIfNeeded: ($0 * 37 + $0 / k) % 255 - 127) }
        let kBlocks = (k + bk - 1) / bk
        let scales = (0..<(m * kBlocks)).map { Float($0 + 1) }
        var rows: Int64 = 0, rowBytes: Int64 = 0
        ck_i8_gemm_activation_size(Int64(m), Int64(k), Int64(bk), path, &rows, &rowBytes)
        #expect(rows == 80 && rowBytes == Int64(k))
        func pack(_ bounds: [Int]) -> ([UInt8], [Float]) {
            var packed = [UInt8](repeating: 0xAA, count: Int(rows * rowBytes))
            var packedScales = [Float](repeating: -1, count: Int(rows) * kBlocks)
            packed.withUnsafeMutableBytes { p in
                packedScales.withUnsafeMutableBufferPointer { s in
                    for (lower, upper) in zip(bounds, bounds.dropFirst()) {
                        ck_i8_gemm_pack_activation(codes, scales, Int64(m), Int64(k), Int64(bk), path, Int64(lower),
                                                   Int64(upper), p.baseAddress, s.baseAddress)
                    }
                }
            }
            return (packed, packedScales)
        }
        let whole = pack([0, 80])
        // Row 5 of the packed tile, quad 96 (the last, packed one quad at a time): codes ^ 0x80 at
        // quad * 4 row vectors * 64 + 4 * row.
        #expect(whole.0[96 * 4 * 64 + 4 * 5] == UInt8(bitPattern: codes[5 * k + 384]) ^ 0x80)
        for bounds in [[0, 5, 16, 37, 64, 71, 80], [0, 16, 32, 48, 64, 80], [0, 1, 79, 80]] {
            let split = pack(bounds)
            #expect(split.0 == whole.0 && split.1 == whole.1, "ranges \(bounds)")
        }
    }

    /// For each (input shape, N, block size): a W8A8 linear with bias on `path` (fallback policy `fail`) has
    /// the bits of `BlockWiseINT8Reference.linear` on the same codes and scales; case i draws its values from
    /// seeds `firstSeed + 7 i` (input), `+ 1` (weight) and `+ 2` (bias).
    static func expectLinearsMatchReference(_ cases: [([Int], Int, Int)], path: CPUKernelPath, firstSeed: UInt64,
                                            label: String) throws {
        for (index, (inputShape, n, blockSize)) in cases.enumerated() {
            let k = inputShape.last!, m = inputShape.dropLast().reduce(1, *)
            let seed = firstSeed + UInt64(index * 7)
            let weightLayout = try BlockWiseINT8Layout.weight(blockSize: blockSize)
            let w = try QuantizedTensor.fromFloat(try Tensor(try CPUKernelCheck.values([n, k], seed: seed + 1),
                                                             shape: [n, k]), layout: weightLayout)
            let x = try Tensor(try CPUKernelCheck.values(inputShape, seed: seed), shape: inputShape)
            let qx = try QuantizedTensor.fromFloat(x, layout: try BlockWiseINT8Layout.activation(blockSize: blockSize))
            let bias = try Tensor.randomNormal([n], seed: seed + 2)
            let expected = BlockWiseINT8Reference.linear(
                inputCodes: try qx.data.elements(as: Int8.self), inputScales: try qx.scale.floats(), m: m, k: k,
                weightCodes: try w.data.elements(as: Int8.self), weightScales: try w.scale.floats(), n: n,
                weightBlockRows: weightLayout.blockRows, blockColumns: blockSize, bias: try bias.floats())
            let y = try CPUKernelPath.withPath(path) {
                try FallbackPolicy.withPolicy(.fail) { try linear(qx, w, bias: bias).dequantized().floats() }
            }
            #expect(y.map(\.bitPattern) == expected.map(\.bitPattern), "\(label) \(inputShape) N=\(n) B=\(blockSize)")
        }
    }
}
