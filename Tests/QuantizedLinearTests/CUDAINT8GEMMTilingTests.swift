import Foundation
@testable import QLCUDA
import QuantizedLinear
import Testing

private let gpu = Device.cuda(0)

/// The B = 128 wgmma GEMM's two tile widths (issue 10): which one the launch code picks, and that the
/// 128 x 64 kernel computes exactly what the 128 x 128 one does.
@Suite("INT8 GEMM tiling")
struct CUDAINT8GEMMTilingTests {
    /// Runs everywhere (no GPU): 128 x 64 tiles where 128 x 128 ones leave the SMs' last round
    /// emptier (M = 1024 on 132 SMs), 128 x 128 where both run many full rounds.
    @Test func narrowTilesWhereWideOnesFillTheSMsPoorly() {
        #expect(BlockwiseINT8GEMM.wgmmaTileColumns(m: 1024, n: 3072, multiprocessors: 132) == 64)
        #expect(BlockwiseINT8GEMM.wgmmaTileColumns(m: 1024, n: 5120, multiprocessors: 132) == 64)
        #expect(BlockwiseINT8GEMM.wgmmaTileColumns(m: 54560, n: 3072, multiprocessors: 132) == 128)
        #expect(BlockwiseINT8GEMM.wgmmaTileColumns(m: 54560, n: 13824, multiprocessors: 132) == 128)
        // 8 x 16 = 128 wide tiles are one full round on 128 SMs: no narrow tile can beat that.
        #expect(BlockwiseINT8GEMM.wgmmaTileColumns(m: 1024, n: 2048, multiprocessors: 128) == 128)
    }

    /// Both widths on the same operands (odd M, N not a multiple of 64, K padded to whole unrolled
    /// steps, a bias, three output dtypes): identical bits, and within the tensor-core tolerance of
    /// the CPU's W8A8 linear (the arithmetic of NOTES.md "Numerics decisions").
    @Test(.enabled(if: CUDABackend.isAvailable && ((try? CUDABackend.computeCapability(gpu)) ?? 0) == 90,
                   "needs an sm_90 GPU (the wgmma kernels)"),
          arguments: [DType.bfloat16, .float32, .float16])
    func narrowTilesGiveTheWideKernelsBits(output: DType) throws {
        registerBuiltinLayouts()
        let layout = try BlockWiseINT8Layout.activation(blockSize: 128)
        let weightLayout = try BlockWiseINT8Layout.weight(blockSize: 128)
        for (m, n, k) in [(300, 200, 1040), (1024, 640, 384), (129, 1000, 2048)] {
            let x = try Tensor.randomNormal([m, k], standardDeviation: 2, seed: UInt64(m + k))
            let w = try Tensor.randomNormal([n, k], standardDeviation: 0.05, seed: UInt64(n + 7 * k))
            let bias = try Tensor.randomNormal([n], seed: UInt64(n))
            let qx = try QuantizedTensor.fromFloat(x.to(gpu), layout: layout)
            let qw = try QuantizedTensor.fromFloat(w.to(gpu), layout: weightLayout)
            var outputs: [[Float]] = []
            for columns in [128, 64] {
                let plan = BlockwiseINT8GEMM.Plan.wgmma(
                    entry: columns == 64 ? "bw8_gemm_wgmma_pp_b128_n64" : "bw8_gemm_wgmma_pp_b128",
                    tileColumns: columns)
                let device = try GPU(qx.data).device
                let y = try GPU.empty([m, n], output, on: device)
                try BlockwiseINT8GEMM.launch(plan, x: try GPU(qx.data), sx: try GPU(qx.scale), w: try GPU(qw.data),
                                             sw: try GPU(qw.scale), bias: try bias.to(gpu), y: try GPU(y), m: m, n: n,
                                             k: k, blockRows: 128, blockColumns: 128, output: output)
                outputs.append(try y.floats())
            }
            #expect(outputs[0] == outputs[1], "\(m)x\(n)x\(k) \(output)")
            let expected = try withoutFallback {
                try linear(x, try QuantizedTensor.fromFloat(w, layout: weightLayout), bias: bias,
                           options: LinearOptions(floatInput: .quantizeInput)).dequantized().floats()
            }
            let tolerance = output == .float32 ? 1e-6 : output == .float16 ? 2e-3 : 1e-2
            #expect(relativeError(outputs[1], expected) < tolerance, "\(m)x\(n)x\(k) \(output)")
        }
    }
}
