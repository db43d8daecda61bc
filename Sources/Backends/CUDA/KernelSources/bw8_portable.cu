// Block-wise INT8 W8A8 kernels for sm_80+: mma.sync GEMM and the decode GEMV (contract in bw8_common.cuh).
#include "bw8_common.cuh"
// ---------------------------------------------------------------- mma.sync m16n8k32 GEMM (sm_80+)
#define MMA_BM 128
#define MMA_BN 128
#define MMA_BK 128
#define MMA_STAGES 4

__device__ __forceinline__ void bq_cp_async16(u32 dst, const void* src, bool valid) {
  int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(dst), "l"(src), "r"(n) : "memory");
}
__device__ __forceinline__ void bq_cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void bq_cp_wait() { asm volatile("cp.async.wait_group %0;\n" :: "n"(N) : "memory"); }

__device__ __forceinline__ void bq_ldsm4(u32 addr, u32& r0, u32& r1, u32& r2, u32& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}

__device__ __forceinline__ void bq_mma_s8(int* c, const u32* a, u32 b0, u32 b1) {
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
  const u32 sbase = bq_smem_addr(bq_smem);
  const u32 stage_bytes = 2 * MMA_BM * MMA_BK;

  float accf[4][4][4];
  int acci[4][4][4];
#pragma unroll
  for (int a = 0; a < 4; a++)
#pragma unroll
    for (int b = 0; b < 4; b++)
#pragma unroll
      for (int c = 0; c < 4; c++) { accf[a][b][c] = 0.0f; acci[a][b][c] = 0; }

  auto load_stage = [&](int kb, int st) {
    const u32 sA = sbase + st * stage_bytes, sB = sA + MMA_BM * MMA_BK;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      int idx = tid + i * 256;
      int r = idx >> 3, ch = idx & 7;
      int gk = kb * MMA_BK + ch * 16;
      u32 off = r * 128 + ((ch ^ (r & 7)) << 4);
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
    const u32 sA = sbase + st * stage_bytes, sB = sA + MMA_BM * MMA_BK;
#pragma unroll
    for (int ks = 0; ks < 4; ks++) {
      u32 af[4][4], bfr[2][4];
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
        if (out_dtype == DT_F32) ((float*)y)[idx] = v;
        else ((u16*)y)[idx] = out_dtype == DT_BF16 ? f32_to_bf16(v) : f32_to_f16(v);
      }
    }
  }
}
