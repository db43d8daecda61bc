/// Launch constants of the block-wise INT8 tensor-core kernels (CUDA C in `KernelSources/`:
/// `bw8_common.cuh` with the launch contract and the activation quantizers, `bw8_portable.cu` for
/// sm_80+, `bw8_hopper.cu` and `bw8_hopper_c3.cu` for sm_90a). The harness
/// `scripts/gpu/gemm_harness.py` compiles the same files with NVRTC, checks and times them.
enum BlockwiseINT8GEMMKernels {
    static let wgmmaDynamicSharedBytes = 197_728
    static let mmaDynamicSharedBytes = 131_072
    static let wgmmaThreads = 384
    static let tileM = 128
    /// `bw8_hopper_c3.cu`: 1024 alignment bytes, 5 stages of a 192 x 128 A tile and a 128 x 128 B tile,
    /// 10 mbarriers.
    static let c3DynamicSharedBytes = 1024 + 5 * (192 * 128 + 128 * 128) + 10 * 8
    static let c3Threads = 512
    static let c3TileM = 192
}
