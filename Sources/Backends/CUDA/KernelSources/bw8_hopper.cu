// Block-wise INT8 W8A8 kernels for sm_90a: TMA + wgmma GEMMs (contract in bw8_common.cuh).
//
// `bw8_gemm_wgmma_pp_b128_mixed` keeps the contract of `bw8_gemm_wgmma_pp_b128` (block, 197728 bytes of
// dynamic shared memory, B == Bn == 128, K % 16 == 0) with two more arguments: after tmB, `tmBn`, W's
// tensor map with 64-row boxes (128-byte swizzle, 128 columns), and after out_dtype, `wide`, the number
// of 128-column tiles (0 ... ceil(N / 128)); the columns from 128 * wide on are done as 128 x 64 tiles.
// Grid: min(SMs, ceil(M / 128) * (wide + ceil((N - 128 * wide) / 64))). It gives the 128 x 128
// kernel's bits; the launch code picks `wide` where the mix fills the SMs' rounds better (M = 1024
// layers), NOTES.md issue 10 round 4.
#include "bw8_common.cuh"
// ---------------------------------------------------------------- Hopper wgmma + TMA GEMM (sm_90a)
#define WG_BM 128
#define WG_BN 128
#define WG_BK 128
#define WG_STAGES 6
#define WG_GROUP_M 16
#define WG_STAGE_A (WG_BM * WG_BK)
#define WG_STAGE_B (WG_BN * WG_BK)

struct __align__(64) BqTmaDesc { u64 opaque[16]; };

__device__ __forceinline__ void bq_mbar_init(u32 a, u32 count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(a), "r"(count) : "memory");
}
__device__ __forceinline__ void bq_mbar_expect_tx(u32 a, u32 bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(a), "r"(bytes) : "memory");
}
__device__ __forceinline__ void bq_mbar_arrive(u32 a) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(a) : "memory");
}
__device__ __forceinline__ void bq_mbar_wait(u32 a, u32 parity) {
  u32 ok;
  do {
    asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                 : "=r"(ok) : "r"(a), "r"(parity) : "memory");
  } while (!ok);
}
__device__ __forceinline__ void bq_tma_load_2d(u32 dst, const BqTmaDesc* map, int c0, int c1, u32 mbar) {
  asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
               :: "r"(dst), "l"((u64)map), "r"(c0), "r"(c1), "r"(mbar) : "memory");
}
__device__ __forceinline__ u64 bq_desc_sw128(u32 saddr) {
  u64 d = (u64)((saddr & 0x3FFFF) >> 4);
  d |= (u64)1 << 16;                 // leading byte offset (unused for swizzled K-major)
  d |= (u64)(1024 >> 4) << 32;       // stride byte offset: 8 rows x 128 bytes
  d |= (u64)1 << 62;                 // 128-byte swizzle
  return d;
}
__device__ __forceinline__ void bq_wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void bq_wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void bq_wgmma_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory"); }
__device__ __forceinline__ void bq_fence_acc(int (&d)[64]) {
#pragma unroll
  for (int i = 0; i < 64; i++) asm volatile("" : "+r"(d[i]) :: "memory");
}
__device__ __forceinline__ void bq_wgmma_m64n128k32(int (&d)[64], u64 da, u64 db, int scale_d) {
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
               "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p;\n}\n"
               : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]), "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]), "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]), "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]), "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]), "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]), "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63])
               : "l"(da), "l"(db), "r"(scale_d));
}

// The same instruction with a 64-column B tile (32 accumulators per thread, the same fragment layout).
__device__ __forceinline__ void bq_fence_acc(int (&d)[32]) {
#pragma unroll
  for (int i = 0; i < 32; i++) asm volatile("" : "+r"(d[i]) :: "memory");
}
__device__ __forceinline__ void bq_wgmma_m64n64k32(int (&d)[32], u64 da, u64 db, int scale_d) {
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
               "wgmma.mma_async.sync.aligned.m64n64k32.s32.s8.s8 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p;\n}\n"
               : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]), "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]), "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31])
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
  const u32 raw = bq_smem_addr(bq_smem);
  const u32 base = (raw + 1023) & ~1023u;
  const u32 sA = base;
  const u32 sB = base + WG_STAGES * WG_STAGE_A;
  const u32 bar_full = sB + WG_STAGES * WG_STAGE_B;
  const u32 bar_empty = bar_full + WG_STAGES * 8;

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
      int stage = 0; u32 phase = 0;
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
    int stage = 0; u32 phase = 0;
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
        const u64 da = bq_desc_sw128(sA + stage * WG_STAGE_A + cw * (64 * WG_BK));
        const u64 db = bq_desc_sw128(sB + stage * WG_STAGE_B);
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

// BN = 128 or 64 columns per tile: NACC = BN / 2 accumulators per thread and set.
template <int BN>
__device__ __forceinline__ void bq_pp_issue(int (&acc)[BN / 2], u32 sA, u32 sB, u32 bar_full, int stage, u32 phase,
                                            int cw) {
  const u64 da = bq_desc_sw128(sA + stage * WG_STAGE_A + cw * (64 * WG_BK));
  const u64 db = bq_desc_sw128(sB + stage * WG_STAGE_B);
  bq_mbar_wait(bar_full + 8 * stage, phase);
  bq_fence_acc(acc);
  bq_wgmma_fence();
#pragma unroll
  for (int ks = 0; ks < 4; ks++) {
    if constexpr (BN == 128) bq_wgmma_m64n128k32(acc, da + 2 * ks, db + 2 * ks, ks > 0 ? 1 : 0);
    else bq_wgmma_m64n64k32(acc, da + 2 * ks, db + 2 * ks, ks > 0 ? 1 : 0);
  }
  bq_wgmma_commit();
}

// BW8_I2F_MAGIC (a harness probe): the exact 1.5 * 2^23 conversion instead of I2FP (|acc| <= 128 * 128 * 128).
template <int NACC>
__device__ __forceinline__ void bq_pp_promote(int (&acc)[NACC], float (&accf)[NACC], float s0, float s1) {
#ifdef BW8_I2F_MAGIC
#pragma unroll
  for (int i = 0; i < NACC; i++) accf[i] = fmaf(bq_i2f_small(acc[i]), (i & 2) ? s1 : s0, accf[i]);
#else
#pragma unroll
  for (int i = 0; i < NACC; i++) accf[i] = fmaf((float)acc[i], (i & 2) ? s1 : s0, accf[i]);
#endif
}

template <int DT>
__device__ __forceinline__ void bq_store_pair_fast(void* y, long long idx, float a, float b) {
  if (DT == DT_F32) { *(float2*)((float*)y + idx) = make_float2(a, b); }
  else if (DT == DT_BF16) { *(u32*)((u16*)y + idx) = (u32)f32_to_bf16(a) | ((u32)f32_to_bf16(b) << 16); }
  else { *(u32*)((u16*)y + idx) = (u32)f32_to_f16(a) | ((u32)f32_to_f16(b) << 16); }
}
template <int DT, int NACC>
__device__ __forceinline__ void bq_epi_fast(void* y, const float (&accf)[NACC], int r0, int cbase, int N,
                                            const void* bias, int bias_dtype) {
  const long long i0 = (long long)r0 * N + cbase, i1 = i0 + 8LL * N;
#pragma unroll
  for (int g8 = 0; g8 < NACC / 4; g8++) {
    float b0 = 0.0f, b1 = 0.0f;
    if (bias_dtype >= 0) { b0 = bq_load_elem(bias, cbase + g8 * 8, bias_dtype); b1 = bq_load_elem(bias, cbase + g8 * 8 + 1, bias_dtype); }
    bq_store_pair_fast<DT>(y, i0 + g8 * 8, accf[4 * g8] + b0, accf[4 * g8 + 1] + b1);
    bq_store_pair_fast<DT>(y, i1 + g8 * 8, accf[4 * g8 + 2] + b0, accf[4 * g8 + 3] + b1);
  }
}

// One output tile of the pipelined consumers: rows m0 .. m0 + 127 (64 per consumer warpgroup), columns
// n0 .. n0 + BN - 1, K stages taken from the ring at (stage, phase). Every output element sees the same
// operations in the same order for either BN, so a 128 x 64 tile gives the bits of the 128 x 128 tile
// holding it.
template <int U, int BN>
__device__ __forceinline__ void bq_pp_tile(
    u32 sA, u32 sB, u32 bar_full, u32 bar_empty, int& stage, u32& phase, int m0, int n0, int cw,
    const float* __restrict__ sx, const float* __restrict__ sw, const void* __restrict__ bias,
    void* __restrict__ y, int M, int N, int nk, int nkp, int bias_dtype, int out_dtype) {
  constexpr int NACC = BN / 2;
  const int lane = threadIdx.x & 31, warp_in_wg = (threadIdx.x >> 5) & 3;
  const int r0 = m0 + cw * 64 + warp_in_wg * 16 + (lane >> 2), r1 = r0 + 8;
  const bool v0 = r0 < M, v1 = r1 < M;
  const float* sx0 = sx + (long long)min(r0, M - 1) * nk;
  const float* sx1 = sx + (long long)min(r1, M - 1) * nk;
  const float* swr = sw + (long long)(n0 / 128) * nk;  // the 128-row weight block holding this tile
  float accf[NACC];
  int accA[NACC], accB[NACC];
#pragma unroll
  for (int i = 0; i < NACC; i++) accf[i] = 0.0f;
  for (int kb = 0; kb < nkp; kb += U) {
    // straight-line: A B A B ... ; the set of stage u is promoted after stage u+1 is issued
    int relA = stage, relB = stage;
    bq_pp_issue<BN>(accA, sA, sB, bar_full, stage, phase, cw);
    if (++stage == WG_STAGES) { stage = 0; phase ^= 1; }
#pragma unroll
    for (int u = 0; u < U; u++) {
      const int k = kb + u;
      const bool kv = k < nk;
      const float ws = kv ? __ldg(swr + k) : 0.0f;
      const float s0 = (v0 && kv) ? __ldg(sx0 + k) * ws : 0.0f;
      const float s1 = (v1 && kv) ? __ldg(sx1 + k) * ws : 0.0f;
      if (u + 1 < U) {
        if (u & 1) { relA = stage; bq_pp_issue<BN>(accA, sA, sB, bar_full, stage, phase, cw); }
        else { relB = stage; bq_pp_issue<BN>(accB, sA, sB, bar_full, stage, phase, cw); }
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
  if (m0 + WG_BM <= M && n0 + BN <= N && (N & 1) == 0) {
    if (out_dtype == DT_BF16) bq_epi_fast<DT_BF16>(y, accf, r0, cbase, N, bias, bias_dtype);
    else if (out_dtype == DT_F32) bq_epi_fast<DT_F32>(y, accf, r0, cbase, N, bias, bias_dtype);
    else bq_epi_fast<DT_F16>(y, accf, r0, cbase, N, bias, bias_dtype);
  } else {
#pragma unroll
    for (int g8 = 0; g8 < NACC / 4; g8++) {
      const int c = cbase + g8 * 8;
      const float b0 = bq_bias(bias, c, N, bias_dtype), b1 = bq_bias(bias, c + 1, N, bias_dtype);
      if (v0) bq_store_pair(y, r0, c, N, accf[4 * g8] + b0, accf[4 * g8 + 1] + b1, out_dtype);
      if (v1) bq_store_pair(y, r1, c, N, accf[4 * g8 + 2] + b0, accf[4 * g8 + 3] + b1, out_dtype);
    }
  }
}

// Tile t of the persistent schedule: the first num_m * wide tiles are 128 x 128 and cover columns
// 0 .. 128 * wide - 1, the rest are 128 x 64 and cover the columns after them (grouped order in each).
__device__ __forceinline__ bool bq_mixed_tile(int t, int num_m, int wide, int narrow, int& m0, int& n0) {
  int mb, nb;
  const int tw = num_m * wide;
  if (t < tw) {
    bq_tile_coords(t, num_m, wide, mb, nb);
    m0 = mb * WG_BM; n0 = nb * 128;
    return true;
  }
  bq_tile_coords(t - tw, num_m, narrow, mb, nb);
  m0 = mb * WG_BM; n0 = wide * 128 + nb * 64;
  return false;
}

// U = K stages per unrolled step (4). `wide` = column tiles of 128 done first, the columns after them as
// 128 x 64 tiles (tmBn: W's tensor map with 64-row boxes): at M = 1024, N = 3072 on 132 SMs, 16 wide
// column tiles (128 tiles, one round) and 128 narrow ones take 1 + 0.6 tile times where all-wide tiles
// take 2 (192 tiles). A stage is 16 KB of A and up to 16 KB of B (a narrow tile uses half).
template <int U>
__device__ __forceinline__ void bq_wgmma_pp_body(
    const BqTmaDesc* tmA, const BqTmaDesc* tmB, const BqTmaDesc* tmBn,
    const float* __restrict__ sx, const float* __restrict__ sw,
    const void* __restrict__ bias, void* __restrict__ y,
    int M, int N, int K, int bias_dtype, int out_dtype, int wide) {
  extern __shared__ __align__(1024) unsigned char bq_smem[];
  const u32 raw = bq_smem_addr(bq_smem);
  const u32 base = (raw + 1023) & ~1023u;
  const u32 sA = base;
  const u32 sB = base + WG_STAGES * WG_STAGE_A;
  const u32 bar_full = sB + WG_STAGES * WG_STAGE_B;
  const u32 bar_empty = bar_full + WG_STAGES * 8;
  const int num_m = (M + WG_BM - 1) / WG_BM;
  const int rest = N - wide * 128;                   // columns left to the 128 x 64 tiles
  const int narrow = rest > 0 ? (rest + 63) / 64 : 0;
  const int num_tiles = num_m * (wide + narrow);
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
      int stage = 0; u32 phase = 0;
      for (int t = blockIdx.x; t < num_tiles; t += gridDim.x) {
        int m0, n0;
        const bool is_wide = bq_mixed_tile(t, num_m, wide, narrow, m0, n0);
        for (int kb = 0; kb < nkp; kb++) {
          bq_mbar_wait(bar_empty + 8 * stage, phase ^ 1);
          bq_mbar_expect_tx(bar_full + 8 * stage, WG_STAGE_A + (is_wide ? WG_STAGE_B : WG_STAGE_B / 2));
          bq_tma_load_2d(sA + stage * WG_STAGE_A, tmA, kb * WG_BK, m0, bar_full + 8 * stage);
          bq_tma_load_2d(sB + stage * WG_STAGE_B, is_wide ? tmB : tmBn, kb * WG_BK, n0, bar_full + 8 * stage);
          if (++stage == WG_STAGES) { stage = 0; phase ^= 1; }
        }
      }
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
    const int cw = wg - 1;
    int stage = 0; u32 phase = 0;
    for (int t = blockIdx.x; t < num_tiles; t += gridDim.x) {
      int m0, n0;
      if (bq_mixed_tile(t, num_m, wide, narrow, m0, n0))
        bq_pp_tile<U, 128>(sA, sB, bar_full, bar_empty, stage, phase, m0, n0, cw, sx, sw, bias, y, M, N, nk, nkp,
                           bias_dtype, out_dtype);
      else
        bq_pp_tile<U, 64>(sA, sB, bar_full, bar_empty, stage, phase, m0, n0, cw, sx, sw, bias, y, M, N, nk, nkp,
                          bias_dtype, out_dtype);
    }
  }
}

extern "C" __global__ void __launch_bounds__(384, 1) bw8_gemm_wgmma_pp_b128(
    const __grid_constant__ BqTmaDesc tmA, const __grid_constant__ BqTmaDesc tmB,
    const float* __restrict__ sx, const float* __restrict__ sw,
    const void* __restrict__ bias, void* __restrict__ y,
    int M, int N, int K, int B, int bias_dtype, int out_dtype) {
  bq_wgmma_pp_body<4>(&tmA, &tmB, &tmB, sx, sw, bias, y, M, N, K, bias_dtype, out_dtype, (N + 127) / 128);
}

// The same with `wide` 128-column tiles and 128 x 64 tiles after them (tmBn: 64-row boxes of W).
extern "C" __global__ void __launch_bounds__(384, 1) bw8_gemm_wgmma_pp_b128_mixed(
    const __grid_constant__ BqTmaDesc tmA, const __grid_constant__ BqTmaDesc tmB,
    const __grid_constant__ BqTmaDesc tmBn, const float* __restrict__ sx, const float* __restrict__ sw,
    const void* __restrict__ bias, void* __restrict__ y,
    int M, int N, int K, int B, int bias_dtype, int out_dtype, int wide) {
  bq_wgmma_pp_body<4>(&tmA, &tmB, &tmBn, sx, sw, bias, y, M, N, K, bias_dtype, out_dtype, wide);
}
