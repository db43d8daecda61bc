import Foundation
import QLTensor

/// Launches the tensor-core block-wise INT8 kernels of ``BlockwiseINT8GEMMKernels`` (written to the
/// launch contract documented there), choosing by declared capability before launching:
///
/// | kernel | when |
/// |---|---|
/// | `bw8_gemm_wgmma_pp_b128` | sm_90, weight blocks 128 x 128, K % 16 == 0 (the pipelined one) |
/// | `bw8_gemm_wgmma_pp_b128_n64` | the same, where its 128 x 64 tiles fill the SMs better (``wgmmaTileColumns``) |
/// | `bw8_gemm_wgmma_b{128,64,32}` | sm_90, weight blocks B x B, B in {32, 64, 128k}, K % 16 == 0 |
/// | `bw8_gemm_mma` | sm_80+, K % 16 == 0, B % 32 == 0 |
///
/// and otherwise the reason none fits, when our SIMT kernel (``LinearKernels``) runs instead. Outputs must be
/// float32, float16 or bfloat16. Decode shapes (M <= 16) run ``DecodeKernels`` before any plan: the
/// GEMM engineer's `bw8_gemv` splits each K block into 16-element partial sums, which the output
/// arithmetic (NOTES.md, "Numerics decisions") does not allow, so the library does not launch it.
enum BlockwiseINT8GEMM {
    static let portable = KernelSource(file: "bw8_portable", contractsMultiplyAdd: true)
    static let hopper = KernelSource(file: "bw8_hopper", needsArchSpecific: true, contractsMultiplyAdd: true)

    enum Plan: Equatable {
        /// A TMA + wgmma kernel with 128 x `tileColumns` output tiles.
        case wgmma(entry: String, tileColumns: Int)
        case mma
    }

    /// Why none of the tensor-core kernels takes a problem.
    struct Unsupported: Error {
        let reason: String
    }

    /// The kernel for this problem, or why none of the tensor-core kernels declares support.
    static func plan(m: Int, n: Int, k: Int, blockRows: Int, blockColumns: Int, output: DType,
                     device: CUDADevice) -> Result<Plan, Unsupported> {
        guard [.float32, .float16, .bfloat16].contains(output) else {
            return .failure(Unsupported(reason: "output \(output) is not float32, float16 or bfloat16"))
        }
        guard k % 16 == 0 else { return .failure(Unsupported(reason: "K = \(k) is not a multiple of 16")) }
        guard device.capability >= 80 else {
            return .failure(Unsupported(reason: "compute capability \(device.capability) is below 8.0"))
        }
        let b = blockColumns
        if device.capability == 90, blockRows == b,
           device.maxSharedMemoryPerBlock >= BlockwiseINT8GEMMKernels.wgmmaDynamicSharedBytes,
           device.driver.tensorMapEncodeTiled != nil {
            if b == 128 {
                let columns = wgmmaTileColumns(m: m, n: n, multiprocessors: device.multiprocessorCount)
                return .success(.wgmma(entry: columns == 64 ? "bw8_gemm_wgmma_pp_b128_n64" : "bw8_gemm_wgmma_pp_b128",
                                       tileColumns: columns))
            }
            if b % 128 == 0 { return .success(.wgmma(entry: "bw8_gemm_wgmma_b128", tileColumns: 128)) }
            if b == 64 { return .success(.wgmma(entry: "bw8_gemm_wgmma_b64", tileColumns: 128)) }
            if b == 32 { return .success(.wgmma(entry: "bw8_gemm_wgmma_b32", tileColumns: 128)) }
        }
        if b % 32 == 0 && device.maxSharedMemoryPerBlock >= BlockwiseINT8GEMMKernels.mmaDynamicSharedBytes {
            return .success(.mma)
        }
        return .failure(Unsupported(reason: "M = \(m) with \(blockRows)x\(b) weight blocks: the decode kernel "
            + "needs M <= 16 and B a power of two in 16...512, the MMA kernel B % 32 == 0 and "
            + "\(BlockwiseINT8GEMMKernels.mmaDynamicSharedBytes) bytes of shared memory per block"))
    }

    /// The output tile width of the B = 128 wgmma kernel: 64 where 128 x 64 tiles finish sooner than
    /// 128 x 128 ones. The grid is persistent (one CTA per SM, tile t on CTA t mod SMs), so a kernel
    /// takes `rounds(T) = ceil(T / SMs)` tile times for T tiles, and
    ///
    ///     time(128) = rounds(ceil(M / 128) * ceil(N / 128))
    ///     time(64)  = narrowTileCost * rounds(ceil(M / 128) * ceil(N / 64))
    ///
    /// in units of a 128 x 128 tile. At M = 1024, N = 3072 on 132 SMs: 2 rounds of wide tiles
    /// (192 tiles, the second round 45 % full) against 3 of narrow ones (384).
    static func wgmmaTileColumns(m: Int, n: Int, multiprocessors: Int) -> Int {
        let rowTiles = (m + BlockwiseINT8GEMMKernels.tileM - 1) / BlockwiseINT8GEMMKernels.tileM
        let rounds = { (tiles: Int) in Double((tiles + multiprocessors - 1) / multiprocessors) }
        let wide = rounds(rowTiles * ((n + 127) / 128))
        let narrow = narrowTileCost * rounds(rowTiles * ((n + 63) / 64))
        return narrow < wide ? 64 : 128
    }

    /// A 128 x 64 tile's time over a 128 x 128 tile's, measured on the H200 where both kernels run
    /// many full rounds (NOTES.md, "Issue 10, round 4"): above 0.5 because every narrow tile still
    /// loads its whole 128 x K slice of A and pays the same per-tile start and epilogue.
    static let narrowTileCost = 0.55

    /// `y (M, N) = W8A8(qx, sx, qw, sw) + bias` with the planned kernel.
    static func launch(_ plan: Plan, x: GPU, sx: GPU, w: GPU, sw: GPU, bias: Tensor?, y: GPU, m: Int, n: Int, k: Int,
                       blockRows: Int, blockColumns: Int, output: DType) throws {
        let device = x.device
        let biasCode: Int32 = bias.map { Int32($0.dtype.kernelCode) } ?? -1
        let tail: [KernelArgument] = [sx.argument, sw.argument,
                                      try bias.map { try GPU($0).argument } ?? .null, y.argument,
                                      .int32(Int32(m)), .int32(Int32(n)), .int32(Int32(k))]
        switch plan {
        case .mma:
            let function = try device.function(portable, entry: "bw8_gemm_mma")
            let shared = BlockwiseINT8GEMMKernels.mmaDynamicSharedBytes
            try device.setDynamicSharedMemory(function, bytes: shared)
            let grid = ((n + 127) / 128, (m + 127) / 128, 1)
            try device.launch(function, grid: grid, block: (256, 1, 1), sharedMemory: shared, [
                x.argument, sx.argument, w.argument, sw.argument,
                try bias.map { try GPU($0).argument } ?? .null, y.argument,
                .int32(Int32(m)), .int32(Int32(n)), .int32(Int32(k)), .int32(Int32(blockColumns)),
                .int32(Int32(blockRows)), .int32(biasCode), .int32(Int32(output.kernelCode))])
        case .wgmma(let entry, let columns):
            let function = try device.function(hopper, entry: entry)
            let shared = BlockwiseINT8GEMMKernels.wgmmaDynamicSharedBytes
            try device.setDynamicSharedMemory(function, bytes: shared)
            let tile = BlockwiseINT8GEMMKernels.tileM
            let mapA = try device.tensorMap2D(int8: x.address, rows: m, columns: k, boxRows: tile, boxColumns: 128)
            let mapB = try device.tensorMap2D(int8: w.address, rows: n, columns: k, boxRows: columns, boxColumns: 128)
            let tiles = ((m + tile - 1) / tile) * ((n + columns - 1) / columns)
            try device.launch(function, grid: (min(tiles, device.multiprocessorCount), 1, 1),
                              block: (BlockwiseINT8GEMMKernels.wgmmaThreads, 1, 1), sharedMemory: shared,
                              [.bytes(mapA), .bytes(mapB)] + tail
                                + [.int32(Int32(blockColumns)), .int32(biasCode), .int32(Int32(output.kernelCode))])
        }
    }
}
