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
//   the shape allows); `U` accesses (chunks) per lane in flight; `G = BC / EPT` for the row kernel.
// - Layout of the streaming kernels (`quant_rows`, `dequant`, `fp8_dequant`): a warp step covers
//   U * 32 consecutive chunks, lane l holding chunks u * 32 + l, so each load and store instruction
//   of a warp touches one contiguous run (whole 32-byte sectors). Measured on the H200 (54560 x 3072,
//   scripts/gpu/membound_harness.py): quantize 0.79 of the copy bandwidth (bf16, U = 4), dequantize 0.81
//   (INT8) and 0.89 (FP8), fused tanh-gelu requantization 0.45 (INT8 codes) / 0.55 (bf16 input);
//   NOTES.md issue 10.
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

#ifndef U
#define U 4
#endif
/// GELU, tanh form, as the fused quantizers evaluate it: `0.5 x (1 + tanh(u))` with
/// `u = sqrt(2/pi) (x + 0.044715 x^3)`, written as the same function `x / (1 + 2^(-2 u log2(e)))`
/// with the hardware exp2 and reciprocal: a few float32 ulps from the exact value (no cancellation
/// for negative x, where `1 + tanh(u)` loses digits), 1.3x faster than CUDA's `tanhf` form and 2x faster
/// than the CPU's exp-based operations in the fused quantizer (NOTES.md, issue 10); the result is then
/// rounded to `ROUND_DT`. Limits: x = +-inf give +inf / NaN as the CPU's formula does, NaN stays NaN.
__device__ __forceinline__ float gelu_tanh_fast(float x) {
    // -2 sqrt(2/pi) log2(e) = -2.302208198, times 0.044715 = -0.1029432396
    const float t = __fmul_rn(x, fmaf(__fmul_rn(x, x), -0.10294324f, -2.3022082f));
    float e, q;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(t));
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(q) : "f"(__fadd_rn(1.0f, e)));
    return __fmul_rn(x, q);
}

/// N bfloat16 values (2 N bytes, one access) as floats, unpacked a pair at a time with one instruction
/// per value (`w << 16`, `w & 0xffff0000`; the generic unpack spends two on the upper one).
template <int N> __device__ __forceinline__ void load_bf16_pairs(const void* p, i64 i, float* out) {
    union { typename Vec<2 * N>::T v; u32 w[N / 2]; } pack;
    pack.v = *((const typename Vec<2 * N>::T*)((const u16*)p + i));
    #pragma unroll
    for (int q = 0; q < N / 2; ++q) {
        out[2 * q] = __uint_as_float(pack.w[q] << 16);
        out[2 * q + 1] = __uint_as_float(pack.w[q] & 0xffff0000u);
    }
}

/// Rounds v[0..N) to the precision of ROUND_DT, as `round_to`; bfloat16 two at a time
/// (`cvt.rn.bf16x2.f32`, the same round-to-nearest-even and canonical NaN as the scalar conversion).
template <int N> __device__ __forceinline__ void round_values(float* v) {
    if constexpr (ROUND_DT == DT_BF16 && N % 2 == 0) {
        #pragma unroll
        for (int e = 0; e < N; e += 2) {
            u32 pair;
            asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(pair) : "f"(v[e + 1]), "f"(v[e]));
            v[e] = __uint_as_float(pair << 16);
            v[e + 1] = __uint_as_float(pair & 0xffff0000u);
        }
    } else {
        #pragma unroll
        for (int e = 0; e < N; ++e) v[e] = round_to<ROUND_DT>(v[e]);
    }
}

/// The values to quantize at flat index i: source (dense, or dequantized with scale s), then the op.
template <int N> __device__ __forceinline__ void source_values(const void* src, float s, const void* delta,
                                                              float strength, i64 i, float* v) {
#if SRC == 0
    if constexpr (IN_DT == DT_BF16 && N % 2 == 0 && N <= 8) {
        load_bf16_pairs<N>(src, i, v);
    } else {
        load_vec<IN_DT, N>(src, i, v);
    }
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
    for (int e = 0; e < N; ++e) v[e] = OPK == 1 ? gelu_erf(v[e]) : gelu_tanh_fast(v[e]);
    round_values<N>(v);
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
/// max(a, |v|) for a >= 0 in one instruction (`max.NaN`, sm_80+): a NaN wins instead of being
/// dropped, infinity orders above every finite value, as `abs_max` on bit patterns.
__device__ __forceinline__ float abs_max_nan(float a, float v) {
    float r;
    asm("max.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(fabsf(v)));
    return r;
}
/// The code of a block whose scale has a normal reciprocal (finite values, |v| <= amax): the
/// correctly rounded t = v / scale has |t| <= 127 (scale >= amax / 127), so rounding needs no clamp:
/// t + 1.5 * 2^23 holds round-half-even(t) (or, from |t| with round-toward-zero, trunc) in its low
/// bits, and the low byte is the code's two's complement byte.
__device__ __forceinline__ u32 finite_code_bits(float t) {
    if (TOWARD_ZERO) {
        const int n = __float_as_int(__fadd_rz(fabsf(t), 12582912.0f)) - 0x4B400000;
        return (u32)(t < 0.0f ? -n : n);
    }
    return (u32)__float_as_int(__fadd_rn(t, 12582912.0f));
}

/// Stores the low bytes of `bits[0..N)` as N consecutive bytes at `p` (one access; words of four
/// bytes built with two byte permutes where N allows).
template <int N> __device__ __forceinline__ void store_low_bytes(i8* p, const u32* bits) {
    if constexpr (N % 4 == 0) {
        union { typename Vec<N>::T v; u32 w[N / 4]; } out;
        #pragma unroll
        for (int q = 0; q < N / 4; ++q)
            out.w[q] = __byte_perm(__byte_perm(bits[4 * q], bits[4 * q + 1], 0x0040),
                                   __byte_perm(bits[4 * q + 2], bits[4 * q + 3], 0x0040), 0x5410);
        *(typename Vec<N>::T*)p = out.v;
    } else {
        Pack<N> out;
        #pragma unroll
        for (int e = 0; e < N; ++e) out.b[e] = (u8)bits[e];
        *(typename Vec<N>::T*)p = out.v;
    }
}

/// One lane's chunk of EPT source values in `quant_rows`. A plain bfloat16 source (no op, one 16-byte
/// access or less) stays packed, EPT / 2 words instead of EPT floats (8 registers fewer per chunk, so more
/// warps fit an SM), its amax taken two values at a time (`max.NaN.bf16x2` on the magnitudes) and each
/// value unpacked where it is divided; every other source is held as the floats `source_values` gives.
/// Both give the same amax bits (bf16 -> float is exact; a NaN comes out as the canonical NaN of
/// `max.NaN.f32`) and values.
#if SRC == 0 && IN_DT == DT_BF16 && OPK == 0 && EPT % 2 == 0 && EPT <= 8
struct RowChunk {
    union { typename Vec<2 * EPT>::T vec; u32 w[EPT / 2]; } pack;
    __device__ __forceinline__ void load(const void* src, float, const void*, float, i64 i) {
        pack.vec = *((const typename Vec<2 * EPT>::T*)((const u16*)src + i));
    }
    __device__ __forceinline__ void clear() {
        #pragma unroll
        for (int q = 0; q < EPT / 2; ++q) pack.w[q] = 0u;
    }
    __device__ __forceinline__ float value(int e) const {
        return __uint_as_float(e % 2 ? pack.w[e / 2] & 0xffff0000u : pack.w[e / 2] << 16);
    }
    __device__ __forceinline__ float amax() const {
        u32 m = pack.w[0] & 0x7fff7fffu;
        #pragma unroll
        for (int q = 1; q < EPT / 2; ++q) asm("max.NaN.bf16x2 %0, %0, %1;" : "+r"(m) : "r"(pack.w[q] & 0x7fff7fffu));
        asm("max.NaN.bf16x2 %0, %0, %1;" : "+r"(m) : "r"(__byte_perm(m, 0u, 0x1032)));
        return abs_max_nan(0.0f, __uint_as_float(m & 0xffff0000u));
    }
};
#else
struct RowChunk {
    float v[EPT];
    __device__ __forceinline__ void load(const void* src, float s, const void* delta, float strength, i64 i) {
        source_values<EPT>(src, s, delta, strength, i, v);
    }
    __device__ __forceinline__ void clear() {
        #pragma unroll
        for (int e = 0; e < EPT; ++e) v[e] = 0.0f;
    }
    __device__ __forceinline__ float value(int e) const { return v[e]; }
    __device__ __forceinline__ float amax() const {
        float a = 0.0f;
        #pragma unroll
        for (int e = 0; e < EPT; ++e) a = abs_max_nan(a, v[e]);
        return a;
    }
};
#endif

/// 1 x BC blocks (activations; gelu and weight update re-quantizing them): each warp quantizes a span
/// of U * 32 * EPT consecutive elements of one row per step, lane l holding the EPT-element chunks
/// u * 32 + l (u < U), so every load and store instruction of the warp touches one contiguous run of
/// memory (the 16-elements-per-lane layout wrote half sectors). A block is `G = BC / EPT` consecutive
/// lanes of one chunk (G <= 32, an amax over G lanes) or all lanes of G / 32 consecutive chunks (U a
/// multiple of G / 32). Needs C % EPT == 0; a partial last block or span just has idle lanes. Any
/// block size that is a multiple of 32 threads works (the launch picks it and U from the row count).
extern "C" __global__ void __launch_bounds__(256) quant_rows(
    const void* src, const float* src_scales, const void* delta, float strength, i8* codes, float* scales,
    i64 rows, i64 C, i64 CB, u32* flag) {
    constexpr int SPAN = U * 32 * EPT;
    constexpr int LANES = G < 32 ? G : 32;      // lanes of one block in one chunk
    constexpr int CHUNKS = G > 32 ? G / 32 : 1;  // chunks of one block
    static_assert(U % CHUNKS == 0, "a span holds whole blocks");
    const int lane = threadIdx.x & 31;
    const i64 spans = (C + SPAN - 1) / SPAN;
    const i64 items = rows * spans;
    const i64 warps = ((i64)gridDim.x * blockDim.x) >> 5;
    bool bad = false;
    for (i64 item = (blockIdx.x * (i64)blockDim.x + threadIdx.x) >> 5; item < items; item += warps) {
        const i64 row = item / spans;
        const i64 c0 = (item - row * spans) * SPAN;
        RowChunk v[U];
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            const i64 col = c0 + (i64)(u * 32 + lane) * EPT;
            if (col < C) {
                const float s = SRC == 1 ? src_scales[row * CB + col / BC] : 0.0f;
                v[u].load(src, s, delta, strength, row * C + col);
            } else {
                v[u].clear();
            }
        }
        float amax[U];
        #pragma unroll
        for (int u = 0; u < U; ++u) amax[u] = v[u].amax();
        #pragma unroll
        for (int u = 0; u < U; u += CHUNKS) {
            float a = amax[u];
            #pragma unroll
            for (int h = 1; h < CHUNKS; ++h) a = abs_max(a, amax[u + h]);
            a = warp_abs_max(a, LANES);
            bad |= !is_finite(a);  // the amax is NaN or infinite exactly when a value of the block is
            const float scale = i8_scale(a);
            const float r = reciprocal(scale);
            const i64 first = c0 + (i64)(u * 32 + lane) * EPT;
            if (lane % LANES == 0 && first < C) scales[row * CB + first / BC] = scale;
            #pragma unroll
            for (int h = 0; h < CHUNKS; ++h) {
                const i64 col = c0 + (i64)((u + h) * 32 + lane) * EPT;
                if (col < C) {
                    u32 bits[EPT];
                    if (r != 0.0f) {  // the usual block: every |v| <= amax, finite, one FMA-corrected quotient
                        #pragma unroll
                        for (int e = 0; e < EPT; ++e) bits[e] = finite_code_bits(div_by(v[u + h].value(e), scale, r));
                    } else {
                        #pragma unroll
                        for (int e = 0; e < EPT; ++e) bits[e] = int8_code_byte(v[u + h].value(e), scale, r);
                    }
                    store_low_bytes<EPT>(codes + row * C + col, bits);
                }
            }
        }
    }
    if (bad && flag) atomicOr(flag, 1u);
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

/// out = q * scale of its BR x BC block. The tensor is cut into EPT-element chunks (C % EPT == 0, so a
/// chunk never straddles a row; EPT = 16 / sizeof(output) where the shape allows); each warp converts
/// U * 32 consecutive chunks per step, lane l the chunks u * 32 + l, so every store instruction of the
/// warp writes 32 * EPT * sizeof(output) contiguous bytes (whole sectors) and every load 32 * EPT.
extern "C" __global__ void __launch_bounds__(256) dequant(
    const i8* __restrict__ codes, const float* __restrict__ scales, void* __restrict__ out, i64 total, i64 R,
    i64 C, i64 RB, i64 CB) {
    const i64 chunks = total / EPT;
    const int lane = threadIdx.x & 31;
    const i64 step = ((i64)gridDim.x * blockDim.x) * U;
    const bool narrow = total < 0x7fffffffLL;
    for (i64 base = (((blockIdx.x * (i64)blockDim.x + threadIdx.x) >> 5) << 5) * U + lane; base < chunks;
         base += step) {
        float v[U][EPT];
        #pragma unroll
        for (int u = 0; u < U; ++u)
            if (base + u * 32 < chunks) load_vec<DT_I8, EPT>(codes, (base + u * 32) * EPT, v[u]);
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            const i64 i = (base + u * 32) * EPT;
            if (i >= total) continue;
            i64 c;
            const float* srow = dequant_scale_row(scales, i, R, C, RB, CB, narrow, &c);
            #pragma unroll
            for (int e = 0; e < EPT; ++e) v[u][e] = __fmul_rn(v[u][e], srow[(BC % EPT == 0) ? c / BC : (c + e) / BC]);
            store_vec<OUT_DT, EPT>(out, i, v[u]);
        }
    }
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

/// Pass 2: scale = fixed_scale if > 0, else amax / 448 (1 when amax is 0, NaN when it is NaN); codes =
/// e4m3(clamp(x / scale)).
extern "C" __global__ void __launch_bounds__(256) fp8_encode(
    const void* src, const float* src_scale, const void* delta, float strength, i64 count, const u32* amax_bits,
    float fixed_scale, u8* codes, float* scale_out) {
    const float s = SRC == 2 ? src_scale[0] : 0.0f;
    const float amax = __uint_as_float(*amax_bits);
    // A non-finite input left NaN in amax: the scale is NaN too, so the tensor dequantizes (and a linear on
    // it comes out) non-finite instead of as finite codes on scale 1.
    const float scale = fixed_scale > 0.0f ? fixed_scale
                                           : (amax > 0.0f || amax != amax ? __fdiv_rn(amax, 448.0f) : 1.0f);
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

/// out = e4m3(q) * scale, in `dequant`'s layout: EPT-element chunks, U * 32 consecutive chunks per warp step.
extern "C" __global__ void __launch_bounds__(256) fp8_dequant(const u8* __restrict__ codes,
                                                              const float* __restrict__ scale,
                                                              void* __restrict__ out, i64 count) {
    const float s = scale[0];
    const i64 chunks = count / EPT;
    const int lane = threadIdx.x & 31;
    const i64 step = ((i64)gridDim.x * blockDim.x) * U;
    for (i64 base = (((blockIdx.x * (i64)blockDim.x + threadIdx.x) >> 5) << 5) * U + lane; base < chunks;
         base += step) {
        Pack<EPT> raw[U];
        #pragma unroll
        for (int u = 0; u < U; ++u)
            if (base + u * 32 < chunks) raw[u].v = *(const typename Vec<EPT>::T*)(codes + (base + u * 32) * EPT);
        #pragma unroll
        for (int u = 0; u < U; ++u) {
            if (base + u * 32 >= chunks) continue;
            float v[EPT];
            #pragma unroll
            for (int e = 0; e < EPT; ++e) v[e] = __fmul_rn(e4m3_to_f32(raw[u].b[e]), s);
            store_vec<OUT_DT, EPT>(out, (base + u * 32) * EPT, v);
        }
    }
}
#endif
