// Block-wise INT8 W8A8 linear kernels (tensor cores) and the activation quantizer.
//
// # Math
// `y[m,n] = sum_j float(sum_{k in block j} qx[m,k]*qw[n,k]) * (sx[m,j] * sw[n/Bn, j]) + bias[n]`,
// inner sums exact in int32, outer sum in float32, written straight to the output dtype.
// Activation quantization per row m and K block j: `scale = amax/127` (IEEE division, 0 for an all-zero
// block), `q = clamp(round(x/scale), -127, 127)` with `__fdiv_rn`, round to nearest even (mode 0) or
// toward zero (mode 1). Bit-exact with that formula.
//
// # Common conventions
// - All matrices are dense row-major with no padding: `qx` (M, K) int8, `sx` (M, KB) float32,
//   `qw` (N, K) int8, `sw` (ceil(N/Bn), KB) float32, `y` (M, N), with `KB = ceil(K/B)`.
// - dtype codes (Int32 parameters): 0 = float32, 1 = float16, 2 = bfloat16. `bias_dtype = -1` means no
//   bias (pass a null pointer); otherwise bias is (N) of that dtype (0 or 2 in practice).
// - Every pointer parameter is a device pointer (CUdeviceptr, 8 bytes); ints are 32-bit signed.
// - Base pointers 16-byte aligned (cuMemAlloc gives 256).
// - Two programs: `portableProgram` (compile with `--gpu-architecture=sm_80` or the device's
//   `sm_XY`, any CC >= 8.0) and `hopperProgram` (compile with `--gpu-architecture=sm_90a`; needs an
//   sm_90 device; `compute_90a` PTX also works). Options used by the harness: `-std=c++17`.
//   Both contain the quantizer kernels too. No headers are included: the source is self-contained.
// - Compile cost: NVRTC + ptxas take about 2 s for `portableProgram` and 60-120 s for `hopperProgram` on
//   the 2-core development machine (unrolled 64-register wgmma code); cache the cubin per process (and
//   ideally on disk, keyed by source hash + architecture + NVRTC version).
// - The quantizers do not flag NaN or infinity in x (the op layer checks where it must, per SPEC
//   section 2), but they propagate them: amax is the largest |x| bit pattern, so a block holding NaN
//   gets a NaN scale, one holding infinity an infinite scale, and the GEMM's output row is non-finite
//   (its codes are unspecified).
//
// # Kernels
//
// ## `bw8_quantize_rows_vec16` (portable + hopper programs)
// `(const void* x, int8* q, float* s, int M, int K, int B, int in_dtype, int round_mode)`
// - x (M, K) of in_dtype (0/1/2); q (M, K) int8; s (M, KB) float32; round_mode 0 = nearest even,
//   1 = toward zero.
// - Requires B in {32, 64, 128, 256} and K % 16 == 0 (partial last block fine). 16 elements per thread.
// - block (256, 1, 1); grid-stride loop, so any grid is correct; use
//   grid (min(ceil(M * KB * (B/16) / 256), 16 * multiProcessorCount), 1, 1); no dynamic shared memory.
//
// ## `bw8_quantize_rows_generic` (portable + hopper programs)
// Same parameters; any B > 0, any K. block (256,1,1); grid (ceil(M * KB / 8), 1, 1); no shared memory.
//
// ## `bw8_gemm_mma` (portable program; sm_80+; mma.sync m16n8k32 s8)
// `(const int8* qx, const float* sx, const int8* qw, const float* sw, const void* bias, void* y,
//   int M, int N, int K, int B, int Bn, int bias_dtype, int out_dtype)`
// - Requires K % 16 == 0, B % 32 == 0, Bn >= 1 (any). out_dtype 0/1/2.
// - block (256, 1, 1); grid (ceil(N/128), ceil(M/128), 1);
//   dynamic shared memory 131072 bytes: raise `CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES` to 131072.
//
// ## `bw8_gemv` (portable program; for M <= 16, decode)
// Same parameter list as `bw8_gemm_mma`.
// - Requires 1 <= M <= 16, K % 16 == 0, B % 16 == 0. One warp per output column.
// - block (256, 1, 1); grid (ceil(N/8), 1, 1); no dynamic shared memory.
// - Within a K block the int32 dot is split into 16-element partial sums (each exact) that are
//   converted and scaled separately: same value up to float32 rounding.
//
// ## `bw8_gemm_wgmma_b128`, `bw8_gemm_wgmma_b64`, `bw8_gemm_wgmma_b32` (hopper program; sm_90a)
// `(CUtensorMap tmA /*__grid_constant__, 128 bytes by value*/, CUtensorMap tmB /*same*/,
//   const float* sx, const float* sw, const void* bias, void* y,
//   int M, int N, int K, int B, int bias_dtype, int out_dtype)`
// - `_b128`: B any multiple of 128 (128, 256, ...); `_b64`: B == 64; `_b32`: B == 32. Requires
//   Bn == B (weight blocks B x B), K % 16 == 0 (TMA stride rule). Partial M, N, K tiles are zero-filled by TMA.
// - Tensor maps (cuTensorMapEncodeTiled), passed by value as the first two kernel parameters
//   (kernelParams entries point at the 128-byte host structs):
//   tmA over qx: dataType UINT8 (0), rank 2, globalDim {K, M}, globalStrides {K} (bytes),
//   boxDim {128, 128}, elementStrides {1, 1}, interleave NONE (0), swizzle 128B (3),
//   l2Promotion 256B (3), oobFill NONE (0, zeros). tmB over qw: the same with globalDim {K, N}.
// - block (384, 1, 1) (warpgroup 0 = TMA producer, warpgroups 1-2 = wgmma consumers);
//   grid (min(ceil(M/128) * ceil(N/128), multiProcessorCount), 1, 1) (persistent);
//   dynamic shared memory 197728 bytes: raise `CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES` to 197728.
//
// ## `bw8_gemm_wgmma_pp_b128` (hopper program; sm_90a) -- the fast one, B == 128 only
// Same parameter list, tensor maps, block (384,1,1), grid (min(tiles, multiProcessorCount)) and dynamic
// shared memory (197728 bytes, raise the attribute) as `bw8_gemm_wgmma_b128`; requires B == Bn == 128,
// K % 16 == 0. Consumers keep two int32 accumulator sets and issue the wgmmas of K stage k+1 before
// promoting stage k (wgmma.wait_group 1), 4 stages per unrolled step; the K loop is padded to a multiple
// of 4 stages (TMA zero-fills, scales read as 0), so K = 128 * (4i + 1) wastes up to 3 stages.
//
// # Dispatch suggested for the backend
// M <= 16 -> `bw8_gemv`; else sm_90 with B == Bn == 128 -> `bw8_gemm_wgmma_pp_b128`; sm_90 with
// Bn == B and B in {32, 64, k*128} -> `bw8_gemm_wgmma_b32/_b64/_b128`; else `bw8_gemm_mma`.
// Float input: `bw8_quantize_rows_vec16` (or `_generic`) first, on the same stream.
//
// # Measured (H100 80GB HBM3, M = 54560, WAN N x K, B = 128, bf16 in/out; NOTES-gemm.md has the table)
// `bw8_gemm_wgmma_pp_b128` 815-930 TOP/s; with `bw8_quantize_rows_vec16` 0.93-1.29x torch bf16 linear
// (5 of 6 shapes >= 1.0x) in the same run. `bw8_gemm_mma` about 210 TOP/s. `bw8_gemv` at M = 2: 1.8-2.2 TB/s of weight.
#pragma once
#include "prelude.cuh"
// ---------------------------------------------------------------- common helpers
__device__ __forceinline__ float bq_load_elem(const void* p, long long i, int dt) {
  if (dt == DT_F32) return ((const float*)p)[i];
  u16 h = ((const u16*)p)[i];
  return dt == DT_BF16 ? bf16_to_f32(h) : f16_to_f32(h);
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
  if (dt == DT_F32) {
    float* o = (float*)y;
    if (vec) { *(float2*)(o + idx) = make_float2(a, b); }
    else { o[idx] = a; if (two) o[idx + 1] = b; }
  } else {
    u16 ha = dt == DT_BF16 ? f32_to_bf16(a) : f32_to_f16(a);
    u16 hb = dt == DT_BF16 ? f32_to_bf16(b) : f32_to_f16(b);
    u16* o = (u16*)y;
    if (vec) { *(u32*)(o + idx) = (u32)ha | ((u32)hb << 16); }
    else { o[idx] = ha; if (two) o[idx + 1] = hb; }
  }
}

// Exact int32 -> float32 for |v| < 2^22 with one integer and one float add (I2F runs at quarter rate).
__device__ __forceinline__ float bq_i2f_small(int v) { return __int_as_float(v + 0x4B400000) - 12582912.0f; }

__device__ __forceinline__ u32 bq_smem_addr(const void* p) {
  u32 r;
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
  if (in_dtype == DT_F32) {
    v[0] = __uint_as_float(a.x); v[1] = __uint_as_float(a.y); v[2] = __uint_as_float(a.z); v[3] = __uint_as_float(a.w);
    v[4] = __uint_as_float(b.x); v[5] = __uint_as_float(b.y); v[6] = __uint_as_float(b.z); v[7] = __uint_as_float(b.w);
  } else {
    const u32 w[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const u16 lo = (u16)(w[i] & 0xffff), hi = (u16)(w[i] >> 16);
      if (in_dtype == DT_BF16) { v[2 * i] = bf16_to_f32(lo); v[2 * i + 1] = bf16_to_f32(hi); }
      else { v[2 * i] = f16_to_f32(lo); v[2 * i + 1] = f16_to_f32(hi); }
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
      if (in_dtype == DT_F32) {
        const uint4* p = (const uint4*)((const float*)x + e);
        r0 = __ldg(p); r1 = __ldg(p + 1); r2 = __ldg(p + 2); r3 = __ldg(p + 3);
      } else {
        const uint4* p = (const uint4*)((const u16*)x + e);
        r0 = __ldg(p); r2 = __ldg(p + 1);
      }
    }
    float v[16];
    bq_unpack8(r0, r1, in_dtype, v);
    bq_unpack8(r2, r3, in_dtype, v + 8);
    // amax as the largest |v| bit pattern: the same order as fmaxf on finite values and infinity, and
    // a NaN (above +inf) wins, so a block holding NaN gets a NaN scale and its output row is NaN.
    u32 abits = 0;
#pragma unroll
    for (int i = 0; i < 16; i++) abits = max(abits, __float_as_uint(v[i]) & 0x7fffffffu);
    for (int off = G >> 1; off > 0; off >>= 1) abits = max(abits, __shfl_xor_sync(0xffffffffu, abits, off));
    const float scale = abits != 0 ? i8_scale(__uint_as_float(abits)) : 0.0f;
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
  u32 abits = 0;  // NaN-propagating amax, as in bw8_quantize_rows_vec16
  for (int k = kb + lane; k < ke; k += 32)
    abits = max(abits, __float_as_uint(bq_load_elem(x, base + k, in_dtype)) & 0x7fffffffu);
  for (int off = 16; off > 0; off >>= 1) abits = max(abits, __shfl_xor_sync(0xffffffffu, abits, off));
  const float scale = abits != 0 ? i8_scale(__uint_as_float(abits)) : 0.0f;
  for (int k = kb + lane; k < ke; k += 32)
    q[base + k] = (signed char)bq_quant1(bq_load_elem(x, base + k, in_dtype), scale, round_mode);
  if (lane == 0) s[row * KB + j] = scale;
}
