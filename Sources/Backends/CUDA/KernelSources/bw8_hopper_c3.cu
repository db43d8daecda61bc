// Block-wise INT8 W8A8 GEMM for sm_90a with three consumer warpgroups (contract in bw8_common.cuh).
//
// `bw8_gemm_wgmma_c3_b128`: B == Bn == 128, K % 16 == 0; the parameter list of `bw8_gemm_wgmma_pp_b128`
// (tmA over qx with 192-row boxes, tmB over qw with 128-row boxes, both 128 columns, 128-byte swizzle).
// Block (512, 1, 1): warpgroup 0 issues TMA, warpgroups 1-3 each own 64 rows of a 192 x 128 output tile.
// Grid min(SMs, ceil(M / 192) * ceil(N / 128)), persistent; dynamic shared memory C3_SMEM bytes.
// Each consumer waits for its own wgmmas of a K stage and then promotes them (`wait_group 0`, one
// int32 accumulator set); the tensor cores run the other two warpgroups' wgmmas meanwhile, so neither
// the promotion nor the epilogue leaves them idle, and no drain bubble is needed (no unrolled steps).
// Every output element sees the operations of `bw8_gemm_wgmma_pp_b128` in the same order (int32 block
// sum restarted each 128-deep K block, `acc_f = fmaf(float(acc_i), sx * sw, acc_f)`, the pp kernel's
// zero-scale padding stages as one `acc_f + 0`, bias, one rounding), so it gives the pp kernel's bits.
// This file repeats the few TMA / mbarrier / wgmma helpers of bw8_hopper.cu so that it compiles as its
// own NVRTC program (minutes, where bw8_hopper.cu takes about 14 on the 2-core development machine).
#include "bw8_common.cuh"

#define C3_BM 192
#define C3_BN 128
#define C3_BK 128
#define C3_STAGES 5
#define C3_GROUP_M 16
#define C3_STAGE_A (C3_BM * C3_BK)
#define C3_STAGE_B (C3_BN * C3_BK)

struct __align__(64) C3TmaDesc { u64 opaque[16]; };

__device__ __forceinline__ void c3_mbar_init(u32 a, u32 count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(a), "r"(count) : "memory");
}
__device__ __forceinline__ void c3_mbar_expect_tx(u32 a, u32 bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(a), "r"(bytes) : "memory");
}
__device__ __forceinline__ void c3_mbar_arrive(u32 a) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(a) : "memory");
}
__device__ __forceinline__ void c3_mbar_wait(u32 a, u32 parity) {
  u32 ok;
  do {
    asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                 : "=r"(ok) : "r"(a), "r"(parity) : "memory");
  } while (!ok);
}
__device__ __forceinline__ void c3_tma_load_2d(u32 dst, const C3TmaDesc* map, int c0, int c1, u32 mbar) {
  asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
               :: "r"(dst), "l"((u64)map), "r"(c0), "r"(c1), "r"(mbar) : "memory");
}
// The same load into this CTA and its cluster peer (`mask` = CTA ranks), each completing on its own
// mbarrier at `mbar`'s offset.
__device__ __forceinline__ void c3_tma_load_2d_mc(u32 dst, const C3TmaDesc* map, int c0, int c1, u32 mbar, u16 mask) {
  asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%0], [%1, {%2, %3}], [%4], %5;"
               :: "r"(dst), "l"((u64)map), "r"(c0), "r"(c1), "r"(mbar), "h"(mask) : "memory");
}
// Arrive on the mbarrier at `a`'s offset in the cluster CTA of rank `rank`.
__device__ __forceinline__ void c3_mbar_arrive_cluster(u32 a, u32 rank) {
  asm volatile("{ .reg .b32 ra; mapa.shared::cluster.u32 ra, %0, %1; mbarrier.arrive.shared::cluster.b64 _, [ra]; }"
               :: "r"(a), "r"(rank) : "memory");
}
__device__ __forceinline__ void c3_cluster_sync() {
  asm volatile("barrier.cluster.arrive.aligned; barrier.cluster.wait.aligned;" ::: "memory");
}
__device__ __forceinline__ u64 c3_desc_sw128(u32 saddr) {
  u64 d = (u64)((saddr & 0x3FFFF) >> 4);
  d |= (u64)1 << 16;                 // leading byte offset (unused for swizzled K-major)
  d |= (u64)(1024 >> 4) << 32;       // stride byte offset: 8 rows x 128 bytes
  d |= (u64)1 << 62;                 // 128-byte swizzle
  return d;
}
__device__ __forceinline__ void c3_fence_acc(int (&d)[64]) {
#pragma unroll
  for (int i = 0; i < 64; i++) asm volatile("" : "+r"(d[i]) :: "memory");
}
__device__ __forceinline__ void c3_wgmma_m64n128k32(int (&d)[64], u64 da, u64 db, int scale_d) {
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
               "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p;\n}\n"
               : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]), "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]), "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]), "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]), "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]), "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]), "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63])
               : "l"(da), "l"(db), "r"(scale_d));
}

// Tile t -> (row tile, column tile): groups of C3_GROUP_M row tiles, column-major inside a group.
__device__ __forceinline__ void c3_tile_coords(int t, int num_m, int num_n, int& mb, int& nb) {
  const int per_group = C3_GROUP_M * num_n;
  const int gid = t / per_group;
  const int first_m = gid * C3_GROUP_M;
  const int gsz = min(num_m - first_m, C3_GROUP_M);
  const int within = t - gid * per_group;
  mb = first_m + within % gsz;
  nb = within / gsz;
}

template <int DT>
__device__ __forceinline__ void c3_store_pair(void* y, long long idx, float a, float b) {
  if (DT == DT_F32) { *(float2*)((float*)y + idx) = make_float2(a, b); }
  else if (DT == DT_BF16) { *(u32*)((u16*)y + idx) = (u32)f32_to_bf16(a) | ((u32)f32_to_bf16(b) << 16); }
  else { *(u32*)((u16*)y + idx) = (u32)f32_to_f16(a) | ((u32)f32_to_f16(b) << 16); }
}
template <int DT>
__device__ __forceinline__ void c3_epi_fast(void* y, const float (&accf)[64], int r0, int cbase, int N,
                                            const void* bias, int bias_dtype) {
  const long long i0 = (long long)r0 * N + cbase, i1 = i0 + 8LL * N;
#pragma unroll
  for (int g8 = 0; g8 < 16; g8++) {
    float b0 = 0.0f, b1 = 0.0f;
    if (bias_dtype >= 0) { b0 = bq_load_elem(bias, cbase + g8 * 8, bias_dtype); b1 = bq_load_elem(bias, cbase + g8 * 8 + 1, bias_dtype); }
    c3_store_pair<DT>(y, i0 + g8 * 8, accf[4 * g8] + b0, accf[4 * g8 + 1] + b1);
    c3_store_pair<DT>(y, i1 + g8 * 8, accf[4 * g8 + 2] + b0, accf[4 * g8 + 3] + b1);
  }
}

#define C3_SMEM (1024 + C3_STAGES * (C3_STAGE_A + C3_STAGE_B) + 2 * C3_STAGES * 8)

// PROMOTE = false is a timing probe only (promotes the last K block alone: wrong numbers).
// MC: CTAs in clusters of 2 take the column tiles 2p and 2p + 1 of one row tile; each loads half of the
// shared 192 x 128 A stage (96 rows, tmA with 96-row boxes) into both CTAs (TMA multicast) and its own B,
// so the pair reads A from L2 once. A stage is refilled only when the consumers of both CTAs have
// released it (empty barriers count 24 arrivals: 12 warps here, 12 in the peer).
template <bool PROMOTE, bool MC>
__device__ __forceinline__ void c3_body(
    const C3TmaDesc* tmA, const C3TmaDesc* tmB, const float* __restrict__ sx, const float* __restrict__ sw,
    const void* __restrict__ bias, void* __restrict__ y, int M, int N, int K, int bias_dtype, int out_dtype) {
  extern __shared__ __align__(1024) unsigned char c3_smem[];
  const u32 raw = bq_smem_addr(c3_smem);
  const u32 base = (raw + 1023) & ~1023u;
  const u32 sA = base;
  const u32 sB = base + C3_STAGES * C3_STAGE_A;
  const u32 bar_full = sB + C3_STAGES * C3_STAGE_B;
  const u32 bar_empty = bar_full + C3_STAGES * 8;
  const int num_m = (M + C3_BM - 1) / C3_BM, num_n = (N + C3_BN - 1) / C3_BN;
  // MC: work items are pairs of column tiles, one per cluster; else tiles, one per CTA.
  const int num_cn = MC ? (num_n + 1) / 2 : num_n;
  const int num_tiles = num_m * num_cn;
  const int rank = MC ? (int)(blockIdx.x & 1) : 0;
  const int first = MC ? (int)(blockIdx.x >> 1) : (int)blockIdx.x;
  const int step = MC ? (int)(gridDim.x >> 1) : (int)gridDim.x;
  const int nk = (K + C3_BK - 1) / C3_BK;            // == KB since B == 128
  // The pp kernel runs ceil(nk / 4) * 4 stages, the extra ones with zero codes and zero scales:
  // each is `acc_f = fmaf(0, 0, acc_f)`, i.e. acc_f + 0 (turns -0 into +0), done here once.
  const bool pad = (nk & 3) != 0;
  const int wg = threadIdx.x >> 7;

  if (threadIdx.x == 0) {
    for (int s = 0; s < C3_STAGES; s++) {
      c3_mbar_init(bar_full + 8 * s, 1);
      c3_mbar_init(bar_empty + 8 * s, MC ? 24 : 12);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
  }
  __syncthreads();
  if (MC) c3_cluster_sync();   // the peer's barriers exist before any multicast or remote arrive

  if (wg == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 32;\n" ::: "memory");
    if (threadIdx.x == 0) {
      int stage = 0; u32 phase = 0;
      for (int t = first; t < num_tiles; t += step) {
        int mb, nb; c3_tile_coords(t, num_m, num_cn, mb, nb);
        if (MC) nb = 2 * nb + rank;
        for (int kb = 0; kb < nk; kb++) {
          c3_mbar_wait(bar_empty + 8 * stage, phase ^ 1);
          c3_mbar_expect_tx(bar_full + 8 * stage, C3_STAGE_A + C3_STAGE_B);
          if (MC)
            c3_tma_load_2d_mc(sA + stage * C3_STAGE_A + rank * (C3_BM / 2 * C3_BK), tmA, kb * C3_BK,
                              mb * C3_BM + rank * (C3_BM / 2), bar_full + 8 * stage, (u16)3);
          else
            c3_tma_load_2d(sA + stage * C3_STAGE_A, tmA, kb * C3_BK, mb * C3_BM, bar_full + 8 * stage);
          c3_tma_load_2d(sB + stage * C3_STAGE_B, tmB, kb * C3_BK, nb * C3_BN, bar_full + 8 * stage);
          if (++stage == C3_STAGES) { stage = 0; phase ^= 1; }
        }
      }
    }
    if (MC) c3_cluster_sync();
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 160;\n" ::: "memory");
    const int cw = wg - 1;
    const int lane = threadIdx.x & 31, warp_in_wg = (threadIdx.x >> 5) & 3;
    int stage = 0; u32 phase = 0;
    for (int t = first; t < num_tiles; t += step) {
      int mb, nb; c3_tile_coords(t, num_m, num_cn, mb, nb);
      if (MC) nb = 2 * nb + rank;        // may be num_n (odd num_n): zero B, nothing stored
      const int m0 = mb * C3_BM + cw * 64, n0 = nb * C3_BN;   // this warpgroup's 64 x 128 part
      const int r0 = m0 + warp_in_wg * 16 + (lane >> 2), r1 = r0 + 8;
      const bool v0 = r0 < M, v1 = r1 < M;
      const float* sx0 = sx + (long long)min(r0, M - 1) * nk;
      const float* sx1 = sx + (long long)min(r1, M - 1) * nk;
      const float* swr = sw + (long long)min(nb, num_n - 1) * nk;
      float accf[64];
      int acc[64];
#pragma unroll
      for (int i = 0; i < 64; i++) accf[i] = 0.0f;
      for (int k = 0; k < nk; k++) {
        const float ws = __ldg(swr + k);
        const float s0 = v0 ? __ldg(sx0 + k) * ws : 0.0f;
        const float s1 = v1 ? __ldg(sx1 + k) * ws : 0.0f;
        const u64 da = c3_desc_sw128(sA + stage * C3_STAGE_A + cw * (64 * C3_BK));
        const u64 db = c3_desc_sw128(sB + stage * C3_STAGE_B);
        c3_mbar_wait(bar_full + 8 * stage, phase);
        c3_fence_acc(acc);
        asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
        for (int ks = 0; ks < 4; ks++) c3_wgmma_m64n128k32(acc, da + 2 * ks, db + 2 * ks, ks > 0 ? 1 : 0);
        asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
        c3_fence_acc(acc);
        if (lane == 0) {
          c3_mbar_arrive(bar_empty + 8 * stage);
          if (MC) c3_mbar_arrive_cluster(bar_empty + 8 * stage, rank ^ 1);
        }
        if (PROMOTE || k == nk - 1) {
#ifdef BW8_I2F_MAGIC
#pragma unroll
          for (int i = 0; i < 64; i++) accf[i] = fmaf(bq_i2f_small(acc[i]), (i & 2) ? s1 : s0, accf[i]);
#else
#pragma unroll
          for (int i = 0; i < 64; i++) accf[i] = fmaf((float)acc[i], (i & 2) ? s1 : s0, accf[i]);
#endif
        }
        if (++stage == C3_STAGES) { stage = 0; phase ^= 1; }
      }
      if (pad) {
#pragma unroll
        for (int i = 0; i < 64; i++) accf[i] = accf[i] + 0.0f;
      }
      const int cbase = n0 + (lane & 3) * 2;
      if (m0 + 64 <= M && n0 + C3_BN <= N && (N & 1) == 0) {
        if (out_dtype == DT_BF16) c3_epi_fast<DT_BF16>(y, accf, r0, cbase, N, bias, bias_dtype);
        else if (out_dtype == DT_F32) c3_epi_fast<DT_F32>(y, accf, r0, cbase, N, bias, bias_dtype);
        else c3_epi_fast<DT_F16>(y, accf, r0, cbase, N, bias, bias_dtype);
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
    if (MC) c3_cluster_sync();   // no CTA leaves while its peer may still arrive on its barriers
  }
}

extern "C" __global__ void __launch_bounds__(512, 1) bw8_gemm_wgmma_c3_b128(
    const __grid_constant__ C3TmaDesc tmA, const __grid_constant__ C3TmaDesc tmB,
    const float* __restrict__ sx, const float* __restrict__ sw,
    const void* __restrict__ bias, void* __restrict__ y,
    int M, int N, int K, int B, int bias_dtype, int out_dtype) {
  c3_body<true, false>(&tmA, &tmB, sx, sw, bias, y, M, N, K, bias_dtype, out_dtype);
}

// The same in clusters of 2 CTAs sharing each A stage (tmA with 96-row boxes; grid even, at most
// 2 * ceil(M / 192) * ceil(ceil(N / 128) / 2)).
extern "C" __global__ void __cluster_dims__(2, 1, 1) __launch_bounds__(512, 1) bw8_gemm_wgmma_c3mc_b128(
    const __grid_constant__ C3TmaDesc tmA, const __grid_constant__ C3TmaDesc tmB,
    const float* __restrict__ sx, const float* __restrict__ sw,
    const void* __restrict__ bias, void* __restrict__ y,
    int M, int N, int K, int B, int bias_dtype, int out_dtype) {
  c3_body<true, true>(&tmA, &tmB, sx, sw, bias, y, M, N, K, bias_dtype, out_dtype);
}

#ifdef C3_PROBES
extern "C" __global__ void __launch_bounds__(512, 1) bw8_gemm_wgmma_c3_b128_nopromote(
    const __grid_constant__ C3TmaDesc tmA, const __grid_constant__ C3TmaDesc tmB,
    const float* __restrict__ sx, const float* __restrict__ sw,
    const void* __restrict__ bias, void* __restrict__ y,
    int M, int N, int K, int B, int bias_dtype, int out_dtype) {
  c3_body<false, false>(&tmA, &tmB, sx, sw, bias, y, M, N, K, bias_dtype, out_dtype);
}
extern "C" __global__ void __cluster_dims__(2, 1, 1) __launch_bounds__(512, 1) bw8_gemm_wgmma_c3mc_b128_nopromote(
    const __grid_constant__ C3TmaDesc tmA, const __grid_constant__ C3TmaDesc tmB,
    const float* __restrict__ sx, const float* __restrict__ sw,
    const void* __restrict__ bias, void* __restrict__ y,
    int M, int N, int K, int B, int bias_dtype, int out_dtype) {
  c3_body<false, true>(&tmA, &tmB, sx, sw, bias, y, M, N, K, bias_dtype, out_dtype);
}
#endif
