// Decode-shape linear kernels (1 <= M <= 16 rows): `gemv_stream`, that streams each weight row once
// from memory (every mode), and with `TC` defined `gemv_w8a8_mma` (W8A8, modes 0 and 1) and `gemv_wo_mma`
// (weight-only, modes 2 and 3) on the tensor cores (see there), specialised with `-D`:
// - `MODE` 0: INT8 W8A8 on given activation codes `qx` (M, K) int8 and scales `sx` (M, KB);
//   1: INT8 W8A8 on a float input `x` (M, K) of dtype `X_DT`, quantized inside the kernel into
//   shared memory (1 x `BC` blocks, exactly the activation quantizer: `scale = amax / 127`, `q =
//   clamp(round(x / scale))`, NaN-propagating amax), so the op is one launch;
//   2: INT8 weight-only, `w = q * s` (`BR` x `BC` weight blocks); 3: FP8 weight-only, `w = e4m3(q) * s`;
//   4 (`gemv_wo_mma` only): FP8 W8A8 on a float input, quantized inside the kernel (`fp8_stage`).
// - `MT` = M, `OUT_DT`, `BIAS_DT`, `TOWARD_ZERO` (mode 1's rounding), `U` 16-byte chunks per lane per
//   batch, `XS` 1 when the input is copied into shared memory first (mode 1 always; modes 0, 2, 3 where
//   it fits), 0 when it is read from global memory.
//
// Arithmetic (NOTES.md, "Numerics decisions"): W8A8 computes each K block's int32 sum exactly (dp4a over 16-byte chunks,
// the chunks' sums added as integers), then `acc = acc + float(sum_j) * (sx[m,j] * sw[n/BR, j])` in
// float32 in increasing j, bias added last, rounded once to `OUT_DT`: the CPU reference's value exactly.
// Weight-only (`gemv_stream`): `y = sum_k x * w` in float32 (fused multiply-adds into four partial sums
// per lane and row, added and summed over the warp by a reduction), bias added last.
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
// Mode 1's quantizer rounds with the magic-number add where the block's reciprocal is normal (no
// float-to-int or round instruction per element: 0.66 -> 0.70 of copy at 2 x 18432 x 3072).
// Measured on the H200 at M = 2 (scripts/gpu/membound_harness.py, NOTES.md issue 10): W8A8 0.70-0.92
// of the copy bandwidth; weight-only here 0.40-0.56 (issue-bound on the per-element decode and FMAs;
// `gemv_wo_mma` 0.61-0.81, used wherever it applies).
// - `PDL` 1 (sm_90+, launched with programmatic stream serialization): programmatic dependent launch. The
//   kernel lets the next kernel of the stream start (`griddepcontrol.launch_dependents`) as soon as it runs,
//   and before its own `griddepcontrol.wait` (which returns once the previous kernel of the stream has
//   completed and its writes are visible) it only asks L2 to prefetch the first weight rows it will
//   stream, `PF` MiB over the grid (gemv_stream: the CTA's 8 rows of its first rounds; the tensor-core
//   kernels: its first 16-row tiles). Prefetching changes no value (L2 is the point of coherence and the SM keeps
//   no copy), so a weight that the previous kernel writes still reads correctly; x, the weights and scales
//   and the bias are read and y is written only after the wait. So the launch, the CTAs' start and the
//   first DRAM round trip may overlap the previous kernel's tail. Measured on the H200 (bench-cuda, 5B
//   M = 2): 18.7 -> 17.3 us (W8A8), 19.4 -> 17.6 (FP8 W8A8), all of it from the prefetch (PF = 0 is within
//   0.3 us of a plain launch); that the grids overlap was not shown (NOTES.md, issue 10 session 9).
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
#ifndef PDL
#define PDL 0
#endif
#ifndef PF
#define PF 1
#endif
#define W8A8_MODE (MODE == 0 || MODE == 1)

/// Asks L2 to fetch `bytes` from `p` (one prefetch per 128-byte line, spread over the block's threads).
__device__ __forceinline__ void l2_prefetch(const u8* p, i64 bytes) {
    for (i64 o = (i64)threadIdx.x * 128; o < bytes; o += (i64)blockDim.x * 128)
        asm volatile("prefetch.global.L2 [%0];" :: "l"(p + o));
}

/// PDL's prologue (see the header): lets the next kernel launch, asks L2 for this CTA's share of `PF` MiB of
/// weight, PF 2^20 / gridDim.x bytes from the start of its units u = 0, 1, ... ([first + u stride, + unit),
/// each cut at `end`), then waits for the previous kernel. Nothing here reads or writes memory that another
/// kernel may write.
__device__ __forceinline__ void pdl_prologue(const u8* first, i64 stride, i64 unit, const u8* end) {
#if PDL
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
    i64 left = ((i64)PF << 20) / gridDim.x;
    for (const u8* p = first; left > 0 && p < end; p += stride) {
        const i64 bytes = min(min(unit, left), (i64)(end - p));
        l2_prefetch(p, bytes);
        left -= bytes;
    }
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

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
/// Mode 1: quantizes x (MT, K) into 1 x BC blocks in shared memory (row m's codes at xq + m ldq). Where a
/// block is at most 32 chunks of 16 bytes, lane groups of LPB lanes hold one block each (4 chunks per thread
/// in flight); else one warp per block.
__device__ void quantize_input(const void* x, i8* xq, float* xs, int K, int KB, int ldq) {
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
                    u32 bits[EPX];
                    if (r != 0.0f) {
                        // A finite block: |x / scale| <= 127, so no clamp, and the rounded quotient's
                        // two's complement byte is the low byte of t + 1.5 * 2^23 (no float-to-int unit).
                        #pragma unroll
                        for (int e = 0; e < EPX; ++e) {
                            const float y0 = __fmul_rn(v[i][e], r);
                            const float t = fmaf(fmaf(-scale, y0, v[i][e]), r, y0);
                            if (TOWARD_ZERO) {
                                const int c = __float_as_int(__fadd_rz(fabsf(t), 12582912.0f)) - 0x4B400000;
                                bits[e] = (u32)(t < 0.0f ? -c : c);
                            } else {
                                bits[e] = (u32)__float_as_int(__fadd_rn(t, 12582912.0f));
                            }
                        }
                    } else {
                        #pragma unroll
                        for (int e = 0; e < EPX; ++e) {
                            float t = 0.0f;
                            if (scale > 0.0f) {
                                t = __fdiv_rn(v[i][e], scale);
                                t = TOWARD_ZERO ? truncf(t) : rintf(t);
                                t = fminf(fmaxf(t, -127.0f), 127.0f);
                            }
                            bits[e] = (u32)(u8)(i8)(int)t;
                        }
                    }
                    union { typename Vec<EPX>::T v; u32 w[EPX / 4]; } codes;
                    #pragma unroll
                    for (int q = 0; q < EPX / 4; ++q)
                        codes.w[q] = __byte_perm(__byte_perm(bits[4 * q], bits[4 * q + 1], 0x0040),
                                                 __byte_perm(bits[4 * q + 2], bits[4 * q + 3], 0x0040), 0x5410);
                    *(typename Vec<EPX>::T*)(xq + m * ldq + k) = codes.v;
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
                xq[m * ldq + k0 + e] = (i8)(int)t;
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
#if MODE <= 2
    const int KB = (K + BC - 1) / BC;
#endif
    const int warps = gridDim.x * (blockDim.x >> 5);
    int n = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    // The CTA's 8 rows of round r start at row blockIdx.x * 8 + r * warps.
    pdl_prologue(wq + (i64)blockIdx.x * (blockDim.x >> 5) * K, (i64)warps * K, (i64)(blockDim.x >> 5) * K,
                 wq + (i64)N * K);
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
    quantize_input(x, xq, xs, K, KB, K);
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

#if defined(TC)
// Weight-only on the tensor cores (`TC` defined): `gemv_wo_mma`, for MT <= 16 and, in mode 2,
// BC % 64 == 0 (every 64-element segment of a row in one weight block). Mode 4 (FP8 W8A8) runs the FP8
// weight path on the input's e4m3 codes (`fp8_stage`), with no per-segment scale and no recomputation:
// y = (sum_k qx qw) * (sx * sw) + bias.
//
// Arithmetic: each weight code's exact value (int8, or e4m3) is a float16 operand. Input row m is
// scaled by a power of two, 2^-e_m (its largest |x| into [2^14, 2^15)), and split into float16
// pieces: one for bf16 / f16 inputs, three for f32 (hi + mid + lo: 33 bits), staged once per CTA in
// shared memory; what a piece cannot hold is below 2^-24 after scaling, i.e. under 2^-38 of the
// row's largest |x|. `mma.m16n8k16` f16 with float32 accumulation sums each 64-element segment of
// a weight row: D = sum_k x'[m,k] q[n,k] (products exact), then `acc = fma(s, D, acc)` with the
// segment's block scale s, and y = 2^e_m acc + bias: the scale is applied per segment instead of per
// element (w = q * s), a different rounding of the same sum (NOTES.md, issue 10 round 3; the GPU
// tests compare weight-only within 1e-6 of the float64 value). An output that comes out non-finite
// (a non-finite input or scale, or a sum past the float range) is recomputed by the whole warp in
// the contract's arithmetic, `sum_k x * (q * s)` in float32 from the global input, so NaN and
// infinity appear exactly where that arithmetic gives them.
//
// Layout: the CTA (8 warps) owns 16 weight rows at a time (tiles n0 = 16 (blockIdx.x + i gridDim.x));
// warp w takes the row's segments [w SPW, (w + 1) SPW). Lane (g = lane / 4, t = lane % 4) loads 16
// bytes at k = 64 s + 16 t of rows n0 + g and n0 + g + 8 (the quad of a row reads 64 contiguous
// bytes); mma step e uses bytes 4e...4e + 3 of them as the A fragment's columns 2t, 2t + 1, 2t + 8,
// 2t + 9, and the same k of x row g (the B fragment): the sum over k is the same in any order. U
// segments per warp are in flight (the next batch loaded before the current one is used, across
// tiles). At a tile's end the 8 warps' partial sums meet in shared memory and warp 0 adds them in warp
// order, scales, adds the bias and stores.
#define NT ((MT + 7) / 8)                    // n8 tiles of x rows
#if MODE >= 2
#define PIECES (MODE != 4 && X_DT == DT_F32 ? 3 : 1)  // float16 pieces of x (FP8 W8A8: its codes' values)

/// Staged row stride in 32-bit words (two float16 each): K rounded up to 64, then = 4 (mod 32) words,
/// so that the quad's 16-byte reads of rows g and g + 1 (one phase of LDS.128) fall in different banks.
__device__ __forceinline__ int wo_row_words(int K) { return ((K + 63) & ~63) / 2 + 4; }

__device__ __forceinline__ void mma_f16(float* d, u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/// Codes 0, 1 (`lo`) and 2, 3 (`hi`) of a word as float16 pairs (exact): INT8 through the halves
/// 1024 + (q + 128) (two byte permutes into 0x64XX) minus 1152; FP8 with the e4m3x2 conversion.
__device__ __forceinline__ void wo_decode_word(u32 word, u32& lo, u32& hi) {
#if MODE == 2
    const u32 flipped = word ^ 0x80808080u;
    const u32 minus = 0xE480E480u;  // -1152, -1152
    lo = __byte_perm(flipped, 0x64u, 0x4140u);
    hi = __byte_perm(flipped, 0x64u, 0x4342u);
    asm("add.rn.f16x2 %0, %0, %1;" : "+r"(lo) : "r"(minus));
    asm("add.rn.f16x2 %0, %0, %1;" : "+r"(hi) : "r"(minus));
#elif __CUDA_ARCH__ >= 890
    asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(lo) : "h"((u16)(word & 0xffff)));
    asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(hi) : "h"((u16)(word >> 16)));
#else
    const auto half = [](u32 w, int i) { return (u32)f32_to_f16(e4m3_to_f32((u8)(w >> (8 * i)))); };
    lo = half(word, 0) | (half(word, 1) << 16);
    hi = half(word, 2) | (half(word, 3) << 16);
#endif
}

/// The weight value w = q * s of the contract (the recomputation of a non-finite output).
__device__ __forceinline__ float wo_weight(const u8* wq, const float* ws, int n, int k, int K) {
    const u8 c = wq[(i64)n * K + k];
#if MODE == 2
    return __fmul_rn((float)(i8)c, ws[(i64)(n / BR) * ((K + BC - 1) / BC) + k / BC]);
#else
    return __fmul_rn(e4m3_to_f32(c), ws[0]);
#endif
}

/// The contract's `sum_k x[m,k] * (q[n,k] * s) + bias` in float32, by the whole warp (lane-strided k,
/// then a shuffle sum): the value of an output the tensor-core sum made non-finite.
__device__ __forceinline__ float wo_contract_sum(const void* x, const u8* wq, const float* ws, int m, int n, int K,
                                                 float bias_n) {
    float a = 0.0f;
    for (int k = threadIdx.x & 31; k < K; k += 32)
        a = fmaf(load_f<X_DT>(x, (i64)m * K + k), wo_weight(wq, ws, n, k, K), a);
    return warp_sum(a) + bias_n;
}

#endif

/// This lane's weight rows n0 + g and n0 + g + 8 of a tile: their first chunk (k = 64 s0 + 16 t) and,
/// for INT8 (W8A8 or weight-only), their weight-scale rows; null past N or past the last tile.
struct WoTile {
    const u8* row[2];
    const float* srow[2];
};

__device__ __forceinline__ WoTile wo_tile(const u8* wq, const float* ws, int tile, int tiles, int N, int K, int s0,
                                          int g, int t) {
    WoTile r;
    #pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int n = 16 * tile + g + 8 * h;
        const bool ok = tile < tiles && n < N;
        r.row[h] = ok ? wq + (i64)n * K + 64 * s0 + 16 * t : nullptr;
        r.srow[h] = ok ? ws + (MODE <= 2 ? (i64)(n / BR) * ((K + BC - 1) / BC) : 0) : nullptr;
    }
    return r;
}

/// Loads batch `b` of a tile: the lane's chunks of segments s0 + b U + u (zeros from the lane's
/// `lane_segs`-th on: past K) and, for INT8 (W8A8 or weight-only),
/// the segments' scales of both rows (up to `warp_segs`).
__device__ __forceinline__ void wo_load(uint4 (&w)[U][2], float (&sc)[U][2], const WoTile& tile, int b, int s0,
                                        int lane_segs, int warp_segs) {
    #pragma unroll
    for (int u = 0; u < U; ++u) {
        const int i = b * U + u;
        #pragma unroll
        for (int h = 0; h < 2; ++h) {
            w[u][h] = tile.row[h] && i < lane_segs ? ld_stream(tile.row[h] + 64 * i) : make_uint4(0, 0, 0, 0);
#if MODE <= 2
            sc[u][h] = tile.srow[h] && i < warp_segs ? __ldg(tile.srow[h] + (64 * (s0 + i)) / BC) : 0.0f;
#endif
        }
    }
}

#if MODE >= 2
/// Stages x (MT, K) into shared memory as float16 pieces of x 2^-e_m, K rounded up to 64 with zeros,
/// and e_m into `row_exp`; `row_max` (MT words, zero) collects max |x| of each row (as bits: a NaN's
/// exceed infinity's, so a non-finite row gets e_m = 0 and its non-finite pieces).
__device__ void wo_stage(const void* x, u32* xs, u32* row_max, int* row_exp, int K, int RW) {
    constexpr int EPX = 16 / (int)sizeof(typename Elem<X_DT>::T);
    const int K64 = (K + 63) & ~63, per_row = K64 / EPX;
    for (int c = threadIdx.x; c < MT * per_row; c += blockDim.x) {
        const int m = c / per_row, k = (c - m * per_row) * EPX;
        if (k < K) {
            float v[EPX];
            load_vec<X_DT, EPX>(x, (i64)m * K + k, v);
            u32 a = 0;
            #pragma unroll
            for (int e = 0; e < EPX; ++e) a = max(a, __float_as_uint(v[e]) & 0x7fffffffu);
            atomicMax(row_max + m, a);
        }
    }
    __syncthreads();
    if (threadIdx.x < MT) {
        const u32 a = row_max[threadIdx.x];
        row_exp[threadIdx.x] = a == 0 || a >= 0x7f800000u ? 0 : (int)(a >> 23) - 127 - 14;
    }
    __syncthreads();
    for (int c = threadIdx.x; c < MT * per_row; c += blockDim.x) {
        const int m = c / per_row, k = (c - m * per_row) * EPX;
        float v[EPX];
        if (k < K) {
            load_vec<X_DT, EPX>(x, (i64)m * K + k, v);
            #pragma unroll
            for (int e = 0; e < EPX; ++e) v[e] = ldexpf(v[e], -row_exp[m]);
        } else {
            #pragma unroll
            for (int e = 0; e < EPX; ++e) v[e] = 0.0f;
        }
        #pragma unroll
        for (int p = 0; p < PIECES; ++p) {
            u32 words[EPX / 2];
            #pragma unroll
            for (int e = 0; e < EPX; e += 2) {
                const u16 h0 = f32_to_f16(v[e]), h1 = f32_to_f16(v[e + 1]);
                words[e / 2] = (u32)h0 | ((u32)h1 << 16);
                v[e] = __fsub_rn(v[e], f16_to_f32(h0));
                v[e + 1] = __fsub_rn(v[e + 1], f16_to_f32(h1));
            }
            u32* dst = xs + (p * MT + m) * RW + k / 2;
            if constexpr (EPX == 8) {
                *(uint4*)dst = make_uint4(words[0], words[1], words[2], words[3]);
            } else {
                *(uint2*)dst = make_uint2(words[0], words[1]);
            }
        }
    }
    if (threadIdx.x < 8) xs[PIECES * MT * RW + threadIdx.x] = 0u;
    __syncthreads();
}

#if MODE == 4
/// FP8 W8A8: quantizes x (MT, K) as the linear's FP8 input quantizer does (`fp8_amax` + `fp8_encode`:
/// amax of |x| over the tensor, NaN where any value is not finite; scale = amax / 448, 1 when amax is 0,
/// NaN when it is NaN (so every output is NaN: non-finite inputs propagate); code = e4m3(clamp(x / scale, -448, 448)), the quotient correctly rounded) and stages the codes'
/// values as float16 (exact) in wo_stage's layout (one piece, K rounded up to 64 with zeros); returns the
/// scale. `row_max` (one zero word) collects the amax bits.
__device__ float fp8_stage(const void* x, u32* xs, u32* row_max, int K, int RW) {
    constexpr int EPX = 16 / (int)sizeof(typename Elem<X_DT>::T);
    const int K64 = (K + 63) & ~63, per_row = K64 / EPX;
    u32 a = 0;
    for (int c = threadIdx.x; c < MT * per_row; c += blockDim.x) {
        const int m = c / per_row, k = (c - m * per_row) * EPX;
        if (k < K) {
            float v[EPX];
            load_vec<X_DT, EPX>(x, (i64)m * K + k, v);
            #pragma unroll
            for (int e = 0; e < EPX; ++e)
                a = is_finite(v[e]) ? max(a, __float_as_uint(v[e]) & 0x7fffffffu) : 0x7fc00000u;
        }
    }
    a = __reduce_max_sync(0xffffffffu, a);
    if ((threadIdx.x & 31) == 0) atomicMax(row_max, a);
    __syncthreads();
    const float amax = __uint_as_float(row_max[0]);
    const float scale = amax > 0.0f || amax != amax ? __fdiv_rn(amax, 448.0f) : 1.0f;
    const float r = scale >= 1.0e-30f && scale <= 1.0e30f ? __frcp_rn(scale) : 0.0f;
    for (int c = threadIdx.x; c < MT * per_row; c += blockDim.x) {
        const int m = c / per_row, k = (c - m * per_row) * EPX;
        float v[EPX];
        if (k < K) {
            load_vec<X_DT, EPX>(x, (i64)m * K + k, v);
        } else {
            #pragma unroll
            for (int e = 0; e < EPX; ++e) v[e] = 0.0f;
        }
        u32 words[EPX / 2];
        #pragma unroll
        for (int e = 0; e < EPX; e += 2) {
            u16 h[2];
            #pragma unroll
            for (int i = 0; i < 2; ++i) {
                float q = r != 0.0f ? fmaf(fmaf(-scale, __fmul_rn(v[e + i], r), v[e + i]), r, __fmul_rn(v[e + i], r))
                                    : __fdiv_rn(v[e + i], scale);
                h[i] = f32_to_f16(e4m3_to_f32(f32_to_e4m3(fminf(fmaxf(q, -448.0f), 448.0f))));
            }
            words[e / 2] = (u32)h[0] | ((u32)h[1] << 16);
        }
        u32* dst = xs + m * RW + k / 2;
        if constexpr (EPX == 8) {
            *(uint4*)dst = make_uint4(words[0], words[1], words[2], words[3]);
        } else {
            *(uint2*)dst = make_uint2(words[0], words[1]);
        }
    }
    if (threadIdx.x < 8) xs[MT * RW + threadIdx.x] = 0u;
    __syncthreads();
    return scale;
}
#endif

extern "C" __global__ void __launch_bounds__(256) gemv_wo_mma(
    const void* __restrict__ x, const float* __restrict__ sx, const u8* __restrict__ wq,
    const float* __restrict__ ws, const void* __restrict__ bias, void* __restrict__ y, int N, int K) {
    extern __shared__ __align__(16) u8 smem[];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int KS = (K + 63) >> 6, SPW = (KS + 7) >> 3, BPT = (SPW + U - 1) / U;
    const int s0 = warp * SPW, warp_segs = max(0, min(KS, s0 + SPW) - s0);
    const int lane_segs = max(0, min(s0 + warp_segs, (K - 16 * t + 63) >> 6) - s0);  // chunks with k < K
    const int tiles = (N + 15) >> 4;
    const int mine = blockIdx.x < tiles ? (tiles - 1 - blockIdx.x) / gridDim.x + 1 : 0;  // tiles of this CTA
    const int RW = wo_row_words(K);
    u32* xs = (u32*)smem;                                // PIECES x MT rows of RW words, then 8 zero words
    float* red = (float*)(xs + PIECES * MT * RW + 8);    // 2 x 8 warps x 4 NT x 32 lanes
    u32* row_max = (u32*)(red + 2 * 8 * 4 * NT * 32);    // MT
#if MODE != 4
    int* row_exp = (int*)(row_max + 16);                 // MT
#endif
    // The CTA's tile r is rows 16 (blockIdx.x + r gridDim.x) ... + 15.
    pdl_prologue(wq + (i64)blockIdx.x * 16 * K, (i64)gridDim.x * 16 * K, (i64)16 * K, wq + (i64)N * K);
#if MODE == 3
    const float s_all = ws[0];
#elif MODE == 4
    const float s_all = 1.0f;  // the segments' sums are added exactly as they are; the scales at the end
#endif

    // The first batch is in flight while x is staged.
    uint4 wa[U][2], wb[U][2];
    float sa[U][2], sb[U][2];
    int load_tile = blockIdx.x, load_batch = 0;
    WoTile lt = wo_tile(wq, ws, load_tile, tiles, N, K, s0, g, t);
    wo_load(wa, sa, lt, 0, s0, lane_segs, warp_segs);
    if (threadIdx.x < 16) row_max[threadIdx.x] = 0u;
    __syncthreads();
#if MODE == 4
    const float sxw = __fmul_rn(fp8_stage(x, xs, row_max, K, RW), ws[0]);
#else
    wo_stage(x, xs, row_max, row_exp, K, RW);
#endif

    // Row g of n8 tile j, piece p (words); rows past MT read the 8 zero words after the pieces.
    int xrow[NT][PIECES];
    #pragma unroll
    for (int j = 0; j < NT; ++j) {
        #pragma unroll
        for (int p = 0; p < PIECES; ++p) xrow[j][p] = 8 * j + g < MT ? (p * MT + 8 * j + g) * RW : PIECES * MT * RW;
    }
    float acc[NT][4];
    #pragma unroll
    for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
    int round = 0, batch = 0;  // the batch being computed: tile blockIdx.x + round gridDim.x

    // One batch: issue the next batch's loads into (wn, sn), then multiply (wc, sc). (Calling it twice per
    // trip with the buffers swapped, instead of copying them, took 104-137 registers and ran slower.)
    auto step = [&](uint4 (&wc)[U][2], float (&sc)[U][2], uint4 (&wn)[U][2], float (&sn)[U][2]) {
        if (++load_batch == BPT) {
            load_batch = 0;
            load_tile += gridDim.x;
            lt = wo_tile(wq, ws, load_tile, tiles, N, K, s0, g, t);
        }
        wo_load(wn, sn, lt, load_batch, s0, lane_segs, warp_segs);
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            const int i = batch * U + u;
            if (i < warp_segs) {
                float d[NT][4];
                #pragma unroll
                for (int j = 0; j < NT; ++j) d[j][0] = d[j][1] = d[j][2] = d[j][3] = 0.0f;
                // x (m, 64 s + 16 t + 4 e ... + 3) is at words xrow[j][p] + 32 s + 8 t + 2 e, + 1.
                const int kofs = 32 * (s0 + i) + 8 * t;
                int ko[NT];
                #pragma unroll
                for (int j = 0; j < NT; ++j) ko[j] = 8 * j + g < MT ? kofs : 0;
                const u32 lo_words[4] = {wc[u][0].x, wc[u][0].y, wc[u][0].z, wc[u][0].w};
                const u32 hi_words[4] = {wc[u][1].x, wc[u][1].y, wc[u][1].z, wc[u][1].w};
                #pragma unroll
                for (int e = 0; e < 4; ++e) {
                    u32 a0, a2, a1, a3;
                    wo_decode_word(lo_words[e], a0, a2);
                    wo_decode_word(hi_words[e], a1, a3);
                    #pragma unroll
                    for (int j = 0; j < NT; ++j) {
                        #pragma unroll
                        for (int p = 0; p < PIECES; ++p) {
                            const uint2 bv = *(const uint2*)(xs + xrow[j][p] + ko[j] + 2 * e);
                            mma_f16(d[j], a0, a1, a2, a3, bv.x, bv.y);
                        }
                    }
                }
#if MODE == 2
                const float s_lo = sc[u][0], s_hi = sc[u][1];
#else
                const float s_lo = s_all, s_hi = s_all;
#endif
                #pragma unroll
                for (int j = 0; j < NT; ++j) {
                    acc[j][0] = fmaf(s_lo, d[j][0], acc[j][0]);
                    acc[j][1] = fmaf(s_lo, d[j][1], acc[j][1]);
                    acc[j][2] = fmaf(s_hi, d[j][2], acc[j][2]);
                    acc[j][3] = fmaf(s_hi, d[j][3], acc[j][3]);
                }
            }
        }
        if (++batch < BPT) return;
        // The tile is done: the warps' sums meet in shared memory (two buffers, one barrier per tile).
        const int tile = blockIdx.x + round * gridDim.x;
        float* buf = red + (round & 1) * (8 * 4 * NT * 32);
        batch = 0;
        ++round;
        #pragma unroll
        for (int j = 0; j < NT; ++j) {
            #pragma unroll
            for (int e = 0; e < 4; ++e) {
                buf[(warp * 4 * NT + 4 * j + e) * 32 + lane] = acc[j][e];
                acc[j][e] = 0.0f;
            }
        }
        __syncthreads();
        if (warp != 0) return;
        #pragma unroll
        for (int c = 0; c < 4 * NT; ++c) {
            const int m = 8 * (c >> 2) + 2 * t + (c & 1), n = 16 * tile + g + 8 * ((c >> 1) & 1);
            const bool output = m < MT && n < N;
            float v = 0.0f;
            #pragma unroll
            for (int w = 0; w < 8; ++w) v = v + buf[(w * 4 * NT + c) * 32 + lane];
            const float bn = output && bias ? load_f<BIAS_DT>(bias, n) : 0.0f;
#if MODE == 4
            v = __fmul_rn(v, sxw) + bn;  // (sum_k qx qw) * (sx * sw) + b
#else
            v = ldexpf(v, output ? row_exp[m] : 0) + bn;
            // A non-finite input or scale, or a sum past the float range: the contract's sum, by the warp.
            for (u32 bad = __ballot_sync(0xffffffffu, output && !is_finite(v)); bad; bad &= bad - 1) {
                const int src = __ffs(bad) - 1;
                const float exact = wo_contract_sum(x, wq, ws, __shfl_sync(0xffffffffu, m, src),
                                                    __shfl_sync(0xffffffffu, n, src), K,
                                                    __shfl_sync(0xffffffffu, bn, src));
                if (lane == src) v = exact;
            }
#endif
            if (output) store_f<OUT_DT>(y, (i64)m * N + n, v);
        }
    };
    const int items = mine * BPT;
    for (int item = 0; item < items; ++item) {
        step(wa, sa, wb, sb);
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            wa[u][0] = wb[u][0];
            wa[u][1] = wb[u][1];
            sa[u][0] = sb[u][0];
            sa[u][1] = sb[u][1];
        }
    }
}
#endif

#if W8A8_MODE
// INT8 W8A8 on the tensor cores (`TC` defined): `gemv_w8a8_mma`, for MT <= 16 and BC % 64 == 0 (every
// 64-element segment of a row in one K block). Mode 1 quantizes x inside the kernel (`quantize_input`,
// the same codes and scales as `gemv_stream`), mode 0 copies the given codes and scales.
//
// Arithmetic: exactly gemv_stream's (the contract of NOTES.md "Numerics decisions"). The weight codes are
// the A operand of `mma.m16n8k32` s8 x s8 -> s32 (16 weight rows), the activation codes the B operand (8
// tokens per n8 tile, two tiles for MT > 8), so each K block's sum accumulates exactly in int32; at the
// block's end the lane forms `float(S) * (sx[m,j] * sw[n/BR,j])` for its four (row, token) sums and stores
// it to shared memory; at the tile's end one thread per output adds the KB products in increasing j from
// 0.0f and the bias last: bit-identical to gemv_stream and the CPU reference.
//
// Layout: gemv_wo_mma's (16-row tiles, lane (g, t) loads 16 bytes at k = 64 s + 16 t of rows g and g + 8,
// U segments in flight across tiles), but the 8 warps split K by whole blocks (warp w: blocks
// [w BPW, (w + 1) BPW)). mma step e (0, 1) takes words 2e, 2e + 1 of the lane's chunk as the A columns
// 4t...4t + 3 and 16 + 4t...16 + 4t + 3, and the same k of token g's codes (one 16-byte LDS per segment and
// n8 tile) as B. The codes are staged with row stride `w8_row_bytes` (16 (mod 128) words apart: one LDS.128
// phase of 8 lanes hits 32 distinct banks). The products sit in two buffers (tile parity) of KB x 16 x MT
// floats, so the adding threads of one tile run while the other warps stream the next.
#define SPB (BC / 64)  // 64-element segments per K block

/// Staged code row stride in bytes: K rounded up to 64, then 64 (mod 128) bytes (16 words mod 32).
__device__ __forceinline__ int w8_row_bytes(int K) {
    const int k64 = (K + 63) & ~63;
    return (k64 & 127) ? k64 : k64 + 64;
}

__device__ __forceinline__ void mma_s8(int* d, u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};"
                 : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

extern "C" __global__ void __launch_bounds__(256) gemv_w8a8_mma(
    const void* __restrict__ x, const float* __restrict__ sx, const u8* __restrict__ wq,
    const float* __restrict__ ws, const void* __restrict__ bias, void* __restrict__ y, int N, int K) {
    extern __shared__ __align__(16) u8 smem[];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int KS = (K + 63) >> 6, KB = (K + BC - 1) / BC, BPW = (KB + 7) >> 3, BPT = (BPW * SPB + U - 1) / U;
    const int j0 = warp * BPW, s0 = j0 * SPB;
    const int warp_segs = max(0, min(KS, s0 + BPW * SPB) - s0);
    const int lane_segs = max(0, min(s0 + warp_segs, (K - 16 * t + 63) >> 6) - s0);  // chunks with k < K
    const int tiles = (N + 15) >> 4;
    const int mine = blockIdx.x < tiles ? (tiles - 1 - blockIdx.x) / gridDim.x + 1 : 0;  // tiles of this CTA
    const int RS = w8_row_bytes(K);
    i8* xq = (i8*)smem;                                      // MT rows of RS bytes
    float* xsc = (float*)(smem + MT * RS);                   // MT x KB activation scales
    float* prod = xsc + ((MT * KB + 3) & ~3);                // 2 x KB x 16 x MT block products

    pdl_prologue(wq + (i64)blockIdx.x * 16 * K, (i64)gridDim.x * 16 * K, (i64)16 * K, wq + (i64)N * K);
    // The first batch is in flight while x is quantized (or copied).
    uint4 wa[U][2], wb[U][2];
    float sa[U][2], sb[U][2];
    int load_tile = blockIdx.x, load_batch = 0;
    WoTile lt = wo_tile(wq, ws, load_tile, tiles, N, K, s0, g, t);
    wo_load(wa, sa, lt, 0, s0, lane_segs, warp_segs);
#if MODE == 1
    quantize_input(x, xq, xsc, K, KB, RS);
#else
    for (int c = threadIdx.x; c < MT * (K >> 4); c += blockDim.x) {
        const int m = c / (K >> 4), k = (c - m * (K >> 4)) * 16;
        *(uint4*)(xq + m * RS + k) = __ldg((const uint4*)((const i8*)x + (i64)m * K + k));
    }
    for (int i = threadIdx.x; i < MT * KB; i += blockDim.x) xsc[i] = sx[i];
#endif
    __syncthreads();

    int iacc[NT][4];
    #pragma unroll
    for (int j = 0; j < NT; ++j) iacc[j][0] = iacc[j][1] = iacc[j][2] = iacc[j][3] = 0;
    int round = 0, batch = 0;  // the batch being computed: tile blockIdx.x + round gridDim.x

    auto step = [&](uint4 (&wc)[U][2], float (&sc)[U][2], uint4 (&wn)[U][2], float (&sn)[U][2]) {
        if (++load_batch == BPT) {
            load_batch = 0;
            load_tile += gridDim.x;
            lt = wo_tile(wq, ws, load_tile, tiles, N, K, s0, g, t);
        }
        wo_load(wn, sn, lt, load_batch, s0, lane_segs, warp_segs);
        float* buf = prod + (round & 1) * (KB * 16 * MT);
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            const int i = batch * U + u;
            if (i < warp_segs) {
                const int kofs = 64 * (s0 + i) + 16 * t;
                #pragma unroll
                for (int j = 0; j < NT; ++j) {
                    const int m = 8 * j + g;
                    const uint4 bv = m < MT ? *(const uint4*)(xq + m * RS + kofs) : make_uint4(0, 0, 0, 0);
                    mma_s8(iacc[j], wc[u][0].x, wc[u][1].x, wc[u][0].y, wc[u][1].y, bv.x, bv.y);
                    mma_s8(iacc[j], wc[u][0].z, wc[u][1].z, wc[u][0].w, wc[u][1].w, bv.z, bv.w);
                }
                if ((i + 1) % SPB == 0 || i + 1 == warp_segs) {  // block jb's sums are complete
                    const int jb = j0 + i / SPB;
                    #pragma unroll
                    for (int j = 0; j < NT; ++j) {
                        #pragma unroll
                        for (int e = 0; e < 4; ++e) {
                            const int m = 8 * j + 2 * t + (e & 1), r = g + 8 * (e >> 1);
                            if (m < MT)
                                buf[(jb * 16 + r) * MT + m] = (float)iacc[j][e] * (xsc[m * KB + jb] * sc[u][e >> 1]);
                            iacc[j][e] = 0;
                        }
                    }
                }
            }
        }
        if (++batch < BPT) return;
        // The tile is done: one thread per output adds its KB products in increasing block order.
        const int tile = blockIdx.x + round * gridDim.x;
        batch = 0;
        ++round;
        __syncthreads();
        const int o = threadIdx.x, r = o / MT, m = o - r * MT, n = 16 * tile + r;
        if (o < 16 * MT && n < N) {
            float acc = 0.0f;
            for (int jb = 0; jb < KB; ++jb) acc = acc + buf[jb * 16 * MT + o];
            store_f<OUT_DT>(y, (i64)m * N + n, acc + (bias ? load_f<BIAS_DT>(bias, n) : 0.0f));
        }
    };
    const int items = mine * BPT;
    for (int item = 0; item < items; ++item) {
        step(wa, sa, wb, sb);
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            wa[u][0] = wb[u][0];
            wa[u][1] = wb[u][1];
            sa[u][0] = sb[u][0];
            sa[u][1] = sb[u][1];
        }
    }
}
#endif
#endif
