// Decode-shape linear kernels (1 <= M <= 16 rows): one kernel, `gemv_stream`, that streams each weight
// row once from memory, specialised with `-D`:
// - `MODE` 0: INT8 W8A8 on given activation codes `qx` (M, K) int8 and scales `sx` (M, KB);
//   1: INT8 W8A8 on a float input `x` (M, K) of dtype `X_DT`, quantized inside the kernel into
//   shared memory (1 x `BC` blocks, exactly the activation quantizer: `scale = amax / 127`, `q =
//   clamp(round(x / scale))`, NaN-propagating amax), so the op is one launch;
//   2: INT8 weight-only, `w = q * s` (`BR` x `BC` weight blocks); 3: FP8 weight-only, `w = e4m3(q) * s`.
// - `MT` = M, `OUT_DT`, `BIAS_DT`, `TOWARD_ZERO` (mode 1's rounding), `U` 16-byte chunks per lane per batch.
//
// Arithmetic (CONTRACTS.md): W8A8 computes each K block's int32 sum exactly (dp4a over 16-byte chunks,
// then an exact integer shuffle sum over the block's `BC / 16` lanes), then
// `acc = acc + float(sum_j) * (sx[m,j] * sw[n/BR, j])` in float32 in increasing j, bias added last,
// rounded once to `OUT_DT`: the CPU reference's value exactly. Weight-only: `y = sum_k x * w` in
// float32 (fused multiply-adds, lane partials summed by a warp reduction), bias added last.
//
// Launch: block 256 threads (8 warps); persistent grid (any size); warp w of the grid streams rows
// n = w, w + warps, ...; each row in batches of 32 * U chunks, the next batch's loads issued before
// the current batch is used, so every lane keeps U 16-byte loads in flight across row boundaries.
// Needs K % 16 == 0, 16-byte aligned `qx` / `x` / `wq`, and for W8A8 `BC` a power of two in 16...512.
// Mode 1 takes `align16(M K) + 4 M KB` bytes of dynamic shared memory.
#include "prelude.cuh"
#ifndef U
#define U 8
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
#define W8A8_MODE (MODE == 0 || MODE == 1)
#define G ((BC / 16) < 32 ? (BC / 16) : 32)

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

/// Loads batch `b` of row `n`: chunk c = b * 32 U + u * 32 + lane (16 bytes at k = 16 c); zeros
/// past the row's end or past the last row.
__device__ __forceinline__ void load_batch(uint4* out, const u8* wq, int n, int b, int N, int CK, int lane) {
    #pragma unroll
    for (int u = 0; u < U; ++u) {
        const int c = b * 32 * U + u * 32 + lane;
        out[u] = (n < N && c < CK) ? ld_stream(wq + (i64)n * (CK * 16) + (i64)c * 16) : make_uint4(0, 0, 0, 0);
    }
}

#if MODE == 1
/// Mode 1: quantizes x (MT, K) into 1 x BC blocks in shared memory, one warp per block.
__device__ void quantize_input(const void* x, i8* xq, float* xs, int K, int KB) {
    const int lane = threadIdx.x & 31;
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
#endif

extern "C" __global__ void __launch_bounds__(256) gemv_stream(
    const void* __restrict__ x, const float* __restrict__ sx, const u8* __restrict__ wq,
    const float* __restrict__ ws, const void* __restrict__ bias, void* __restrict__ y, int N, int K) {
    const int lane = threadIdx.x & 31;
    const int CK = K >> 4;
    const int batches = (CK + 32 * U - 1) / (32 * U);
    const int KB = (K + BC - 1) / BC;
    const int warps = gridDim.x * (blockDim.x >> 5);
    int n = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    uint4 cur[U], nxt[U];
    load_batch(cur, wq, n, 0, N, CK, lane);
#if MODE == 1
    extern __shared__ __align__(16) u8 smem[];
    i8* xq = (i8*)smem;
    float* xs = (float*)(smem + ((MT * K + 15) & ~15));
    quantize_input(x, xq, xs, K, KB);
    __syncthreads();
#endif
    float acc[MT];
    #pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = 0.0f;
    int b = 0;
    while (n < N) {
        int nn = n, nb = b + 1;
        if (nb == batches) { nb = 0; nn = n + warps; }
        load_batch(nxt, wq, nn, nb, N, CK, lane);
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            const int c0 = b * 32 * U + u * 32;  // the warp's first chunk of this step
            if (c0 < CK) {  // warp-uniform; a guard, not a break, keeps cur[u] in registers
            const int c = c0 + lane;
            const int k = c * 16;
            const bool valid = c < CK;
#if W8A8_MODE
            const int j = k / BC;
            const int j0 = (c0 * 16) / BC;
            const float swv = valid ? ws[(i64)(n / BR) * KB + j] : 0.0f;
            #pragma unroll
            for (int m = 0; m < MT; ++m) {
                uint4 xv = make_uint4(0, 0, 0, 0);
                float sxv = 0.0f;
                if (valid) {
#if MODE == 0
                    xv = __ldg((const uint4*)((const i8*)x + (i64)m * K + k));
                    sxv = sx[(i64)m * KB + j];
#else
                    xv = *(const uint4*)(xq + m * K + k);
                    sxv = xs[m * KB + j];
#endif
                }
                int d = dot16(xv, cur[u]);
                #pragma unroll
                for (int o = G / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
                // The block's exact sum times (sx * sw), added in increasing block order.
                const float p = (float)d * (sxv * swv);
                #pragma unroll
                for (int g = 0; g < 32 / G; ++g) {
                    const float q = __shfl_sync(0xffffffffu, p, g * G);
                    if (j0 + g < KB && c0 + g * G < CK) acc[m] = acc[m] + q;
                }
            }
#else
            float wv[16];
            {
                const u32 words[4] = {cur[u].x, cur[u].y, cur[u].z, cur[u].w};
                #pragma unroll
                for (int q = 0; q < 4; ++q) {
#if MODE == 2
                    const u32 flipped = words[q] ^ 0x80808080u;
                    #pragma unroll
                    for (int e = 0; e < 4; ++e) wv[4 * q + e] = i8_byte_to_f32(flipped, e);
#else
                    #pragma unroll
                    for (int e = 0; e < 4; ++e) wv[4 * q + e] = e4m3_to_f32((u8)(words[q] >> (8 * e)));
#endif
                }
            }
            if (valid) {
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
                    load_vec<X_DT, 16>(x, (i64)m * K + k, xv);
                    #pragma unroll
                    for (int e = 0; e < 16; ++e) acc[m] = fmaf(xv[e], wv[e], acc[m]);
                }
            }
#endif
            }
        }
        if (nb == 0) {  // row n is complete
            #pragma unroll
            for (int m = 0; m < MT; ++m) {
#if W8A8_MODE
                const float total = acc[m];
#else
                const float total = warp_sum(acc[m]);
#endif
                if (lane == 0)
                    store_f<OUT_DT>(y, (i64)m * N + n, total + (bias ? load_f<BIAS_DT>(bias, n) : 0.0f));
                acc[m] = 0.0f;
            }
        }
        #pragma unroll
        for (int u = 0; u < U; ++u) cur[u] = nxt[u];
        n = nn;
        b = nb;
    }
}
