import Foundation
import QLTensor

/// Launches the tensor-core block-wise INT8 kernels of ``BlockwiseINT8GEMMKernels`` (written to the
/// launch contract documented there), choosing by declared capability before launching:
///
/// | kernel | when |
/// |---|---|
/// | `bw8_gemm_wgmma_c3_b128` | the same problems with many rounds of 192 x 128 tiles (``usesThreeConsumerKernel``) |
/// | `bw8_gemm_wgmma_pp_b128` | sm_90, weight blocks 128 x 128, K % 16 == 0 (the pipelined one) |
/// | `bw8_gemm_wgmma_pp_b128_mixed` | the same, with 128 x 64 tiles after 128 x 128 ones (``wgmmaWideColumnTiles``) |
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
    /// Its own program so that a change to it costs NVRTC seconds, not the minutes of `bw8_hopper.cu`.
    static let hopperC3 = KernelSource(file: "bw8_hopper_c3", needsArchSpecific: true, contractsMultiplyAdd: true)

    enum Plan: Equatable {
        /// A TMA + wgmma kernel with 128 x 128 output tiles.
        case wgmma(entry: String)
        /// `bw8_gemm_wgmma_pp_b128_mixed`: `wideTiles` column tiles of 128 x 128, then 128 x 64 tiles.
        case wgmmaMixed(wideTiles: Int)
        /// `bw8_gemm_wgmma_c3_b128` (three consumer warpgroups, 192 x 128 tiles), or with `cluster`
        /// `bw8_gemm_wgmma_c3mc_b128` (CTA pairs sharing each A stage by TMA multicast).
        case wgmmaC3(cluster: Bool)
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
                if usesThreeConsumerKernel(m: m, n: n, multiprocessors: device.multiprocessorCount),
                   device.maxSharedMemoryPerBlock >= BlockwiseINT8GEMMKernels.c3DynamicSharedBytes {
                    return .success(.wgmmaC3(cluster: threeConsumerKernelUsesClusters))
                }
                let wide = wgmmaWideColumnTiles(m: m, n: n, multiprocessors: device.multiprocessorCount)
                return .success(wide == (n + 127) / 128 ? .wgmma(entry: "bw8_gemm_wgmma_pp_b128")
                                                        : .wgmmaMixed(wideTiles: wide))
            }
            if b % 128 == 0 { return .success(.wgmma(entry: "bw8_gemm_wgmma_b128")) }
            if b == 64 { return .success(.wgmma(entry: "bw8_gemm_wgmma_b64")) }
            if b == 32 { return .success(.wgmma(entry: "bw8_gemm_wgmma_b32")) }
        }
        if b % 32 == 0 && device.maxSharedMemoryPerBlock >= BlockwiseINT8GEMMKernels.mmaDynamicSharedBytes {
            return .success(.mma)
        }
        return .failure(Unsupported(reason: "M = \(m) with \(blockRows)x\(b) weight blocks: the decode kernel "
            + "needs M <= 16 and B a power of two in 16...512, the MMA kernel B % 32 == 0 and "
            + "\(BlockwiseINT8GEMMKernels.mmaDynamicSharedBytes) bytes of shared memory per block"))
    }

    /// Whether the B = 128 GEMM runs `bw8_gemm_wgmma_c3_b128` (192 x 128 tiles, three consumer
    /// warpgroups; the same bits as the 128 x 128 kernel) rather than `bw8_gemm_wgmma_pp_b128` or its
    /// mixed tiles: where its tiles make at least 4 rounds on the SMs and the rows past M in its last row
    /// tile are at most 1/16 of M, so that neither the part-empty last round nor those rows (up to 191)
    /// cost much. Measured on the
    /// H200 (NOTES.md, "Issue 10, round 5"): faster than pp at M = 54560, the same at 4096 x 5120, slower
    /// at M = 1024 (144 or 240 tiles of 192 rows make 1.1 or 1.8 rounds).
    static func usesThreeConsumerKernel(m: Int, n: Int, multiprocessors: Int) -> Bool {
        let tileM = BlockwiseINT8GEMMKernels.c3TileM
        let rowTiles = (m + tileM - 1) / tileM
        return rowTiles * ((n + 127) / 128) >= 4 * multiprocessors && 16 * (rowTiles * tileM - m) <= m
    }

    /// Whether ``Plan/wgmmaC3(cluster:)`` takes the 2-CTA cluster form (NOTES.md, "Issue 10, round 5").
    static let threeConsumerKernelUsesClusters = false

    /// How many 128-column tiles the B = 128 wgmma GEMM does as 128 x 128 tiles before it does the
    /// remaining columns as 128 x 64 tiles: `ceil(N / 128)` (all wide, `bw8_gemm_wgmma_pp_b128`) unless a
    /// mix finishes sooner. The grid is persistent (G = min(SMs, tiles) CTAs, tile t on CTA t mod G, wide
    /// tiles first), so with `Tw` wide tiles of T in all, CTA b takes
    ///
    ///     cost(b) = count(Tw, b) + c * (count(T, b) - count(Tw, b)),   c = narrowTileCost,
    ///     count(X, b) = ceil((X - b) / G) for b < X, else 0,
    ///
    /// tile times of a 128 x 128 tile. Both counts fall with b, so CTA 0 finishes last:
    /// `time = (1 - c) ceil(Tw / G) + c ceil(T / G)`. Tried: all wide, and for each k the most wide
    /// column tiles that fit in k whole rounds; only where the wide tiles take fewer than 4 rounds (with
    /// more, the last round is a small share). At M = 1024 on 132 SMs: N = 3072 gives 16 wide column
    /// tiles (1.62 tile times against 2 for all wide), N = 5120 gives 33 (2.62 against 3).
    static func wgmmaWideColumnTiles(m: Int, n: Int, multiprocessors: Int) -> Int {
        let rowTiles = (m + BlockwiseINT8GEMMKernels.tileM - 1) / BlockwiseINT8GEMMKernels.tileM
        let allWide = (n + 127) / 128
        guard rowTiles * allWide < 4 * multiprocessors else { return allWide }
        func time(wide: Int) -> Double {
            let rest = n - 128 * wide
            let wideTiles = rowTiles * wide
            let tiles = wideTiles + rowTiles * (rest > 0 ? (rest + 63) / 64 : 0)
            let grid = min(multiprocessors, tiles)
            let rounds = { (count: Int) in Double((count + grid - 1) / grid) }
            return (1 - narrowTileCost) * rounds(wideTiles) + narrowTileCost * rounds(tiles)
        }
        var best = (wide: allWide, time: time(wide: allWide))
        for rounds in 0..<((rowTiles * allWide + multiprocessors - 1) / multiprocessors) {
            let wide = min(allWide - 1, rounds * multiprocessors / rowTiles)
            let candidate = time(wide: wide)
            if candidate < best.time { best = (wide, candidate) }
        }
        return best.wide
    }

    /// A 128 x 64 tile's time over a 128 x 128 tile's: 0.62 measured at M = 1024 (both tile widths
    /// alone, N = 3072 and 5120 on the H200), 0.57 at M = 54560 (NOTES.md, "Issue 10, round 4"); above
    /// 0.5 because every narrow tile still streams its whole 128 x K slice of A and pays the same
    /// per-tile start and epilogue.
    static let narrowTileCost = 0.62

    /// `y (M, N) = W8A8(qx, sx, qw, sw) + bias` with the planned kernel.
    static func launch(_ plan: Plan, x: GPU, sx: GPU, w: GPU, sw: GPU, bias: Tensor?, y: GPU, m: Int, n: Int, k: Int,
                       blockRows: Int, blockColumns: Int, output: DType) throws {
        let device = x.device
        let biasCode: Int32 = bias.map { Int32($0.dtype.kernelCode) } ?? -1
        let tail: [KernelArgument] = [sx.argument, sw.argument,
                                      try bias.map { try GPU($0).argument } ?? .null, y.argument,
                                      .int32(Int32(m)), .int32(Int32(n)), .int32(Int32(k))]
        let common: [KernelArgument] = [.int32(Int32(blockColumns)), .int32(biasCode), .int32(Int32(output.kernelCode))]
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
        case .wgmma(let entry):
            try launchWGMMA(entry: entry, wideTiles: nil, x: x, w: w, arguments: tail + common, m: m, n: n, k: k)
        case .wgmmaMixed(let wide):
            try launchWGMMA(entry: "bw8_gemm_wgmma_pp_b128_mixed", wideTiles: wide, x: x, w: w,
                            arguments: tail + common, m: m, n: n, k: k)
        case .wgmmaC3(let cluster):
            try launchC3(cluster: cluster, x: x, w: w, arguments: tail + common, m: m, n: n, k: k)
        }
    }

    /// `bw8_gemm_wgmma_c3_b128`: A's tensor map with 192-row boxes, W's with 128-row boxes; one CTA per SM.
    /// The cluster form: 96-row boxes of A (each CTA of a pair loads half of the shared A stage) and an
    /// even grid of CTA pairs, each pair taking two column tiles of one row tile at a time.
    private static func launchC3(cluster: Bool, x: GPU, w: GPU, arguments: [KernelArgument], m: Int, n: Int,
                                 k: Int) throws {
        let device = x.device
        let function = try device.function(hopperC3, entry: cluster ? "bw8_gemm_wgmma_c3mc_b128"
                                                                    : "bw8_gemm_wgmma_c3_b128")
        let shared = BlockwiseINT8GEMMKernels.c3DynamicSharedBytes
        try device.setDynamicSharedMemory(function, bytes: shared)
        let tileM = BlockwiseINT8GEMMKernels.c3TileM
        let mapA = try device.tensorMap2D(int8: x.address, rows: m, columns: k, boxRows: cluster ? tileM / 2 : tileM,
                                          boxColumns: 128)
        let mapB = try device.tensorMap2D(int8: w.address, rows: n, columns: k, boxRows: 128, boxColumns: 128)
        let rowTiles = (m + tileM - 1) / tileM, columnTiles = (n + 127) / 128
        let sms = device.multiprocessorCount
        let grid = cluster ? 2 * min(rowTiles * ((columnTiles + 1) / 2), sms / 2) : min(rowTiles * columnTiles, sms)
        try device.launch(function, grid: (grid, 1, 1), block: (BlockwiseINT8GEMMKernels.c3Threads, 1, 1),
                          sharedMemory: shared, [.bytes(mapA), .bytes(mapB)] + arguments)
    }

    /// A wgmma kernel: W's tensor map with 128-row boxes, and for the mixed kernel (`wideTiles` given) a
    /// second one with 64-row boxes and the wide column-tile count after the other arguments.
    private static func launchWGMMA(entry: String, wideTiles: Int?, x: GPU, w: GPU, arguments: [KernelArgument],
                                    m: Int, n: Int, k: Int) throws {
        let device = x.device
        let function = try device.function(hopper, entry: entry)
        let shared = BlockwiseINT8GEMMKernels.wgmmaDynamicSharedBytes
        try device.setDynamicSharedMemory(function, bytes: shared)
        let tile = BlockwiseINT8GEMMKernels.tileM
        let mapA = try device.tensorMap2D(int8: x.address, rows: m, columns: k, boxRows: tile, boxColumns: 128)
        let mapB = try device.tensorMap2D(int8: w.address, rows: n, columns: k, boxRows: 128, boxColumns: 128)
        let wide = wideTiles ?? (n + 127) / 128
        let rest = n - 128 * wide
        let tiles = ((m + tile - 1) / tile) * (wide + (rest > 0 ? (rest + 63) / 64 : 0))
        var maps: [KernelArgument] = [.bytes(mapA), .bytes(mapB)]
        var extra: [KernelArgument] = []
        if let wideTiles {
            maps.append(.bytes(try device.tensorMap2D(int8: w.address, rows: n, columns: k, boxRows: 64,
                                                      boxColumns: 128)))
            extra.append(.int32(Int32(wideTiles)))
        }
        try device.launch(function, grid: (min(tiles, device.multiprocessorCount), 1, 1),
                          block: (BlockwiseINT8GEMMKernels.wgmmaThreads, 1, 1), sharedMemory: shared,
                          maps + arguments + extra)
    }
}
