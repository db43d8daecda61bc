import Foundation
@testable import QLCUDA
import QuantizedLinear
import Testing

private let gpu = Device.cuda(0)

/// The B = 128 wgmma GEMM's tilings (issue 10): mixes of 128 x 128 and 128 x 64 tiles, and 192 x 128
/// tiles; which one the launch code picks, and that every one computes exactly what all-wide tiles do.
@Suite("INT8 GEMM tiling")
struct CUDAINT8GEMMTilingTests {
    /// Runs everywhere (no GPU): narrow tiles for the columns that would make a last, part-full round
    /// of wide tiles (M = 1024 on 132 SMs), all wide where the wide tiles run many full rounds.
    @Test func narrowTilesWhereWideOnesFillTheSMsPoorly() {
        let tiles = { (m: Int, n: Int, sms: Int) in
            BlockwiseINT8GEMM.wgmmaWideColumnTiles(m: m, n: n, multiprocessors: sms)
        }
        #expect(tiles(1024, 3072, 132) == 16)  // 128 wide tiles (1 round) + 128 narrow ones
        #expect(tiles(1024, 5120, 132) == 33)  // 264 wide tiles (2 rounds) + 112 narrow ones
        #expect(tiles(2048, 3072, 132) == 24)  // 384 wide tiles: no mix beats 3 rounds
        #expect(tiles(1024, 13824, 132) == 108)
        #expect(tiles(54560, 3072, 132) == 24)
        #expect(tiles(1024, 2048, 128) == 16)  // 128 wide tiles are one full round on 128 SMs
        #expect(tiles(128, 64, 132) == 0)      // one narrow tile instead of one wide one
    }

    /// Runs everywhere: the 192 x 128-tile kernel only where its tiles make at least 4 rounds on the SMs
    /// and the rows past M in its last row tile are at most 1/16 of M.
    @Test func threeConsumerKernelOnlyForManyFullRoundsOfTallTiles() {
        let c3 = { (m: Int, n: Int) in BlockwiseINT8GEMM.usesThreeConsumerKernel(m: m, n: n, multiprocessors: 132) }
        #expect(c3(54560, 3072))    // 285 x 24 tiles
        #expect(c3(54560, 14336))
        #expect(c3(4096, 5120))     // 22 x 40 = 880 tiles, 128 of 4224 rows past M
        #expect(!c3(2048, 3072))    // 11 x 24 = 264 tiles: 2 rounds
        #expect(!c3(1024, 5120))    // 6 x 40 = 240 tiles
        #expect(!c3(1024, 13824))   // 6 x 108 = 648 tiles, but 128 of 1152 rows past M
    }

    /// Mixes on the same operands (odd M, N not a multiple of 64 or of 128, K padded to whole unrolled
    /// steps, a bias, three output dtypes): the bits of all-wide tiles, within the tensor-core tolerance of
    /// the CPU's W8A8 linear (the arithmetic of NOTES.md "Numerics decisions").
    /// The 192 x 128-tile kernels (`bw8_gemm_wgmma_c3_b128` and its 2-CTA cluster form) run every case
    /// too: partial row and column tiles, an odd number of column tiles (the cluster's last pair has
    /// one tile past N), two tiles per CTA (2000 x 3000), the same bits.
    @Test(.enabled(if: CUDABackend.isAvailable && ((try? CUDABackend.computeCapability(gpu)) ?? 0) == 90,
                   "needs an sm_90 GPU (the wgmma kernels)"),
          arguments: [DType.bfloat16, .float32, .float16])
    func everyMixGivesTheWideKernelsBits(output: DType) throws {
        registerBuiltinLayouts()
        let layout = try BlockWiseINT8Layout.activation(blockSize: 128)
        let weightLayout = try BlockWiseINT8Layout.weight(blockSize: 128)
        for (m, n, k, mixes) in [(300, 200, 1040, [0, 1]), (1024, 640, 384, [0, 2, 4]), (129, 1000, 2048, [3]),
                                 (64, 129, 256, [0, 1]), (200, 300, 640, [1]), (2000, 3000, 512, [])] {
            let x = try Tensor.randomNormal([m, k], standardDeviation: 2, seed: UInt64(m + k))
            let w = try Tensor.randomNormal([n, k], standardDeviation: 0.05, seed: UInt64(n + 7 * k))
            let bias = try Tensor.randomNormal([n], seed: UInt64(n))
            let qx = try QuantizedTensor.fromFloat(x.to(gpu), layout: layout)
            let qw = try QuantizedTensor.fromFloat(w.to(gpu), layout: weightLayout)
            let plans = [BlockwiseINT8GEMM.Plan.wgmma(entry: "bw8_gemm_wgmma_pp_b128")]
                + mixes.map { BlockwiseINT8GEMM.Plan.wgmmaMixed(wideTiles: $0) }
                + [.wgmmaC3(cluster: false), .wgmmaC3(cluster: true)]
            var outputs: [[Float]] = []
            for plan in plans {
                let y = try GPU.empty([m, n], output, on: try GPU(qx.data).device)
                try BlockwiseINT8GEMM.launch(plan, x: try GPU(qx.data), sx: try GPU(qx.scale), w: try GPU(qw.data),
                                             sw: try GPU(qw.scale), bias: try bias.to(gpu), y: try GPU(y), m: m, n: n,
                                             k: k, blockRows: 128, blockColumns: 128, output: output)
                outputs.append(try y.floats())
            }
            for (plan, values) in zip(plans, outputs).dropFirst() {
                #expect(values == outputs[0], "\(m)x\(n)x\(k) \(output) \(plan)")
            }
            let expected = try withoutFallback {
                try linear(x, try QuantizedTensor.fromFloat(w, layout: weightLayout), bias: bias,
                           options: LinearOptions(floatInput: .quantizeInput)).dequantized().floats()
            }
            let tolerance = output == .float32 ? 1e-6 : output == .float16 ? 2e-3 : 1e-2
            #expect(relativeError(outputs[0], expected) < tolerance, "\(m)x\(n)x\(k) \(output)")
        }
    }
}
