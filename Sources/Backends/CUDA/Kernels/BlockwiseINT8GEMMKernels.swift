/// Launch constants of the block-wise INT8 tensor-core kernels (CUDA C in `KernelSources/`:
/// `bw8_common.cuh` with the launch contract and the activation quantizers, `bw8_portable.cu` for
/// sm_80+, `bw8_hopper.cu` for sm_90a). The harness `scripts/gpu/gemm_harness.py` compiles the same
/// files with NVRTC, checks and times them.
enum BlockwiseINT8GEMMKernels {
    static let wgmmaDynamicSharedBytes = 197_728
    static let mmaDynamicSharedBytes = 131_072
    static let wgmmaThreads = 384
    static let tileM = 128
}
