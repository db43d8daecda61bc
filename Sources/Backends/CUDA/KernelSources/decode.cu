// Decode-shape linear kernels (1 <= M <= 16 rows): one kernel, `gemv_stream`, that streams each weight
// row once from memory, specialised with `-D`:
// - `MODE` 0: INT8 W8A8 on given activation codes `qx` (M, K) int8 and scales `sx` (M, KB);
//   1: INT8 W8A8 on a float input `x` (M, K) of dtype `X_DT`, quantized inside the kernel into
//   shared memory (1 x `BC` blocks, exactly the activation quantizer: `scale = amax / 127`, `q =
//   clamp(round(x / scale))`, NaN-propagating amax), so the op is one launch;
//   2: INT8 weight-only, `w = q * s` (`BR` x `BC` weight blocks); 3: FP8 weight-only, `w = e4m3(q) * s`.
// - `MT` = M, `OUT_DT`, `BIAS_DT`, `TOWARD_ZERO` (mode 1's rounding), `U` 16-byte chunks per lane per
//   batch, `XS` 1 when the input is copied into shared memory first (mode 1 always; modes 0, 2, 3 where
//   it fits), 0 when it is read from global memory.
//
// Arithmetic (CONTRACTS.md): W8A8 computes each K block's int32 sum exactly (dp4a over 16-byte chunks,
// the chunks' sums added as integers), then `acc = acc + float(sum_j) * (sx[m,j] * sw[n/BR, j])` in
// float32 in increasing j, bias added last, rounded once to `OUT_DT`: the CPU reference's value exactly.
// Weight-only: `y = sum_k x * w` in float32 (fused multiply-adds into four partial sums per lane and
// row, added and summed over the warp by a reduction), bias added last.
//
// Launch: block 256 threads (8 warps); persistent grid (any size; all of it resident at once is
// best); warp w of the grid streams rows n = w, w + warps, ...; each row in batches of 32 * U chunks
// (lane l loads chunk u * 32 + l of a batch, so every load instruction reads 512 contiguous bytes),
// the next batch's loads issued before the current batch is used, so every lane keeps U 16-byte
// loads in flight across row boundaries.
// W8A8: each lane writes its chunks' int32 dot products (one per row m) to the warp's shared staging
// area; then one lane per (m, block) adds the block's BC / 16 chunk sums and forms the block's
// product, and lane m adds the batch's products to its accumulator in increasing block order. No
// shuffles in the stream; two `__syncwarp` per batch. (The first version reduced each chunk's sum
// with shuffles and gathered the products in order with 4 more: 98 registers, 0.44-0.50 of copy.)
// Measured on the H200 at M = 2 (scripts/gpu/membound_harness.py, NOTES.md issue 10): W8A8 0.66-0.92
// of the copy bandwidth, weight-only 0.40-0.56 (issue-bound on the per-element decode and FMAs).
// Needs K % 16 == 0, 16-byte aligned `qx` / `x` / `wq`, and for W8A8 `BC` a power of two in 16...512.
// Dynamic shared memory (`decodeSharedBytes` in Swift): with XS, the input (`align16(M K)` codes +
// `4 M KB` scales for W8A8, `align16(M K sizeof(X_DT))` for weight-only); W8A8 adds, 16-byte aligned,
// `8 * 4 * (M * 32 * U + M * 32 * U / (BC / 16))` bytes of staging.
#include "prelude.cuh"
#ifndef U
#define U 4
#endif
#ifndef BR
#define BR 1
#endif
#ifndef BC
#define BC 16
#endif
#ifndef X_DT
#define X_DT DT_BF16
#endif
#ifndef XS
#define XS 1
#endif
#ifndef TOWARD_ZERO
#define TOWARD_ZERO 0
#endif
#define W8A8_MODE (MODE == 0 || MODE == 1)

__device__ __forceinline__ uint4 ld_stream(const void* p) {
    uint4 r;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
    return r;
}
__device__ __forceinline__ int dot16(uint4 a, uint4 b) {
    int d = __dp4a((int)a.x, (int)b.x, 0);
    d = __dp4a((int)a.y, (int)b.y, d);
    d = __dp4a((int)a.z, (int)b.z, d);
    return __dp4a((int)a.w, (int)b.w, d);
}
__device__ __forceinline__ int align16(int bytes) { return (bytes + 15) & ~15; }

/// Loads batch `b` of row `n`: chunk c = b * 32 U + u * 32 + lane (16 bytes at k = 16 c); zeros
/// past the row's end or past the last row.
__device__ __forceinline__ void load_batch(uint4* out, const u8* wq, int n, int b, int N, int CK, int lane) {
    #pragma unroll
    for (int u = 0; u < U; ++u) {
        const int c = b * 32 * U + u * 32 + lane;
        out[u] = (n < N && c < CK) ? ld_stream(wq + (i64)n * (CK * 16) + (i64)c * 16) : make_uint4(0, 0, 0, 0);
    }
}

/// Copies `bytes` (a multiple of 16) from global to shared memory with the whole block.
__device__ __forceinline__ void copy_to_shared(u8* dst, const void* src, int bytes) {
    for (int i = threadIdx.x * 16; i < bytes; i += blockDim.x * 16)
        *(uint4*)(dst + i) = __ldg((const uint4*)((const u8*)src + i));
}

#if W8A8_MODE
#define CPB (BC / 16)                      // 16-byte chunks per K block
#define BPB (32 * U / CPB)                 // K blocks per batch
#define PAIRS ((MT * BPB + 31) / 32)       // (row, block) pairs per lane per batch
#define STAGE_INTS (MT * 32 * U)           // per warp: one int32 per (row, chunk)
#define PROD_FLOATS (MT * BPB)             // per warp: one float per (row, block)

/// The weight scales lane `lane` needs for batch `b` of row `n` (its (m, block) pairs).
__device__ __forceinline__ void load_weight_scales(float* out, const float* ws, int n, int b, int N, int KB, int lane) {
    #pragma unroll
    for (int t = 0; t < PAIRS; ++t) {
        const int pair = t * 32 + lane;
        const int j = b * BPB + pair % BPB;
        out[t] = (n < N && pair < MT * BPB && j < KB) ? __ldg(ws + (i64)(n / BR) * KB + j) : 0.0f;
    }
}
#endif

#if MODE == 1
#define EPX (16 / (int)sizeof(Elem<X_DT>::T))   // input elements per 16-byte chunk
#define LPB (BC / EPX)                                     // lanes per block
/// Mode 1: quantizes x (MT, K) into 1 x BC blocks in shared memory. Where a block is at most 32
/// chunks of 16 bytes, lane groups of LPB lanes hold one block each (4 chunks per thread in flight);
/// else one warp per block.
__device__ void quantize_input(const void* x, i8* xq, float* xs, int K, int KB) {
    const int lane = threadIdx.x & 31;
    if constexpr (LPB <= 32) {
        const int slots = MT * KB * LPB;  // chunk slots, rows and blocks padded to whole blocks
        // Warp-uniform trip count: the shuffles below need every lane of the warp.
        for (int base = threadIdx.x; base - lane < slots; base += 4 * blockDim.x) {
            float v[4][EPX];
            #pragma unroll
            for (int i = 0; i < 4; ++i) {
                const int slot = base + i * blockDim.x;
                const int blk = slot / LPB, m = blk / KB, k = (blk - m * KB) * BC + (slot % LPB) * EPX;
                if (slot < slots && k < K) {
                    load_vec<X_DT, EPX>(x, (i64)m * K + k, v[i]);
                } else {
                    #pragma unroll
                    for (int e = 0; e < EPX; ++e) v[i][e] = 0.0f;
                }
            }
            #pragma unroll
            for (int i = 0; i < 4; ++i) {
                const int slot = base + i * blockDim.x;
                const int blk = slot / LPB, m = blk / KB, k = (blk - m * KB) * BC + (slot % LPB) * EPX;
                u32 abits = 0;
                #pragma unroll
                for (int e = 0; e < EPX; ++e) abits = max(abits, __float_as_uint(v[i][e]) & 0x7fffffffu);
                #pragma unroll
                for (int o = LPB / 2; o > 0; o >>= 1) abits = max(abits, __shfl_xor_sync(0xffffffffu, abits, o));
                const float scale = abits != 0 ? i8_scale(__uint_as_float(abits)) : 0.0f;
                if (slot < slots && k < K) {
                    if (slot % LPB == 0) xs[blk] = scale;
                    // x / scale correctly rounded: a reciprocal and one FMA correction (Markstein) where
                    // 1 / scale is normal, else the true division.
                    const float r = scale >= 1.0e-30f && scale <= 1.0e30f ? __frcp_rn(scale) : 0.0f;
                    Pack<EPX> codes;
                    #pragma unroll
                    for (int e = 0; e < EPX; ++e) {
                        float t = 0.0f;
                        if (scale > 0.0f) {
                            if (r != 0.0f) {
                                const float y0 = __fmul_rn(v[i][e], r);
                                t = fmaf(fmaf(-scale, y0, v[i][e]), r, y0);
                            } else {
                                t = __fdiv_rn(v[i][e], scale);
                            }
                            t = TOWARD_ZERO ? truncf(t) : rintf(t);
                            t = fminf(fmaxf(t, -127.0f), 127.0f);
                        }
                        codes.b[e] = (u8)(i8)(int)t;
                    }
                    *(typename Vec<EPX>::T*)(xq + m * K + k) = codes.v;
                }
            }
        }
    } else {
        for (int blk = threadIdx.x >> 5; blk < MT * KB; blk += blockDim.x >> 5) {
            const int m = blk / KB, j = blk - m * KB;
            const int k0 = j * BC, len = min(BC, K - k0);
            u32 abits = 0;
            for (int e = lane; e < len; e += 32)
                abits = max(abits, __float_as_uint(load_f<X_DT>(x, (i64)m * K + k0 + e)) & 0x7fffffffu);
            #pragma unroll
            for (int o = 16; o > 0; o >>= 1) abits = max(abits, __shfl_xor_sync(0xffffffffu, abits, o));
            const float scale = abits != 0 ? i8_scale(__uint_as_float(abits)) : 0.0f;
            if (lane == 0) xs[blk] = scale;
            for (int e = lane; e < len; e += 32) {
                float t = 0.0f;
                if (scale > 0.0f) {
                    t = __fdiv_rn(load_f<X_DT>(x, (i64)m * K + k0 + e), scale);
                    t = TOWARD_ZERO ? truncf(t) : rintf(t);
                    t = fminf(fmaxf(t, -127.0f), 127.0f);
                }
                xq[m * K + k0 + e] = (i8)(int)t;
            }
        }
    }
}
#endif

extern "C" __global__ void __launch_bounds__(256) gemv_stream(
    const void* __restrict__ x, const float* __restrict__ sx, const u8* __restrict__ wq,
    const float* __restrict__ ws, const void* __restrict__ bias, void* __restrict__ y, int N, int K) {
    const int lane = threadIdx.x & 31;
    const int CK = K >> 4;
    const int batches = (CK + 32 * U - 1) / (32 * U);
#if MODE != 3
    const int KB = (K + BC - 1) / BC;
#endif
    const int warps = gridDim.x * (blockDim.x >> 5);
    int n = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    uint4 cur[U], nxt[U];
#if MODE != 1
    load_batch(cur, wq, n, 0, N, CK, lane);
#endif
    extern __shared__ __align__(16) u8 smem[];
#if W8A8_MODE
    float swc[PAIRS], swn[PAIRS];
    load_weight_scales(swc, ws, n, 0, N, KB, lane);
#if XS
    i8* xq = (i8*)smem;
    float* xs = (float*)(smem + align16(MT * K));
    int* stage = (int*)(smem + align16(align16(MT * K) + 4 * MT * KB))
        + (threadIdx.x >> 5) * (STAGE_INTS + PROD_FLOATS);
#if MODE == 1
    // The first batch is loaded after the quantization: issued before it, its registers would stay
    // live through it and raise the kernel's register count (fewer resident warps).
    quantize_input(x, xq, xs, K, KB);
    load_batch(cur, wq, n, 0, N, CK, lane);
#else
    copy_to_shared((u8*)xq, x, MT * K);
    for (int i = threadIdx.x; i < MT * KB; i += blockDim.x) xs[i] = sx[i];
#endif
    __syncthreads();
#else
    const i8* xq = (const i8*)x;
    const float* xs = sx;
    int* stage = (int*)smem + (threadIdx.x >> 5) * (STAGE_INTS + PROD_FLOATS);
#endif
    float* prod = (float*)(stage + STAGE_INTS);
    float acc = 0.0f;  // lane m < MT: row m's sum over the blocks so far
#else
#if XS
    copy_to_shared(smem, x, MT * K * (int)sizeof(Elem<X_DT>::T));
    __syncthreads();
    const void* xv_base = smem;
#else
    const void* xv_base = x;
#endif
    float acc[MT][4];  // four partial sums per row: independent FMA chains
    #pragma unroll
    for (int m = 0; m < MT; ++m) acc[m][0] = acc[m][1] = acc[m][2] = acc[m][3] = 0.0f;
#endif
    int b = 0;
    while (n < N) {
        int nn = n, nb = b + 1;
        if (nb == batches) { nb = 0; nn = n + warps; }
        load_batch(nxt, wq, nn, nb, N, CK, lane);
#if W8A8_MODE
        load_weight_scales(swn, ws, nn, nb, N, KB, lane);
        // 1. Each lane's chunk dot products, one per row, into the staging area.
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            const int c = b * 32 * U + u * 32 + lane;
            #pragma unroll
            for (int m = 0; m < MT; ++m) {
                int d = 0;
                if (c < CK) {
#if XS
                    const uint4 xv = *(const uint4*)(xq + m * K + c * 16);
#else
                    const uint4 xv = __ldg((const uint4*)(xq + (i64)m * K + c * 16));
#endif
                    d = dot16(xv, cur[u]);
                }
                stage[m * 32 * U + u * 32 + lane] = d;
            }
        }
        __syncwarp();
        // 2. One lane per (row, block): the block's exact int32 sum, then its product.
        #pragma unroll
        for (int t = 0; t < PAIRS; ++t) {
            const int pair = t * 32 + lane;
            if (pair < MT * BPB) {
                const int m = pair / BPB, jb = pair % BPB, j = b * BPB + jb;
                const int* part = stage + m * 32 * U + jb * CPB;
                int s = 0;
                if constexpr (CPB % 4 == 0) {
                    #pragma unroll
                    for (int g = 0; g < CPB; g += 4) {
                        const int4 q = *(const int4*)(part + g);
                        s += (q.x + q.y) + (q.z + q.w);
                    }
                } else {
                    #pragma unroll
                    for (int g = 0; g < CPB; ++g) s += part[g];
                }
                prod[m * BPB + jb] = j < KB ? (float)s * (xs[m * KB + j] * swc[t]) : 0.0f;
            }
        }
        __syncwarp();
        // 3. Lane m adds the batch's block products in increasing block order.
        if (lane < MT) {
            const int valid = min(BPB, KB - b * BPB);
            #pragma unroll
            for (int jb = 0; jb < BPB; ++jb)
                if (jb < valid) acc = acc + prod[lane * BPB + jb];
        }
        if (nb == 0) {  // row n is complete
            if (lane < MT)
                store_f<OUT_DT>(y, (i64)lane * N + n, acc + (bias ? load_f<BIAS_DT>(bias, n) : 0.0f));
            acc = 0.0f;
        }
        #pragma unroll
        for (int t = 0; t < PAIRS; ++t) swc[t] = swn[t];
#else
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            const int c = b * 32 * U + u * 32 + lane;
            if (c < CK) {
                const int k = c * 16;
                float wv[16];
                const u32 words[4] = {cur[u].x, cur[u].y, cur[u].z, cur[u].w};
                #pragma unroll
                for (int q = 0; q < 4; ++q) {
#if MODE == 2
                    const u32 flipped = words[q] ^ 0x80808080u;
                    #pragma unroll
                    for (int e = 0; e < 4; ++e) wv[4 * q + e] = i8_byte_to_f32(flipped, e);
#elif __CUDA_ARCH__ >= 890
                    // Two codes per conversion (e4m3x2 -> f16x2, exact), then f16 -> f32.
                    #pragma unroll
                    for (int e = 0; e < 4; e += 2) {
                        u32 pair;
                        asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(pair) : "h"((u16)(words[q] >> (8 * e))));
                        wv[4 * q + e] = f16_to_f32((u16)(pair & 0xffff));
                        wv[4 * q + e + 1] = f16_to_f32((u16)(pair >> 16));
                    }
#else
                    #pragma unroll
                    for (int e = 0; e < 4; ++e) wv[4 * q + e] = e4m3_to_f32((u8)(words[q] >> (8 * e)));
#endif
                }
#if MODE == 2
                const float* srow = ws + (i64)(n / BR) * KB;
                #pragma unroll
                for (int e = 0; e < 16; ++e) wv[e] = __fmul_rn(wv[e], srow[(BC % 16 == 0) ? k / BC : (k + e) / BC]);
#else
                const float s = ws[0];
                #pragma unroll
                for (int e = 0; e < 16; ++e) wv[e] = __fmul_rn(wv[e], s);
#endif
                #pragma unroll
                for (int m = 0; m < MT; ++m) {
                    float xv[16];
                    load_vec<X_DT, 16>(xv_base, (i64)m * K + k, xv);
                    #pragma unroll
                    for (int e = 0; e < 16; ++e) acc[m][e & 3] = fmaf(xv[e], wv[e], acc[m][e & 3]);
                }
            }
        }
        if (nb == 0) {  // row n is complete
            #pragma unroll
            for (int m = 0; m < MT; ++m) {
                const float total = warp_sum((acc[m][0] + acc[m][1]) + (acc[m][2] + acc[m][3]));
                if (lane == 0)
                    store_f<OUT_DT>(y, (i64)m * N + n, total + (bias ? load_f<BIAS_DT>(bias, n) : 0.0f));
                acc[m][0] = acc[m][1] = acc[m][2] = acc[m][3] = 0.0f;
            }
        }
#endif
        #pragma unroll
        for (int u = 0; u < U; ++u) cur[u] = nxt[u];
        n = nn;
        b = nb;
    }
}
