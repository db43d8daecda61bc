import Foundation
import QuantizedLinear
import Testing

private let gpu = Device.cuda(0)

/// The activation quantizer a CUDA linear runs on its float input (`bw8_quantize_rows_vec16` for
/// B in {32, 64, 128, 256} and K % 16 == 0, `quant_rows` otherwise): bit-exact with the CPU
/// reference on finite inputs, and NaN / infinity carried into the scales and the GEMM's rows.
@Suite("CUDA activation quantizer", .enabled(if: CUDABackend.isAvailable, "no CUDA GPU here"))
struct CUDAActivationQuantizerTests {
    static let blocks: [(Int, Rounding)] = [(32, .nearestEven), (64, .towardZero), (128, .nearestEven),
                                           (256, .towardZero), (100, .nearestEven)]

    /// Quantizes like a linear does: dense input, no transform, no finiteness wait.
    private func linearQuantize(_ x: Tensor, _ layout: BlockWiseINT8Layout) throws -> (codes: Tensor, scales: Tensor) {
        try CUDAQuantizedOps.quantizeBlockwise(.dense(x), shape: x.shape, scaleShape: layout.scaleShape(for: x.shape),
                                               blockRows: 1, blockColumns: layout.blockColumns,
                                               towardZero: layout.rounding == .towardZero, checkFinite: false)
    }

    @Test(arguments: blocks, [DType.float32, .bfloat16, .float16])
    func linearQuantizerIsBitExact(block: (Int, Rounding), dtype: DType) throws {
        registerBuiltinLayouts()
        let layout = try BlockWiseINT8Layout.activation(blockSize: block.0, rounding: block.1)
        // Partial last blocks (K = 400, 208), one row, and a scale under 1e-30 (the division fallback).
        let cases: [([Int], Float)] = [([3, 77, 208], 3), ([130, 256], 1), ([1, 1024], 40), ([96, 400], 1e-36)]
        for (index, (shape, deviation)) in cases.enumerated() {
            let x = try Tensor.randomNormal(shape, standardDeviation: deviation, dtype: dtype, seed: UInt64(300 + index))
            let cpu = try QuantizedTensor.fromFloat(x, layout: layout)
            let cuda = try linearQuantize(x.to(gpu), layout)
            #expect(try cuda.codes.elements(as: Int8.self) == cpu.data.elements(as: Int8.self), "\(shape) \(dtype)")
            #expect(try cuda.scales.floats() == cpu.scale.floats(), "\(shape) \(dtype)")
        }
    }

    /// Enough bfloat16 rows for `quant_rows`' four-chunk launch (2816 x 3072: 8448 warps of work, 64 per
    /// SM on 132 SMs), every rounding and a block wider than a warp's chunk: the CPU reference's bits.
    @Test(arguments: [(32, Rounding.nearestEven), (128, .towardZero), (512, .nearestEven)])
    func manyBFloat16RowsAreBitExact(block: (Int, Rounding)) throws {
        registerBuiltinLayouts()
        let layout = try BlockWiseINT8Layout.activation(blockSize: block.0, rounding: block.1)
        let x = try Tensor.randomNormal([2816, 3072], standardDeviation: 3, dtype: .bfloat16, seed: 310)
        let cpu = try QuantizedTensor.fromFloat(x, layout: layout)
        let cuda = try linearQuantize(x.to(gpu), layout)
        #expect(try cuda.codes.elements(as: Int8.self) == cpu.data.elements(as: Int8.self))
        #expect(try cuda.scales.floats() == cpu.scale.floats())
    }

    @Test(arguments: [32, 128, 100])
    func nanAndInfinityPropagateToScalesAndRows(blockSize: Int) throws {
        registerBuiltinLayouts()
        let (m, k, n) = (4, 256, 24)
        let clean = try Tensor.randomNormal([m, k], seed: 41)
        var values = try clean.floats()
        values[1 * k + 5] = .nan
        values[2 * k + k - 1] = .infinity
        let x = try Tensor(values, shape: [m, k])
        let layout = try BlockWiseINT8Layout.activation(blockSize: blockSize)
        let blocksPerRow = (k + blockSize - 1) / blockSize
        let scales = try linearQuantize(x.to(gpu), layout).scales.floats()
        let cleanScales = try QuantizedTensor.fromFloat(clean, layout: layout).scale.floats()
        for row in 0..<m {
            for block in 0..<blocksPerRow {
                let index = row * blocksPerRow + block
                if row == 1 && block == 0 {
                    #expect(scales[index].isNaN)
                } else if row == 2 && block == blocksPerRow - 1 {
                    #expect(scales[index] == .infinity)
                } else {
                    #expect(scales[index] == cleanScales[index], "row \(row) block \(block)")
                }
            }
        }
        let w = try QuantizedTensor.fromFloat(try Tensor.randomNormal([n, k], seed: 42).to(gpu),
                                              layout: BlockWiseINT8Layout.weight(blockSize: blockSize))
        // B = 100 has no tensor-core or decode kernel: the SIMT kernel runs, a recorded kernel fallback.
        let policy: FallbackPolicy = blockSize == 100 ? .dequantize : .fail
        let y = try FallbackPolicy.withPolicy(policy) { try linear(x.to(gpu), w).dequantized().floats() }
        let expected = try FallbackPolicy.withPolicy(policy) { try linear(clean.to(gpu), w).dequantized().floats() }
        #expect(y[(1 * n)..<(2 * n)].allSatisfy { $0.isNaN })
        #expect(y[(2 * n)..<(3 * n)].allSatisfy { !$0.isFinite })
        #expect(Array(y[0..<n]) == Array(expected[0..<n]) && Array(y[(3 * n)...]) == Array(expected[(3 * n)...]))
    }
}
