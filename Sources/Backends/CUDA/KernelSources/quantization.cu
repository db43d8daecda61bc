// Quantize, dequantize and requantize kernels for block-wise INT8 and per-tensor FP8.
//
// One source, specialised with `-D`:
// - `SRC`: 0 = a dense tensor of dtype `IN_DT`; 1 = INT8 codes with their block scales (same grid
//   as the output: gelu and weight update re-quantize with the tensor's own blocks); 2 = FP8 codes
//   with their per-tensor scale.
// - `OPK`: 0 none; 1 / 2 GELU (erf / tanh); 3 `+ strength * delta` (delta of dtype `DELTA_DT`).
//   The result is rounded to `ROUND_DT` before quantizing, as the CPU path materialises it there.
// - `TOWARD_ZERO`: INT8 rounding (1 truncates, 0 rounds half to even).
// - `BR`, `BC`: the INT8 block shape; `EPT` elements per thread per access (16-byte accesses where
//   the shape allows); `G`, `CPL`: lanes per block and chunks per lane of the row kernel.
//
// Every quantizer follows the CPU definition exactly: `scale = amax / 127` (true division),
// `q = clamp(round(x / scale), -127, 127)` with `x / scale` correctly rounded (a reciprocal and one
// FMA correction, `div_by`, or `__fdiv_rn` for scales under 1e-30), an
// all-zero block gets scale 0 and codes 0; FP8 `scale = amax / 448` (1 for all zeros), `q =
// e4m3(clamp(x / scale, -448, 448))`. Non-finite inputs set `*flag` (the host turns it into an error);
// without a flag they propagate: amax is taken over bit patterns (`abs_max`), so a block holding NaN
// gets a NaN scale (codes 0), one holding infinity an infinite scale, and a GEMM on it a non-finite row.
#include "prelude.cuh"
#ifndef OPK
#define OPK 0
#endif
#ifndef ROUND_DT
#define ROUND_DT DT_F32
#endif
#ifndef DELTA_DT
#define DELTA_DT DT_F32
#endif
#ifndef IN_DT
#define IN_DT DT_F32
#endif
#ifndef OUT_DT
#define OUT_DT DT_F32
#endif

/// The values to quantize at flat index i: source (dense, or dequantized with scale s), then the op.
template <int N> __device__ __forceinline__ void source_values(const void* src, float s, const void* delta,
                                                              float strength, i64 i, float* v) {
#if SRC == 0
    load_vec<IN_DT, N>(src, i, v);
#elif SRC == 1
    load_vec<DT_I8, N>(src, i, v);
    #pragma unroll
    for (int e = 0; e < N; ++e) v[e] = __fmul_rn(v[e], s);
#else
    load_vec<DT_F8, N>(src, i, v);
    #pragma unroll
    for (int e = 0; e < N; ++e) v[e] = __fmul_rn(v[e], s);
#endif
#if OPK == 1 || OPK == 2
    #pragma unroll
    for (int e = 0; e < N; ++e) v[e] = round_to<ROUND_DT>(OPK == 1 ? gelu_erf(v[e]) : gelu_tanh(v[e]));
#elif OPK == 3
    float d[N];
    load_vec<DELTA_DT, N>(delta, i, d);
    #pragma unroll
    for (int e = 0; e < N; ++e) v[e] = round_to<ROUND_DT>(__fadd_rn(v[e], __fmul_rn(strength, d[e])));
#endif
}

/// `x / s` correctly rounded from `r = __frcp_rn(s)` and one FMA correction (Markstein): the
/// quotient `__fdiv_rn` gives whenever 1/s is a normal float, i.e. for the scales `reciprocal` accepts.
__device__ __forceinline__ float div_by(float x, float s, float r) {
    const float y = __fmul_rn(x, r);
    return fmaf(fmaf(-s, y, x), r, y);
}
/// The reciprocal the quantizers divide with: `__frcp_rn(scale)` for 1e-30 <= scale <= 1e30 (1/scale
/// normal), else 0, which makes them divide with `__fdiv_rn`. Only for quotients that cannot
/// overflow (|x| <= amax), where `div_by` and `__fdiv_rn` agree.
__device__ __forceinline__ float reciprocal(float scale) {
    return scale >= 1.0e-30f && scale <= 1.0e30f ? __frcp_rn(scale) : 0.0f;
}

/// `clamp(round(v / scale), -127, 127)`, 0 when scale is 0 or NaN; `r` from `reciprocal(scale)`.
__device__ __forceinline__ float int8_code(float v, float scale, float r) {
    if (!(scale > 0.0f)) return 0.0f;
    float t = r != 0.0f ? div_by(v, scale, r) : __fdiv_rn(v, scale);
    t = TOWARD_ZERO ? truncf(t) : rintf(t);
    return fminf(fmaxf(t, -127.0f), 127.0f);
}

/// The code's byte: round-and-clamp as `int8_code`, then the integer read from the low byte of
/// `t + 1.5 * 2^23` (exact for |t| <= 2^22), avoiding the quarter-rate float-to-integer unit.
__device__ __forceinline__ u8 int8_code_byte(float v, float scale, float r) {
    return (u8)(__float_as_uint(int8_code(v, scale, r) + 12582912.0f) & 0xffu);
}

#if defined(ROWS)
/// 1 x BC blocks (activations): G lanes per block, each holding CPL chunks of EPT elements.
/// Needs C % EPT == 0; a partial last block just has idle lanes.
extern "C" __global__ void __launch_bounds__(256) quant_rows(
    const void* src, const float* src_scales, const void* delta, float strength, i8* codes, float* scales,
    i64 rows, i64 C, i64 CB, u32* flag) {
    const int lane = threadIdx.x & 31;
    const int sub = lane % G, group = lane / G;
    const int per_warp = 32 / G;
    const i64 total = rows * CB;
    const i64 warp = (blockIdx.x * (i64)blockDim.x + threadIdx.x) >> 5;
    const i64 warps = ((i64)gridDim.x * blockDim.x) >> 5;
    for (i64 base = warp * per_warp; base < total; base += warps * per_warp) {
        const i64 block = base + group;
        const bool valid = block < total;
        const i64 row = valid ? block / CB : 0, cb = valid ? block % CB : 0;
        const float s = SRC == 1 && valid ? src_scales[block] : 0.0f;
        float v[CPL][EPT];
        float amax = 0.0f;
        bool bad = false;
        #pragma unroll
        for (int j = 0; j < CPL; ++j) {
            const i64 col = cb * BC + (i64)(sub + j * G) * EPT;
            if (valid && col < C) {
                source_values<EPT>(src, s, delta, strength, row * C + col, v[j]);
            } else {
                #pragma unroll
                for (int e = 0; e < EPT; ++e) v[j][e] = 0.0f;
            }
            #pragma unroll
            for (int e = 0; e < EPT; ++e) { amax = abs_max(amax, v[j][e]); bad |= !is_finite(v[j][e]); }
        }
        amax = warp_abs_max(amax, G);
        if (bad && flag) atomicOr(flag, 1u);
        const float scale = i8_scale(amax);
        const float r = reciprocal(scale);
        if (valid && sub == 0) scales[block] = scale;
        #pragma unroll
        for (int j = 0; j < CPL; ++j) {
            const i64 col = cb * BC + (i64)(sub + j * G) * EPT;
            if (valid && col < C) {
                Pack<EPT> pack;
                #pragma unroll
                for (int e = 0; e < EPT; ++e) pack.b[e] = int8_code_byte(v[j][e], scale, r);
                *((typename Vec<EPT>::T*)(codes + row * C + col)) = pack.v;
            }
        }
    }
}
#endif

#if defined(BLOCKS)
/// Any BR x BC block shape (weights, transposed activations, odd sizes): one thread block per
/// quantization block, two passes over it (the second hits the cache).
extern "C" __global__ void __launch_bounds__(256) quant_blocks(
    const void* src, const float* src_scales, const void* delta, float strength, i8* codes, float* scales,
    i64 batches, i64 R, i64 C, i64 RB, i64 CB, u32* flag) {
    __shared__ float partial[8];
    const i64 total = batches * RB * CB;
    for (i64 block = blockIdx.x; block < total; block += gridDim.x) {
        const i64 b = block / (RB * CB), rb = (block / CB) % RB, cb = block % CB;
        const i64 r0 = rb * BR, c0 = cb * BC;
        const i64 h = min((i64)BR, R - r0), w = min((i64)BC, C - c0);
        const float s = SRC == 1 ? src_scales[block] : 0.0f;
        float amax = 0.0f;
        bool bad = false;
        for (i64 e = threadIdx.x; e < h * w; e += blockDim.x) {
            float v[1];
            source_values<1>(src, s, delta, strength, (b * R + r0 + e / w) * C + c0 + e % w, v);
            amax = abs_max(amax, v[0]);
            bad |= !is_finite(v[0]);
        }
        if (bad && flag) atomicOr(flag, 1u);
        amax = warp_abs_max(amax, 32);
        if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = amax;
        __syncthreads();
        amax = 0.0f;
        for (int k = 0; k < (int)(blockDim.x >> 5); ++k) amax = abs_max(amax, partial[k]);
        const float scale = i8_scale(amax);
        const float r = reciprocal(scale);
        if (threadIdx.x == 0) scales[block] = scale;
        for (i64 e = threadIdx.x; e < h * w; e += blockDim.x) {
            const i64 i = (b * R + r0 + e / w) * C + c0 + e % w;
            float v[1];
            source_values<1>(src, s, delta, strength, i, v);
            codes[i] = (i8)int8_code(v[0], scale, r);
        }
        __syncthreads();
    }
}
#endif

#if defined(DEQUANT)
/// The scale row of flat element i (row-major R x C matrices, `batches` of them), with 32-bit
/// division when the tensor has fewer than 2^31 elements.
__device__ __forceinline__ const float* dequant_scale_row(const float* scales, i64 i, i64 R, i64 C, i64 RB, i64 CB,
                                                          bool narrow, i64* column) {
    i64 row, b;
    if (narrow) {
        const u32 r32 = (u32)i / (u32)C;
        *column = (u32)i - r32 * (u32)C;
        b = (u32)r32 / (u32)R;
        row = r32;
    } else {
        row = i / C;
        *column = i - row * C;
        b = row / R;
    }
    return scales + (b * RB + (row - b * R) / BR) * CB;
}

/// out = q * scale of its BR x BC block, EPT elements per thread per unit (C % EPT == 0). With 16
/// elements per unit: two units per grid-stride step, both 16-byte code loads issued before either is
/// decoded (two loads in flight at 4 registers each).
extern "C" __global__ void __launch_bounds__(256) dequant(
    const i8* __restrict__ codes, const float* __restrict__ scales, void* __restrict__ out, i64 total, i64 R,
    i64 C, i64 RB, i64 CB) {
    const i64 step = (i64)gridDim.x * blockDim.x * EPT;
    const bool narrow = total < 0x7fffffffLL;
#if EPT == 16
    for (i64 i0 = (blockIdx.x * (i64)blockDim.x + threadIdx.x) * EPT; i0 < total; i0 += 2 * step) {
        uint4 raw[2];
        #pragma unroll
        for (int u = 0; u < 2; ++u)
            raw[u] = i0 + u * step < total ? *(const uint4*)(codes + i0 + u * step) : make_uint4(0, 0, 0, 0);
        #pragma unroll
        for (int u = 0; u < 2; ++u) {
            const i64 i = i0 + u * step;
            if (i >= total) continue;
            i64 c;
            const float* srow = dequant_scale_row(scales, i, R, C, RB, CB, narrow, &c);
            const u32 words[4] = {raw[u].x, raw[u].y, raw[u].z, raw[u].w};
            float v[16];
            #pragma unroll
            for (int q = 0; q < 4; ++q) {
                const u32 flipped = words[q] ^ 0x80808080u;
                #pragma unroll
                for (int e = 0; e < 4; ++e) v[4 * q + e] = i8_byte_to_f32(flipped, e);
            }
            if (BC % 16 == 0) {
                const float s = srow[c / BC];
                #pragma unroll
                for (int e = 0; e < 16; ++e) v[e] = __fmul_rn(v[e], s);
            } else {
                #pragma unroll
                for (int e = 0; e < 16; ++e) v[e] = __fmul_rn(v[e], srow[(c + e) / BC]);
            }
            store_vec<OUT_DT, 16>(out, i, v);
        }
    }
#else
    for (i64 i = (blockIdx.x * (i64)blockDim.x + threadIdx.x) * EPT; i < total; i += step) {
        i64 c;
        const float* srow = dequant_scale_row(scales, i, R, C, RB, CB, narrow, &c);
        float v[EPT];
        load_vec<DT_I8, EPT>(codes, i, v);
        #pragma unroll
        for (int e = 0; e < EPT; ++e) v[e] = __fmul_rn(v[e], srow[(BC % EPT == 0) ? c / BC : (c + e) / BC]);
        store_vec<OUT_DT, EPT>(out, i, v);
    }
#endif
}
#endif

#if defined(FP8)
/// Pass 1 of FP8 quantization: amax over the tensor into *amax_bits (atomicMax on the float's bits,
/// which orders non-negative floats; a non-finite value stores NaN's bits, above every finite one).
extern "C" __global__ void __launch_bounds__(256) fp8_amax(
    const void* src, const float* src_scale, const void* delta, float strength, i64 count, u32* amax_bits) {
    __shared__ float partial[8];
    const float s = SRC == 2 ? src_scale[0] : 0.0f;
    float amax = 0.0f;
    bool bad = false;
    for (i64 i = (blockIdx.x * (i64)blockDim.x + threadIdx.x) * EPT; i < count;
         i += (i64)gridDim.x * blockDim.x * EPT) {
        float v[EPT];
        source_values<EPT>(src, s, delta, strength, i, v);
        #pragma unroll
        for (int e = 0; e < EPT; ++e) { amax = fmaxf(amax, fabsf(v[e])); bad |= !is_finite(v[e]); }
    }
    if (bad) amax = __uint_as_float(0x7fc00000u);
    amax = __uint_as_float(__reduce_max_sync(0xffffffffu, __float_as_uint(amax)));
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = amax;
    __syncthreads();
    if (threadIdx.x == 0) {
        u32 m = 0;
        for (int k = 0; k < (int)(blockDim.x >> 5); ++k) m = max(m, __float_as_uint(partial[k]));
        atomicMax(amax_bits, m);
    }
}

/// Pass 2: scale = fixed_scale if > 0, else amax / 448 (1 when amax is 0); codes = e4m3(clamp(x / scale)).
extern "C" __global__ void __launch_bounds__(256) fp8_encode(
    const void* src, const float* src_scale, const void* delta, float strength, i64 count, const u32* amax_bits,
    float fixed_scale, u8* codes, float* scale_out) {
    const float s = SRC == 2 ? src_scale[0] : 0.0f;
    const float amax = __uint_as_float(*amax_bits);
    const float scale = fixed_scale > 0.0f ? fixed_scale : (amax > 0.0f ? __fdiv_rn(amax, 448.0f) : 1.0f);
    // A fixed scale may make x / scale overflow, which only the true division rounds to infinity.
    const float r = fixed_scale > 0.0f ? 0.0f : reciprocal(scale);
    if (blockIdx.x == 0 && threadIdx.x == 0) scale_out[0] = scale;
    for (i64 i = (blockIdx.x * (i64)blockDim.x + threadIdx.x) * EPT; i < count;
         i += (i64)gridDim.x * blockDim.x * EPT) {
        float v[EPT];
        source_values<EPT>(src, s, delta, strength, i, v);
        Pack<EPT> pack;
        #pragma unroll
        for (int e = 0; e < EPT; ++e) {
            const float t = r != 0.0f ? div_by(v[e], scale, r) : __fdiv_rn(v[e], scale);
            pack.b[e] = f32_to_e4m3(fminf(fmaxf(t, -448.0f), 448.0f));
        }
        *((typename Vec<EPT>::T*)(codes + i)) = pack.v;
    }
}

/// out = e4m3(q) * scale.
/// Two units per grid-stride step, both raw loads issued before either is decoded (as `dequant`).
extern "C" __global__ void __launch_bounds__(256) fp8_dequant(const u8* __restrict__ codes,
                                                              const float* __restrict__ scale,
                                                              void* __restrict__ out, i64 count) {
    const float s = scale[0];
    const i64 step = (i64)gridDim.x * blockDim.x * EPT;
    for (i64 i0 = (blockIdx.x * (i64)blockDim.x + threadIdx.x) * EPT; i0 < count; i0 += 2 * step) {
        Pack<EPT> raw[2];
        #pragma unroll
        for (int u = 0; u < 2; ++u)
            if (i0 + u * step < count) raw[u].v = *(const typename Vec<EPT>::T*)(codes + i0 + u * step);
        #pragma unroll
        for (int u = 0; u < 2; ++u) {
            if (i0 + u * step >= count) continue;
            float v[EPT];
            #pragma unroll
            for (int e = 0; e < EPT; ++e) v[e] = __fmul_rn(e4m3_to_f32(raw[u].b[e]), s);
            store_vec<OUT_DT, EPT>(out, i0 + u * step, v);
        }
    }
}
#endif
