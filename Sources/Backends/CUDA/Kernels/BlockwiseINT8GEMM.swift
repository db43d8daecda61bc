// Block-wise INT8 W8A8 linear kernels for the CUDA backend (CUDA C source, compiled at run time by NVRTC).
//
// This file holds CUDA C source only; the Swift launch wrapper lives in the CUDA backend.
// The harness `scripts/gpu/gemm_harness.py` extracts the source between the `//@@BEGIN name` /
// `//@@END name` markers, compiles it with NVRTC exactly as the backend does, checks and times it.

/// Block-wise INT8 W8A8 linear kernels (tensor cores) and the activation quantizer.
///
/// # Math
/// `y[m,n] = sum_j float(sum_{k in block j} qx[m,k]*qw[n,k]) * sx[m,j] * sw[n/Bn, j] + bias[n]`,
/// inner sums exact in int32, outer sum in float32, written straight to the output dtype.
/// Activation quantization per row m and K block j: `scale = amax/127` (IEEE division, 0 for an all-zero
/// block), `q = clamp(round(x/scale), -127, 127)` with `__fdiv_rn`, round to nearest even (mode 0) or
/// toward zero (mode 1). Bit-exact with that formula.
///
/// # Common conventions
/// - All matrices are dense row-major with no padding: `qx` (M, K) int8, `sx` (M, KB) float32,
///   `qw` (N, K) int8, `sw` (ceil(N/Bn), KB) float32, `y` (M, N), with `KB = ceil(K/B)`.
/// - dtype codes (Int32 parameters): 0 = float32, 1 = float16, 2 = bfloat16. `bias_dtype = -1` means no
///   bias (pass a null pointer); otherwise bias is (N) of that dtype (0 or 2 in practice).
/// - Every pointer parameter is a device pointer (CUdeviceptr, 8 bytes); ints are 32-bit signed.
/// - Base pointers 16-byte aligned (cuMemAlloc gives 256).
/// - Two programs: `portableProgram` (compile with `--gpu-architecture=sm_80` or the device's
///   `sm_XY`, any CC >= 8.0) and `hopperProgram` (compile with `--gpu-architecture=sm_90a`; needs an
///   sm_90 device; `compute_90a` PTX also works). Options used by the harness: `-std=c++17`.
///   Both contain the quantizer kernels too. No headers are included: the source is self-contained.
/// - Compile cost: NVRTC + ptxas take about 2 s for `portableProgram` and 60-120 s for `hopperProgram` on
///   the 2-core development machine (unrolled 64-register wgmma code); cache the cubin per process (and
///   ideally on disk, keyed by source hash + architecture + NVRTC version).
/// - The quantizers do not detect NaN or infinity in x (the op layer must check, per SPEC section 2);
///   a NaN input gives an unspecified code.
///
/// # Kernels
///
/// ## `bw8_quantize_rows_vec16` (portable + hopper programs)
/// `(const void* x, int8* q, float* s, int M, int K, int B, int in_dtype, int round_mode)`
/// - x (M, K) of in_dtype (0/1/2); q (M, K) int8; s (M, KB) float32; round_mode 0 = nearest even,
///   1 = toward zero.
/// - Requires B in {32, 64, 128, 256} and K % 16 == 0 (partial last block fine). 16 elements per thread.
/// - block (256, 1, 1); grid-stride loop, so any grid is correct; use
///   grid (min(ceil(M * KB * (B/16) / 256), 16 * multiProcessorCount), 1, 1); no dynamic shared memory.
///
/// ## `bw8_quantize_rows_generic` (portable + hopper programs)
/// Same parameters; any B > 0, any K. block (256,1,1); grid (ceil(M * KB / 8), 1, 1); no shared memory.
///
/// ## `bw8_gemm_mma` (portable program; sm_80+; mma.sync m16n8k32 s8)
/// `(const int8* qx, const float* sx, const int8* qw, const float* sw, const void* bias, void* y,
///   int M, int N, int K, int B, int Bn, int bias_dtype, int out_dtype)`
/// - Requires K % 16 == 0, B % 32 == 0, Bn >= 1 (any). out_dtype 0/1/2.
/// - block (256, 1, 1); grid (ceil(N/128), ceil(M/128), 1);
///   dynamic shared memory 131072 bytes: raise `CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES` to 131072.
///
/// ## `bw8_gemv` (portable program; for M <= 16, decode)
/// Same parameter list as `bw8_gemm_mma`.
/// - Requires 1 <= M <= 16, K % 16 == 0, B % 16 == 0. One warp per output column.
/// - block (256, 1, 1); grid (ceil(N/8), 1, 1); no dynamic shared memory.
/// - Within a K block the int32 dot is split into 16-element partial sums (each exact) that are
///   converted and scaled separately: same value up to float32 rounding.
///
/// ## `bw8_gemm_wgmma_b128`, `bw8_gemm_wgmma_b64`, `bw8_gemm_wgmma_b32` (hopper program; sm_90a)
/// `(CUtensorMap tmA /*__grid_constant__, 128 bytes by value*/, CUtensorMap tmB /*same*/,
///   const float* sx, const float* sw, const void* bias, void* y,
///   int M, int N, int K, int B, int bias_dtype, int out_dtype)`
/// - `_b128`: B any multiple of 128 (128, 256, ...); `_b64`: B == 64; `_b32`: B == 32. Requires
///   Bn == B (weight blocks B x B), K % 16 == 0 (TMA stride rule). Partial M, N, K tiles are zero-filled by TMA.
/// - Tensor maps (cuTensorMapEncodeTiled), passed by value as the first two kernel parameters
///   (kernelParams entries point at the 128-byte host structs):
///   tmA over qx: dataType UINT8 (0), rank 2, globalDim {K, M}, globalStrides {K} (bytes),
///   boxDim {128, 128}, elementStrides {1, 1}, interleave NONE (0), swizzle 128B (3),
///   l2Promotion 256B (3), oobFill NONE (0, zeros). tmB over qw: the same with globalDim {K, N}.
/// - block (384, 1, 1) (warpgroup 0 = TMA producer, warpgroups 1-2 = wgmma consumers);
///   grid (min(ceil(M/128) * ceil(N/128), multiProcessorCount), 1, 1) (persistent);
///   dynamic shared memory 197728 bytes: raise `CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES` to 197728.
///
/// ## `bw8_gemm_wgmma_pp_b128` (hopper program; sm_90a) -- the fast one, B == 128 only
/// Same parameter list, tensor maps, block (384,1,1), grid (min(tiles, multiProcessorCount)) and dynamic
/// shared memory (197728 bytes, raise the attribute) as `bw8_gemm_wgmma_b128`; requires B == Bn == 128,
/// K % 16 == 0. Consumers keep two int32 accumulator sets and issue the wgmmas of K stage k+1 before
/// promoting stage k (wgmma.wait_group 1), 4 stages per unrolled step; the K loop is padded to a multiple
/// of 4 stages (TMA zero-fills, scales read as 0), so K = 128 * (4i + 1) wastes up to 3 stages.
///
/// # Dispatch suggested for the backend
/// M <= 16 -> `bw8_gemv`; else sm_90 with B == Bn == 128 -> `bw8_gemm_wgmma_pp_b128`; sm_90 with
/// Bn == B and B in {32, 64, k*128} -> `bw8_gemm_wgmma_b32/_b64/_b128`; else `bw8_gemm_mma`.
/// Float input: `bw8_quantize_rows_vec16` (or `_generic`) first, on the same stream.
///
/// # Measured (H100 80GB HBM3, M = 54560, WAN N x K, B = 128, bf16 in/out; NOTES-gemm.md has the table)
/// `bw8_gemm_wgmma_pp_b128` 815-930 TOP/s; with `bw8_quantize_rows_vec16` 0.93-1.29x torch bf16 linear
/// (5 of 6 shapes >= 1.0x) in the same run. `bw8_gemm_mma` about 210 TOP/s. `bw8_gemv` at M = 2: 1.8-2.2 TB/s of weight.
enum BlockwiseINT8GEMMKernels {
    /// Helpers and the activation quantizers (prefix of both programs).
    static let commonSource = #"""
//@@BEGIN common
// ---------------------------------------------------------------- common helpers
typedef unsigned int bq_u32;
typedef unsigned long long bq_u64;
typedef unsigned short bq_u16;

// dtype codes used by every kernel: 0 = float32, 1 = float16, 2 = bfloat16; bias_dtype -1 = no bias
#define BQ_F32 0
#define BQ_F16 1
#define BQ_BF16 2

__device__ __forceinline__ float bq_h2f(bq_u16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ float bq_bf2f(bq_u16 h) { return __uint_as_float(((bq_u32)h) << 16); }
__device__ __forceinline__ bq_u16 bq_f2bf(float f) { bq_u16 r; asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r) : "f"(f)); return r; }
__device__ __forceinline__ bq_u16 bq_f2h(float f) { bq_u16 r; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r) : "f"(f)); return r; }

__device__ __forceinline__ float bq_load_elem(const void* p, long long i, int dt) {
  if (dt == BQ_F32) return ((const float*)p)[i];
  bq_u16 h = ((const bq_u16*)p)[i];
  return dt == BQ_BF16 ? bq_bf2f(h) : bq_h2f(h);
}

__device__ __forceinline__ float bq_bias(const void* bias, int n, int N, int bias_dtype) {
  if (bias_dtype < 0 || n >= N) return 0.0f;
  return bq_load_elem(bias, n, bias_dtype);
}

// Store y[row, col] and y[row, col+1] (the second only when col+1 < N). row < M is checked by the caller.
__device__ __forceinline__ void bq_store_pair(void* y, int row, int col, int N, float a, float b, int dt) {
  if (col >= N) return;
  long long idx = (long long)row * N + col;
  bool two = (col + 1 < N);
  bool vec = two && ((N & 1) == 0);  // col is even, so the pair is aligned when N is even
  if (dt == BQ_F32) {
    float* o = (float*)y;
    if (vec) { *(float2*)(o + idx) = make_float2(a, b); }
    else { o[idx] = a; if (two) o[idx + 1] = b; }
  } else {
    bq_u16 ha = dt == BQ_BF16 ? bq_f2bf(a) : bq_f2h(a);
    bq_u16 hb = dt == BQ_BF16 ? bq_f2bf(b) : bq_f2h(b);
    bq_u16* o = (bq_u16*)y;
    if (vec) { *(bq_u32*)(o + idx) = (bq_u32)ha | ((bq_u32)hb << 16); }
    else { o[idx] = ha; if (two) o[idx + 1] = hb; }
  }
}

// Exact int32 -> float32 for |v| < 2^22 with one integer and one float add (I2F runs at quarter rate).
__device__ __forceinline__ float bq_i2f_small(int v) { return __int_as_float(v + 0x4B400000) - 12582912.0f; }

__device__ __forceinline__ bq_u32 bq_smem_addr(const void* p) {
  bq_u32 r;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(r) : "l"(p));
  return r;
}

// ---------------------------------------------------------------- activation quantization
__device__ __forceinline__ int bq_quant1(float v, float scale, int round_mode) {
  if (scale == 0.0f) return 0;
  float t = __fdiv_rn(v, scale);
  t = round_mode == 1 ? truncf(t) : rintf(t);
  t = fminf(fmaxf(t, -127.0f), 127.0f);
  return (int)t;
}

// Exact x / s with a correctly rounded reciprocal r = 1/s and one FMA correction (Markstein): the result is
// the correctly rounded quotient, i.e. __fdiv_rn(x, s), when 1/s is finite and normal (checked by the caller).
__device__ __forceinline__ float bq_div_by(float x, float s, float r) {
  float y = __fmul_rn(x, r);
  float rem = fmaf(-s, y, x);
  return fmaf(rem, r, y);
}
// round (mode 0: nearest even, 1: toward zero) and clamp to [-127, 127]; |t| < 2^22 (here |t| <= 127.5)
__device__ __forceinline__ int bq_round_clamp(float t, int round_mode) {
  int n;
  if (round_mode == 1) {
    n = __float_as_int(__fadd_rz(fabsf(t), 12582912.0f)) - 0x4B400000;
    n = t < 0.0f ? -n : n;
  } else {
    n = __float_as_int(__fadd_rn(t, 12582912.0f)) - 0x4B400000;
  }
  return max(-127, min(127, n));
}

// One thread per 8 consecutive elements of one 1 x B block; B/8 threads (a power of two <= 32) share a block.
// Grid-stride loop, two units per thread per iteration (two 16-byte loads in flight): any grid size works.
__device__ __forceinline__ void bq_unpack8(const uint4& a, const uint4& b, int in_dtype, float* v) {
  if (in_dtype == BQ_F32) {
    v[0] = __uint_as_float(a.x); v[1] = __uint_as_float(a.y); v[2] = __uint_as_float(a.z); v[3] = __uint_as_float(a.w);
    v[4] = __uint_as_float(b.x); v[5] = __uint_as_float(b.y); v[6] = __uint_as_float(b.z); v[7] = __uint_as_float(b.w);
  } else {
    const bq_u32 w[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const bq_u16 lo = (bq_u16)(w[i] & 0xffff), hi = (bq_u16)(w[i] >> 16);
      if (in_dtype == BQ_BF16) { v[2 * i] = bq_bf2f(lo); v[2 * i + 1] = bq_bf2f(hi); }
      else { v[2 * i] = bq_h2f(lo); v[2 * i + 1] = bq_h2f(hi); }
    }
  }
}

// One thread per 16 consecutive elements of one 1 x B block; B/16 threads (a power of two <= 16) share a
// block, so the per-block work (amax reduction, scale, reciprocal) is amortized over 16 elements.
// Grid-stride loop: any grid size is correct.
extern "C" __global__ void __launch_bounds__(256) bw8_quantize_rows_vec16(
    const void* __restrict__ x, signed char* __restrict__ q, float* __restrict__ s,
    int M, int K, int B, int in_dtype, int round_mode) {
  const int G = B >> 4;
  const int lg = __ffs(G) - 1;
  const int KB = (K + B - 1) / B;
  const long long per_row = (long long)KB * G;
  const long long total = (long long)M * per_row;
  const long long stride = (long long)gridDim.x * blockDim.x;
  const int lane = threadIdx.x & 31;
  for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t - lane < total; t += stride) {
    long long row = 0; int j = 0, c = 0;
    const bool active = t < total;
    if (active) {
      int rem;
      if (total < 0x7fffffffLL) {
        const unsigned tt = (unsigned)t, pr = (unsigned)per_row;
        const unsigned r32 = tt / pr;
        row = r32; rem = (int)(tt - r32 * pr);
      } else {
        row = t / per_row; rem = (int)(t - row * per_row);
      }
      j = rem >> lg; c = rem & (G - 1);
    }
    const int k0 = j * B + c * 16;
    const bool inb = active && k0 < K;
    uint4 r0 = make_uint4(0, 0, 0, 0), r1 = r0, r2 = r0, r3 = r0;
    if (inb) {
      const long long e = row * (long long)K + k0;
      if (in_dtype == BQ_F32) {
        const uint4* p = (const uint4*)((const float*)x + e);
        r0 = __ldg(p); r1 = __ldg(p + 1); r2 = __ldg(p + 2); r3 = __ldg(p + 3);
      } else {
        const uint4* p = (const uint4*)((const bq_u16*)x + e);
        r0 = __ldg(p); r2 = __ldg(p + 1);
      }
    }
    float v[16];
    bq_unpack8(r0, r1, in_dtype, v);
    bq_unpack8(r2, r3, in_dtype, v + 8);
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < 16; i++) amax = fmaxf(amax, fabsf(v[i]));
    for (int off = G >> 1; off > 0; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    const float scale = amax > 0.0f ? __fdiv_rn(amax, 127.0f) : 0.0f;
    if (inb) {
      int n[16];
      if (scale >= 1.0e-30f) {
        const float r = __frcp_rn(scale);
#pragma unroll
        for (int i = 0; i < 16; i++) n[i] = bq_round_clamp(bq_div_by(v[i], scale, r), round_mode);
      } else {
#pragma unroll
        for (int i = 0; i < 16; i++) n[i] = bq_quant1(v[i], scale, round_mode);
      }
      uint4 o;
      o.x = __byte_perm(__byte_perm(n[0], n[1], 0x0040), __byte_perm(n[2], n[3], 0x0040), 0x5410);
      o.y = __byte_perm(__byte_perm(n[4], n[5], 0x0040), __byte_perm(n[6], n[7], 0x0040), 0x5410);
      o.z = __byte_perm(__byte_perm(n[8], n[9], 0x0040), __byte_perm(n[10], n[11], 0x0040), 0x5410);
      o.w = __byte_perm(__byte_perm(n[12], n[13], 0x0040), __byte_perm(n[14], n[15], 0x0040), 0x5410);
      *(uint4*)(q + row * (long long)K + k0) = o;
    }
    if (active && c == 0) s[row * KB + j] = scale;
  }
}

// Any B > 0, any K: one warp per (row, block).
extern "C" __global__ void __launch_bounds__(256) bw8_quantize_rows_generic(
    const void* __restrict__ x, signed char* __restrict__ q, float* __restrict__ s,
    int M, int K, int B, int in_dtype, int round_mode) {
  const int KB = (K + B - 1) / B;
  const long long w = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (w >= (long long)M * KB) return;
  const long long row = w / KB;
  const int j = (int)(w - row * KB);
  const int kb = j * B, ke = min(K, kb + B);
  const long long base = row * (long long)K;
  float amax = 0.0f;
  for (int k = kb + lane; k < ke; k += 32) amax = fmaxf(amax, fabsf(bq_load_elem(x, base + k, in_dtype)));
  for (int off = 16; off > 0; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
  const float scale = amax > 0.0f ? __fdiv_rn(amax, 127.0f) : 0.0f;
  for (int k = kb + lane; k < ke; k += 32)
    q[base + k] = (signed char)bq_quant1(bq_load_elem(x, base + k, in_dtype), scale, round_mode);
  if (lane == 0) s[row * KB + j] = scale;
}
//@@END common
"""#

    /// mma.sync GEMM and the GEMV kernel (sm_80+).
    static let portableSource = #"""
//@@BEGIN portable
// ---------------------------------------------------------------- mma.sync m16n8k32 GEMM (sm_80+)
#define MMA_BM 128
#define MMA_BN 128
#define MMA_BK 128
#define MMA_STAGES 4

__device__ __forceinline__ void bq_cp_async16(bq_u32 dst, const void* src, bool valid) {
  int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(dst), "l"(src), "r"(n) : "memory");
}
__device__ __forceinline__ void bq_cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void bq_cp_wait() { asm volatile("cp.async.wait_group %0;\n" :: "n"(N) : "memory"); }

__device__ __forceinline__ void bq_ldsm4(bq_u32 addr, bq_u32& r0, bq_u32& r1, bq_u32& r2, bq_u32& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}

__device__ __forceinline__ void bq_mma_s8(int* c, const bq_u32* a, bq_u32 b0, bq_u32 b1) {
  asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
               : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Tile 128 x 128 x 128 per stage, 8 warps (2 along M x 4 along N, warp tile 64 x 32), MMA_STAGES-deep cp.async ring.
// Shared memory rows are 128 bytes; the 16-byte chunk c of row r lives at chunk c ^ (r & 7).
extern "C" __global__ void __launch_bounds__(256) bw8_gemm_mma(
    const signed char* __restrict__ qx, const float* __restrict__ sx,
    const signed char* __restrict__ qw, const float* __restrict__ sw,
    const void* __restrict__ bias, void* __restrict__ y,
    int M, int N, int K, int B, int Bn, int bias_dtype, int out_dtype) {
  extern __shared__ __align__(128) unsigned char bq_smem[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp >> 2, wn = warp & 3;
  const int m0 = blockIdx.y * MMA_BM, n0 = blockIdx.x * MMA_BN;
  const int KB = (K + B - 1) / B;
  const int nk = (K + MMA_BK - 1) / MMA_BK;
  const bq_u32 sbase = bq_smem_addr(bq_smem);
  const bq_u32 stage_bytes = 2 * MMA_BM * MMA_BK;

  float accf[4][4][4];
  int acci[4][4][4];
#pragma unroll
  for (int a = 0; a < 4; a++)
#pragma unroll
    for (int b = 0; b < 4; b++)
#pragma unroll
      for (int c = 0; c < 4; c++) { accf[a][b][c] = 0.0f; acci[a][b][c] = 0; }

  auto load_stage = [&](int kb, int st) {
    const bq_u32 sA = sbase + st * stage_bytes, sB = sA + MMA_BM * MMA_BK;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      int idx = tid + i * 256;
      int r = idx >> 3, ch = idx & 7;
      int gk = kb * MMA_BK + ch * 16;
      bq_u32 off = r * 128 + ((ch ^ (r & 7)) << 4);
      int gm = m0 + r;
      bool va = (gm < M) && (gk < K);
      bq_cp_async16(sA + off, va ? (const void*)(qx + (long long)gm * K + gk) : (const void*)qx, va);
      int gn = n0 + r;
      bool vb = (gn < N) && (gk < K);
      bq_cp_async16(sB + off, vb ? (const void*)(qw + (long long)gn * K + gk) : (const void*)qw, vb);
    }
  };

#pragma unroll
  for (int s = 0; s < MMA_STAGES - 1; s++) { if (s < nk) load_stage(s, s); bq_cp_commit(); }

  const int g = lane >> 2, t4 = lane & 3;
  for (int kb = 0; kb < nk; kb++) {
    bq_cp_wait<MMA_STAGES - 2>();
    __syncthreads();
    { int nx = kb + MMA_STAGES - 1; if (nx < nk) load_stage(nx, nx % MMA_STAGES); bq_cp_commit(); }
    const int st = kb % MMA_STAGES;
    const bq_u32 sA = sbase + st * stage_bytes, sB = sA + MMA_BM * MMA_BK;
#pragma unroll
    for (int ks = 0; ks < 4; ks++) {
      bq_u32 af[4][4], bfr[2][4];
#pragma unroll
      for (int mi = 0; mi < 4; mi++) {
        int r = wm * 64 + mi * 16 + (lane & 15);
        int ch = ks * 2 + (lane >> 4);
        bq_ldsm4(sA + r * 128 + ((ch ^ (r & 7)) << 4), af[mi][0], af[mi][1], af[mi][2], af[mi][3]);
      }
#pragma unroll
      for (int nj = 0; nj < 2; nj++) {
        int r = wn * 32 + nj * 16 + (lane & 7) + ((lane >> 4) << 3);
        int ch = ks * 2 + ((lane >> 3) & 1);
        bq_ldsm4(sB + r * 128 + ((ch ^ (r & 7)) << 4), bfr[nj][0], bfr[nj][1], bfr[nj][2], bfr[nj][3]);
      }
#pragma unroll
      for (int mi = 0; mi < 4; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
          bq_mma_s8(acci[mi][ni], af[mi], bfr[ni >> 1][(ni & 1) * 2], bfr[ni >> 1][(ni & 1) * 2 + 1]);
      // promotion at the end of each K block of B (or of K)
      const int kend = kb * MMA_BK + (ks + 1) * 32;
      if ((kend % B) == 0 || kend >= K) {
        const int j = (min(kend, K) - 1) / B;
        float rs[4][2], cs[4][2];
#pragma unroll
        for (int mi = 0; mi < 4; mi++) {
          int r = m0 + wm * 64 + mi * 16 + g;
          rs[mi][0] = r < M ? __ldg(sx + (long long)r * KB + j) : 0.0f;
          rs[mi][1] = r + 8 < M ? __ldg(sx + (long long)(r + 8) * KB + j) : 0.0f;
        }
#pragma unroll
        for (int ni = 0; ni < 4; ni++) {
          int c = n0 + wn * 32 + ni * 8 + t4 * 2;
          cs[ni][0] = c < N ? __ldg(sw + (long long)(c / Bn) * KB + j) : 0.0f;
          cs[ni][1] = c + 1 < N ? __ldg(sw + (long long)((c + 1) / Bn) * KB + j) : 0.0f;
        }
        if (B <= 256) {  // block sums fit in 22 bits: |sum| <= 256 * 127 * 127 < 2^22
#pragma unroll
          for (int mi = 0; mi < 4; mi++)
#pragma unroll
            for (int ni = 0; ni < 4; ni++)
#pragma unroll
              for (int e = 0; e < 4; e++) {
                accf[mi][ni][e] = fmaf(bq_i2f_small(acci[mi][ni][e]), rs[mi][e >> 1] * cs[ni][e & 1], accf[mi][ni][e]);
                acci[mi][ni][e] = 0;
              }
        } else {
#pragma unroll
          for (int mi = 0; mi < 4; mi++)
#pragma unroll
            for (int ni = 0; ni < 4; ni++)
#pragma unroll
              for (int e = 0; e < 4; e++) {
                accf[mi][ni][e] += (float)acci[mi][ni][e] * (rs[mi][e >> 1] * cs[ni][e & 1]);
                acci[mi][ni][e] = 0;
              }
        }
      }
      if (kend >= K) break;
    }
  }
  bq_cp_wait<0>();
  // epilogue
#pragma unroll
  for (int ni = 0; ni < 4; ni++) {
    int c = n0 + wn * 32 + ni * 8 + t4 * 2;
    float b0 = bq_bias(bias, c, N, bias_dtype), b1 = bq_bias(bias, c + 1, N, bias_dtype);
#pragma unroll
    for (int mi = 0; mi < 4; mi++) {
      int r = m0 + wm * 64 + mi * 16 + g;
      if (r < M) bq_store_pair(y, r, c, N, accf[mi][ni][0] + b0, accf[mi][ni][1] + b1, out_dtype);
      if (r + 8 < M) bq_store_pair(y, r + 8, c, N, accf[mi][ni][2] + b0, accf[mi][ni][3] + b1, out_dtype);
    }
  }
}

// ---------------------------------------------------------------- GEMV-style kernel for M <= 16 (decode)
__device__ __forceinline__ int bq_dp4a(int a, int b, int c) {
  int d; asm("dp4a.s32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c)); return d;
}
__device__ __forceinline__ int4 bq_ld_stream(const void* p) {
  int4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.s32 {%0, %1, %2, %3}, [%4];" : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
  return r;
}

#define GEMV_MAXM 16
#define GEMV_UNROLL 4
// One warp per output column n; each lane streams 16 bytes of the weight row per step (512 bytes per warp step).
extern "C" __global__ void __launch_bounds__(256) bw8_gemv(
    const signed char* __restrict__ qx, const float* __restrict__ sx,
    const signed char* __restrict__ qw, const float* __restrict__ sw,
    const void* __restrict__ bias, void* __restrict__ y,
    int M, int N, int K, int B, int Bn, int bias_dtype, int out_dtype) {
  const int lane = threadIdx.x & 31;
  const int n = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (n >= N) return;
  const int KB = (K + B - 1) / B;
  const signed char* wrow = qw + (long long)n * K;
  const float* swrow = sw + (long long)(n / Bn) * KB;
  float acc[GEMV_MAXM];
#pragma unroll
  for (int m = 0; m < GEMV_MAXM; m++) acc[m] = 0.0f;
  for (int k0 = lane * 16; k0 < K; k0 += 512 * GEMV_UNROLL) {
    int4 wv[GEMV_UNROLL];
#pragma unroll
    for (int u = 0; u < GEMV_UNROLL; u++) {
      int k = k0 + u * 512;
      wv[u] = k < K ? bq_ld_stream(wrow + k) : make_int4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < GEMV_UNROLL; u++) {
      int k = k0 + u * 512;
      if (k < K) {
        const int j = k / B;
        const float ws = __ldg(swrow + j);
#pragma unroll
        for (int m = 0; m < GEMV_MAXM; m++) {
          if (m < M) {
            int4 xv = __ldg((const int4*)(qx + (long long)m * K + k));
            int d = bq_dp4a(xv.x, wv[u].x, 0);
            d = bq_dp4a(xv.y, wv[u].y, d);
            d = bq_dp4a(xv.z, wv[u].z, d);
            d = bq_dp4a(xv.w, wv[u].w, d);
            acc[m] += (float)d * (__ldg(sx + (long long)m * KB + j) * ws);
          }
        }
      }
    }
  }
  const float b = bq_bias(bias, n, N, bias_dtype);
#pragma unroll
  for (int m = 0; m < GEMV_MAXM; m++) {
    if (m < M) {
      float v = acc[m];
      for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
      if (lane == 0) {
        v += b;
        long long idx = (long long)m * N + n;
        if (out_dtype == BQ_F32) ((float*)y)[idx] = v;
        else ((bq_u16*)y)[idx] = out_dtype == BQ_BF16 ? bq_f2bf(v) : bq_f2h(v);
      }
    }
  }
}
//@@END portable
"""#

    /// wgmma + TMA GEMM (sm_90a).
    static let hopperSource = #"""
//@@BEGIN hopper
// ---------------------------------------------------------------- Hopper wgmma + TMA GEMM (sm_90a)
#define WG_BM 128
#define WG_BN 128
#define WG_BK 128
#define WG_STAGES 6
#define WG_GROUP_M 16
#define WG_STAGE_A (WG_BM * WG_BK)
#define WG_STAGE_B (WG_BN * WG_BK)

struct __align__(64) BqTmaDesc { bq_u64 opaque[16]; };

__device__ __forceinline__ void bq_mbar_init(bq_u32 a, bq_u32 count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(a), "r"(count) : "memory");
}
__device__ __forceinline__ void bq_mbar_expect_tx(bq_u32 a, bq_u32 bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(a), "r"(bytes) : "memory");
}
__device__ __forceinline__ void bq_mbar_arrive(bq_u32 a) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(a) : "memory");
}
__device__ __forceinline__ void bq_mbar_wait(bq_u32 a, bq_u32 parity) {
  bq_u32 ok;
  do {
    asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                 : "=r"(ok) : "r"(a), "r"(parity) : "memory");
  } while (!ok);
}
__device__ __forceinline__ void bq_tma_load_2d(bq_u32 dst, const BqTmaDesc* map, int c0, int c1, bq_u32 mbar) {
  asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
               :: "r"(dst), "l"((bq_u64)map), "r"(c0), "r"(c1), "r"(mbar) : "memory");
}
__device__ __forceinline__ bq_u64 bq_desc_sw128(bq_u32 saddr) {
  bq_u64 d = (bq_u64)((saddr & 0x3FFFF) >> 4);
  d |= (bq_u64)1 << 16;                 // leading byte offset (unused for swizzled K-major)
  d |= (bq_u64)(1024 >> 4) << 32;       // stride byte offset: 8 rows x 128 bytes
  d |= (bq_u64)1 << 62;                 // 128-byte swizzle
  return d;
}
__device__ __forceinline__ void bq_wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void bq_wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void bq_wgmma_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory"); }
__device__ __forceinline__ void bq_fence_acc(int (&d)[64]) {
#pragma unroll
  for (int i = 0; i < 64; i++) asm volatile("" : "+r"(d[i]) :: "memory");
}
__device__ __forceinline__ void bq_wgmma_m64n128k32(int (&d)[64], bq_u64 da, bq_u64 db, int scale_d) {
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
               "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p;\n}\n"
               : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]), "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]), "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]), "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]), "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]), "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]), "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63])
               : "l"(da), "l"(db), "r"(scale_d));
}

__device__ __forceinline__ void bq_tile_coords(int t, int num_m, int num_n, int& mb, int& nb) {
  const int per_group = WG_GROUP_M * num_n;
  const int gid = t / per_group;
  const int first_m = gid * WG_GROUP_M;
  const int gsz = min(num_m - first_m, WG_GROUP_M);
  const int within = t - gid * per_group;
  mb = first_m + within % gsz;
  nb = within / gsz;
}

// SUB = K blocks per 128-wide stage: 1 (B a multiple of 128), 2 (B = 64), 4 (B = 32).
template <int SUB>
__device__ __forceinline__ void bq_wgmma_gemm_body(
    const BqTmaDesc* tmA, const BqTmaDesc* tmB,
    const float* __restrict__ sx, const float* __restrict__ sw,
    const void* __restrict__ bias, void* __restrict__ y,
    int M, int N, int K, int B, int bias_dtype, int out_dtype) {
  extern __shared__ __align__(1024) unsigned char bq_smem[];
  const bq_u32 raw = bq_smem_addr(bq_smem);
  const bq_u32 base = (raw + 1023) & ~1023u;
  const bq_u32 sA = base;
  const bq_u32 sB = base + WG_STAGES * WG_STAGE_A;
  const bq_u32 bar_full = sB + WG_STAGES * WG_STAGE_B;
  const bq_u32 bar_empty = bar_full + WG_STAGES * 8;

  const int num_m = (M + WG_BM - 1) / WG_BM, num_n = (N + WG_BN - 1) / WG_BN;
  const int num_tiles = num_m * num_n;
  const int nk = (K + WG_BK - 1) / WG_BK;
  const int KB = (K + B - 1) / B;
  const int wg = threadIdx.x >> 7;

  if (threadIdx.x == 0) {
    for (int s = 0; s < WG_STAGES; s++) { bq_mbar_init(bar_full + 8 * s, 1); bq_mbar_init(bar_empty + 8 * s, 8); }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
  }
  __syncthreads();

  if (wg == 0) {
    // ------------------------------ producer warpgroup: one thread issues TMA
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    if (threadIdx.x == 0) {
      int stage = 0; bq_u32 phase = 0;
      for (int t = blockIdx.x; t < num_tiles; t += gridDim.x) {
        int mb, nb; bq_tile_coords(t, num_m, num_n, mb, nb);
        for (int kb = 0; kb < nk; kb++) {
          bq_mbar_wait(bar_empty + 8 * stage, phase ^ 1);
          bq_mbar_expect_tx(bar_full + 8 * stage, WG_STAGE_A + WG_STAGE_B);
          bq_tma_load_2d(sA + stage * WG_STAGE_A, tmA, kb * WG_BK, mb * WG_BM, bar_full + 8 * stage);
          bq_tma_load_2d(sB + stage * WG_STAGE_B, tmB, kb * WG_BK, nb * WG_BN, bar_full + 8 * stage);
          if (++stage == WG_STAGES) { stage = 0; phase ^= 1; }
        }
      }
    }
  } else {
    // ------------------------------ consumer warpgroups 1 and 2: rows 64*(wg-1) .. +63 of the tile
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
    const int cw = wg - 1;
    const int lane = threadIdx.x & 31, warp_in_wg = (threadIdx.x >> 5) & 3;
    const int BSUB = SUB == 1 ? B : (WG_BK / SUB);     // block width seen by the promotion
    const int RST = SUB == 1 ? (B / WG_BK) : 1;          // stages per block (SUB == 1)
    int stage = 0; bq_u32 phase = 0;
    for (int t = blockIdx.x; t < num_tiles; t += gridDim.x) {
      int mb, nb; bq_tile_coords(t, num_m, num_n, mb, nb);
      const int m0 = mb * WG_BM, n0 = nb * WG_BN;
      const int r0 = m0 + cw * 64 + warp_in_wg * 16 + (lane >> 2), r1 = r0 + 8;
      const float* sx0 = sx + (long long)min(r0, M - 1) * KB;
      const float* sx1 = sx + (long long)min(r1, M - 1) * KB;
      const bool v0 = r0 < M, v1 = r1 < M;
      float accf[64];
      int acci[64];
#pragma unroll
      for (int i = 0; i < 64; i++) { accf[i] = 0.0f; acci[i] = 0; }
      for (int kb = 0; kb < nk; kb++) {
        const bq_u64 da = bq_desc_sw128(sA + stage * WG_STAGE_A + cw * (64 * WG_BK));
        const bq_u64 db = bq_desc_sw128(sB + stage * WG_STAGE_B);
        if (SUB == 1) {
          const int j = kb / RST;
          const bool first = (kb % RST) == 0;
          const bool last = ((kb + 1) % RST) == 0 || kb == nk - 1;
          float a0 = 0.0f, a1 = 0.0f, ws = 0.0f;
          if (last) {
            a0 = v0 ? __ldg(sx0 + j) : 0.0f;
            a1 = v1 ? __ldg(sx1 + j) : 0.0f;
            ws = __ldg(sw + (long long)(n0 / B) * KB + j);
          }
          bq_mbar_wait(bar_full + 8 * stage, phase);
          bq_fence_acc(acci);
          bq_wgmma_fence();
#pragma unroll
          for (int ks = 0; ks < 4; ks++)
            bq_wgmma_m64n128k32(acci, da + 2 * ks, db + 2 * ks, (ks > 0 || !first) ? 1 : 0);
          bq_wgmma_commit();
          bq_wgmma_wait0();
          bq_fence_acc(acci);
          if (lane == 0) bq_mbar_arrive(bar_empty + 8 * stage);
          if (last) {
            const float s0 = a0 * ws, s1 = a1 * ws;
#pragma unroll
            for (int i = 0; i < 64; i++) accf[i] = fmaf((float)acci[i], (i & 2) ? s1 : s0, accf[i]);
          }
        } else {
          bq_mbar_wait(bar_full + 8 * stage, phase);
#pragma unroll
          for (int s = 0; s < SUB; s++) {
            const int j = kb * SUB + s;
            const bool jv = j < KB;
            const float a0 = (v0 && jv) ? __ldg(sx0 + j) : 0.0f;
            const float a1 = (v1 && jv) ? __ldg(sx1 + j) : 0.0f;
            float ws[SUB];
#pragma unroll
            for (int c = 0; c < SUB; c++) {
              const int nbk = (n0 + c * BSUB) / BSUB;
              ws[c] = (jv && n0 + c * BSUB < N) ? __ldg(sw + (long long)nbk * KB + j) : 0.0f;
            }
            bq_fence_acc(acci);
            bq_wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < 4 / SUB; kk++) {
              const int ks = s * (4 / SUB) + kk;
              bq_wgmma_m64n128k32(acci, da + 2 * ks, db + 2 * ks, kk > 0 ? 1 : 0);
            }
            bq_wgmma_commit();
            bq_wgmma_wait0();
            bq_fence_acc(acci);
            if (s == SUB - 1 && lane == 0) bq_mbar_arrive(bar_empty + 8 * stage);
#pragma unroll
            for (int i = 0; i < 64; i++) {
              const int cg = (i >> 2) * 8 / BSUB;   // compile-time after unrolling
              accf[i] = fmaf((float)acci[i], ((i & 2) ? a1 : a0) * ws[cg], accf[i]);
            }
          }
        }
        if (++stage == WG_STAGES) { stage = 0; phase ^= 1; }
      }
      // epilogue: straight from registers
      const int cbase = n0 + (lane & 3) * 2;
#pragma unroll
      for (int g8 = 0; g8 < 16; g8++) {
        const int c = cbase + g8 * 8;
        const float b0 = bq_bias(bias, c, N, bias_dtype), b1 = bq_bias(bias, c + 1, N, bias_dtype);
        if (v0) bq_store_pair(y, r0, c, N, accf[4 * g8] + b0, accf[4 * g8 + 1] + b1, out_dtype);
        if (v1) bq_store_pair(y, r1, c, N, accf[4 * g8 + 2] + b0, accf[4 * g8 + 3] + b1, out_dtype);
      }
    }
  }
}

#define BQ_WGMMA_KERNEL(NAME, SUB)                                                                   \
  extern "C" __global__ void __launch_bounds__(384, 1) NAME(                                         \
      const __grid_constant__ BqTmaDesc tmA, const __grid_constant__ BqTmaDesc tmB,                  \
      const float* __restrict__ sx, const float* __restrict__ sw,                                    \
      const void* __restrict__ bias, void* __restrict__ y,                                           \
      int M, int N, int K, int B, int bias_dtype, int out_dtype) {                                   \
    bq_wgmma_gemm_body<SUB>(&tmA, &tmB, sx, sw, bias, y, M, N, K, B, bias_dtype, out_dtype);         \
  }
BQ_WGMMA_KERNEL(bw8_gemm_wgmma_b128, 1)
BQ_WGMMA_KERNEL(bw8_gemm_wgmma_b64, 2)
BQ_WGMMA_KERNEL(bw8_gemm_wgmma_b32, 4)

// ---------------------------------------------------------------- B == 128: software-pipelined consumers
// Two int32 accumulator sets: the wgmmas of stage k+1 are issued before stage k is promoted
// (wgmma.wait_group 1), so the tensor cores stay busy while the float promotion runs.
__device__ __forceinline__ void bq_wgmma_wait1() { asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory"); }

__device__ __forceinline__ void bq_pp_issue(int (&acc)[64], bq_u32 sA, bq_u32 sB, bq_u32 bar_full, int stage, bq_u32 phase, int cw) {
  const bq_u64 da = bq_desc_sw128(sA + stage * WG_STAGE_A + cw * (64 * WG_BK));
  const bq_u64 db = bq_desc_sw128(sB + stage * WG_STAGE_B);
  bq_mbar_wait(bar_full + 8 * stage, phase);
  bq_fence_acc(acc);
  bq_wgmma_fence();
#pragma unroll
  for (int ks = 0; ks < 4; ks++) bq_wgmma_m64n128k32(acc, da + 2 * ks, db + 2 * ks, ks > 0 ? 1 : 0);
  bq_wgmma_commit();
}

__device__ __forceinline__ void bq_pp_promote(int (&acc)[64], float (&accf)[64], float s0, float s1) {
#pragma unroll
  for (int i = 0; i < 64; i++) accf[i] = fmaf((float)acc[i], (i & 2) ? s1 : s0, accf[i]);
}

template <int DT>
__device__ __forceinline__ void bq_store_pair_fast(void* y, long long idx, float a, float b) {
  if (DT == BQ_F32) { *(float2*)((float*)y + idx) = make_float2(a, b); }
  else if (DT == BQ_BF16) { *(bq_u32*)((bq_u16*)y + idx) = (bq_u32)bq_f2bf(a) | ((bq_u32)bq_f2bf(b) << 16); }
  else { *(bq_u32*)((bq_u16*)y + idx) = (bq_u32)bq_f2h(a) | ((bq_u32)bq_f2h(b) << 16); }
}
template <int DT>
__device__ __forceinline__ void bq_epi_fast(void* y, const float (&accf)[64], int r0, int cbase, int N,
                                            const void* bias, int bias_dtype) {
  const long long i0 = (long long)r0 * N + cbase, i1 = i0 + 8LL * N;
#pragma unroll
  for (int g8 = 0; g8 < 16; g8++) {
    float b0 = 0.0f, b1 = 0.0f;
    if (bias_dtype >= 0) { b0 = bq_load_elem(bias, cbase + g8 * 8, bias_dtype); b1 = bq_load_elem(bias, cbase + g8 * 8 + 1, bias_dtype); }
    bq_store_pair_fast<DT>(y, i0 + g8 * 8, accf[4 * g8] + b0, accf[4 * g8 + 1] + b1);
    bq_store_pair_fast<DT>(y, i1 + g8 * 8, accf[4 * g8 + 2] + b0, accf[4 * g8 + 3] + b1);
  }
}

// U = K stages per unrolled step (4 or 8).
template <int U>
__device__ __forceinline__ void bq_wgmma_pp_body(
    const BqTmaDesc* tmA, const BqTmaDesc* tmB,
    const float* __restrict__ sx, const float* __restrict__ sw,
    const void* __restrict__ bias, void* __restrict__ y,
    int M, int N, int K, int bias_dtype, int out_dtype) {
  extern __shared__ __align__(1024) unsigned char bq_smem[];
  const bq_u32 raw = bq_smem_addr(bq_smem);
  const bq_u32 base = (raw + 1023) & ~1023u;
  const bq_u32 sA = base;
  const bq_u32 sB = base + WG_STAGES * WG_STAGE_A;
  const bq_u32 bar_full = sB + WG_STAGES * WG_STAGE_B;
  const bq_u32 bar_empty = bar_full + WG_STAGES * 8;
  const int num_m = (M + WG_BM - 1) / WG_BM, num_n = (N + WG_BN - 1) / WG_BN;
  const int num_tiles = num_m * num_n;
  const int nk = (K + WG_BK - 1) / WG_BK;            // == KB since B == 128
  const int nkp = (nk + U - 1) / U * U;              // padded: TMA zero-fills k >= K, scales are 0 there
  const int wg = threadIdx.x >> 7;

  if (threadIdx.x == 0) {
    for (int s = 0; s < WG_STAGES; s++) { bq_mbar_init(bar_full + 8 * s, 1); bq_mbar_init(bar_empty + 8 * s, 8); }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
  }
  __syncthreads();

  if (wg == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    if (threadIdx.x == 0) {
      int stage = 0; bq_u32 phase = 0;
      for (int t = blockIdx.x; t < num_tiles; t += gridDim.x) {
        int mb, nb; bq_tile_coords(t, num_m, num_n, mb, nb);
        for (int kb = 0; kb < nkp; kb++) {
          bq_mbar_wait(bar_empty + 8 * stage, phase ^ 1);
          bq_mbar_expect_tx(bar_full + 8 * stage, WG_STAGE_A + WG_STAGE_B);
          bq_tma_load_2d(sA + stage * WG_STAGE_A, tmA, kb * WG_BK, mb * WG_BM, bar_full + 8 * stage);
          bq_tma_load_2d(sB + stage * WG_STAGE_B, tmB, kb * WG_BK, nb * WG_BN, bar_full + 8 * stage);
          if (++stage == WG_STAGES) { stage = 0; phase ^= 1; }
        }
      }
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
    const int cw = wg - 1;
    const int lane = threadIdx.x & 31, warp_in_wg = (threadIdx.x >> 5) & 3;
    int stage = 0; bq_u32 phase = 0;
    for (int t = blockIdx.x; t < num_tiles; t += gridDim.x) {
      int mb, nb; bq_tile_coords(t, num_m, num_n, mb, nb);
      const int m0 = mb * WG_BM, n0 = nb * WG_BN;
      const int r0 = m0 + cw * 64 + warp_in_wg * 16 + (lane >> 2), r1 = r0 + 8;
      const bool v0 = r0 < M, v1 = r1 < M;
      const float* sx0 = sx + (long long)min(r0, M - 1) * nk;
      const float* sx1 = sx + (long long)min(r1, M - 1) * nk;
      const float* swr = sw + (long long)nb * nk;
      float accf[64];
      int accA[64], accB[64];
#pragma unroll
      for (int i = 0; i < 64; i++) accf[i] = 0.0f;
      for (int kb = 0; kb < nkp; kb += U) {
        // straight-line: A B A B ... ; the set of stage u is promoted after stage u+1 is issued
        int relA = stage, relB = stage;
        bq_pp_issue(accA, sA, sB, bar_full, stage, phase, cw);
        if (++stage == WG_STAGES) { stage = 0; phase ^= 1; }
#pragma unroll
        for (int u = 0; u < U; u++) {
          const int k = kb + u;
          const bool kv = k < nk;
          const float ws = kv ? __ldg(swr + k) : 0.0f;
          const float s0 = (v0 && kv) ? __ldg(sx0 + k) * ws : 0.0f;
          const float s1 = (v1 && kv) ? __ldg(sx1 + k) * ws : 0.0f;
          if (u + 1 < U) {
            if (u & 1) { relA = stage; bq_pp_issue(accA, sA, sB, bar_full, stage, phase, cw); }
            else { relB = stage; bq_pp_issue(accB, sA, sB, bar_full, stage, phase, cw); }
            if (++stage == WG_STAGES) { stage = 0; phase ^= 1; }
            bq_wgmma_wait1();
          } else {
            bq_wgmma_wait0();
          }
          if (u & 1) {
            bq_fence_acc(accB);
            if (lane == 0) bq_mbar_arrive(bar_empty + 8 * relB);
            bq_pp_promote(accB, accf, s0, s1);
          } else {
            bq_fence_acc(accA);
            if (lane == 0) bq_mbar_arrive(bar_empty + 8 * relA);
            bq_pp_promote(accA, accf, s0, s1);
          }
        }
      }
      const int cbase = n0 + (lane & 3) * 2;
      if (m0 + WG_BM <= M && n0 + WG_BN <= N && (N & 1) == 0) {
        if (out_dtype == BQ_BF16) bq_epi_fast<BQ_BF16>(y, accf, r0, cbase, N, bias, bias_dtype);
        else if (out_dtype == BQ_F32) bq_epi_fast<BQ_F32>(y, accf, r0, cbase, N, bias, bias_dtype);
        else bq_epi_fast<BQ_F16>(y, accf, r0, cbase, N, bias, bias_dtype);
      } else {
#pragma unroll
        for (int g8 = 0; g8 < 16; g8++) {
          const int c = cbase + g8 * 8;
          const float b0 = bq_bias(bias, c, N, bias_dtype), b1 = bq_bias(bias, c + 1, N, bias_dtype);
          if (v0) bq_store_pair(y, r0, c, N, accf[4 * g8] + b0, accf[4 * g8 + 1] + b1, out_dtype);
          if (v1) bq_store_pair(y, r1, c, N, accf[4 * g8 + 2] + b0, accf[4 * g8 + 3] + b1, out_dtype);
        }
      }
    }
  }
}

#define BQ_WGMMA_PP_KERNEL(NAME, U)                                                                  \
  extern "C" __global__ void __launch_bounds__(384, 1) NAME(                                         \
      const __grid_constant__ BqTmaDesc tmA, const __grid_constant__ BqTmaDesc tmB,                  \
      const float* __restrict__ sx, const float* __restrict__ sw,                                    \
      const void* __restrict__ bias, void* __restrict__ y,                                           \
      int M, int N, int K, int B, int bias_dtype, int out_dtype) {                                   \
    bq_wgmma_pp_body<U>(&tmA, &tmB, sx, sw, bias, y, M, N, K, bias_dtype, out_dtype);                \
  }
BQ_WGMMA_PP_KERNEL(bw8_gemm_wgmma_pp_b128, 4)
//@@END hopper
"""#

    /// Program for any device of compute capability >= 8.0 (compile for that device's `sm_XY`).
    static var portableProgram: String { commonSource + portableSource }
    /// Program for sm_90 devices (compile with `--gpu-architecture=sm_90a`).
    static var hopperProgram: String { commonSource + hopperSource }

    static let wgmmaDynamicSharedBytes = 197_728
    static let mmaDynamicSharedBytes = 131_072
    static let wgmmaThreads = 384
    static let tileM = 128
    static let tileN = 128
}
