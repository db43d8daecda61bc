// CUDA C shared by every kernel of the CUDA backend: element types and their exact conversions.
//
// Kernels include this header and no CUDA header, so NVRTC needs no include path (the backend passes
// this file as a named header). Element types are chosen at compile time with `-D` codes (DType.kernelCode
// in Swift); conversions round like the CPU code: bfloat16 and float16 round to nearest even, float8 e4m3fn
// rounds to nearest even and saturates to +-448 (bit for bit the encoder of Float8E4M3FN), integers truncate
// and saturate.
#pragma once
typedef unsigned char u8;
typedef signed char i8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef long long i64;
typedef unsigned long long u64;

#define DT_F32 0
#define DT_F16 1
#define DT_BF16 2
#define DT_F8 3
#define DT_I8 4
#define DT_U8 5
#define DT_I32 6

__device__ __forceinline__ float f16_to_f32(u16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ u16 f32_to_f16(float f) { u16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
__device__ __forceinline__ float bf16_to_f32(u16 b) { return __uint_as_float(((u32)b) << 16); }
/// Round to nearest even in one instruction (sm_80+); NaN becomes the canonical bf16 NaN.
__device__ __forceinline__ u16 f32_to_bf16(float f) { u16 h; asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
/// e4m3fn encoding: round to nearest even, saturating to +-448, NaN to 0x7F. On sm_89+ one
/// instruction (`cvt.rn.satfinite.e4m3x2.f32`); elsewhere the bit-level encoder of `Float8E4M3FN`.
__device__ __forceinline__ u8 f32_to_e4m3(float v) {
#if __CUDA_ARCH__ >= 890
    u16 pair;
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(pair) : "f"(0.0f), "f"(v));
    return (u8)(pair & 0xff);
#else
    u32 bits = __float_as_uint(v);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return 0x7f;
    u8 sign = (u8)((bits >> 24) & 0x80u);
    u32 mag = bits & 0x7fffffffu;
    if (mag >= 0x43E00000u) return sign | 0x7e;
    if ((mag >> 23) < 121u) return sign | (u8)rintf(__uint_as_float(mag) * 512.0f);
    u32 r = mag + 0x7ffffu + ((mag >> 20) & 1u);
    return sign | (u8)((((r >> 23) - 120u) << 3) | ((r >> 20) & 7u));
#endif
}
/// e4m3fn decoding (exact: every e4m3 value is a float16); one instruction per pair on sm_89+.
__device__ __forceinline__ float e4m3_to_f32(u8 c) {
#if __CUDA_ARCH__ >= 890
    u32 pair;
    asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(pair) : "h"((u16)c));
    return f16_to_f32((u16)(pair & 0xffff));
#else
    u32 sign = ((u32)(c & 0x80)) << 24;
    u32 e = (c >> 3) & 0xf, m = c & 7;
    if (e == 0xf && m == 7) return __uint_as_float(0x7fc00000u | sign);
    float mag = e == 0 ? (float)m * 0.001953125f : __uint_as_float(((e + 120u) << 23) | (m << 20));
    return __uint_as_float(__float_as_uint(mag) | sign);
#endif
}
/// Signed byte i of w as a float without the quarter-rate integer-to-float unit:
/// the float 2^23 + (b + 128), minus 2^23 + 128, is exactly b.
__device__ __forceinline__ float i8_byte_to_f32(u32 flipped, int i) {
    return __uint_as_float(__byte_perm(flipped, 0x4Bu, 0x4550u + i)) - 8388736.0f;
}
__device__ __forceinline__ float sat_trunc(float v, float lo, float hi) {
    if (v != v) return 0.0f;
    return truncf(fminf(fmaxf(v, lo), hi));
}

template <int DT> struct Elem;
template <> struct Elem<DT_F32> { typedef float T; static __device__ __forceinline__ float load(T v) { return v; } static __device__ __forceinline__ T store(float f) { return f; } };
template <> struct Elem<DT_F16> { typedef u16 T; static __device__ __forceinline__ float load(T v) { return f16_to_f32(v); } static __device__ __forceinline__ T store(float f) { return f32_to_f16(f); } };
template <> struct Elem<DT_BF16> { typedef u16 T; static __device__ __forceinline__ float load(T v) { return bf16_to_f32(v); } static __device__ __forceinline__ T store(float f) { return f32_to_bf16(f); } };
template <> struct Elem<DT_F8> { typedef u8 T; static __device__ __forceinline__ float load(T v) { return e4m3_to_f32(v); } static __device__ __forceinline__ T store(float f) { return f32_to_e4m3(f); } };
template <> struct Elem<DT_I8> { typedef i8 T; static __device__ __forceinline__ float load(T v) { return (float)v; } static __device__ __forceinline__ T store(float f) { return (i8)sat_trunc(f, -128.0f, 127.0f); } };
template <> struct Elem<DT_U8> { typedef u8 T; static __device__ __forceinline__ float load(T v) { return (float)v; } static __device__ __forceinline__ T store(float f) { return (u8)sat_trunc(f, 0.0f, 255.0f); } };
template <> struct Elem<DT_I32> { typedef int T; static __device__ __forceinline__ float load(T v) { return (float)v; } static __device__ __forceinline__ T store(float f) { return (int)sat_trunc(f, -2147483648.0f, 2147483520.0f); } };

template <int DT> __device__ __forceinline__ float load_f(const void* p, i64 i) {
    return Elem<DT>::load(((const typename Elem<DT>::T*)p)[i]);
}
template <int DT> __device__ __forceinline__ void store_f(void* p, i64 i, float v) {
    ((typename Elem<DT>::T*)p)[i] = Elem<DT>::store(v);
}
/// Rounds a float32 to the precision of DT (identity for float32): the CPU code materialises
/// intermediates in the tensor's dtype, and the kernels do the same to match it bit for bit.
template <int DT> __device__ __forceinline__ float round_to(float v) { return Elem<DT>::load(Elem<DT>::store(v)); }
template <> __device__ __forceinline__ float round_to<DT_F32>(float v) { return v; }

/// BYTES bytes moved as one access (16 bytes = one 128-bit load or store).
template <int BYTES> struct Vec;
template <> struct Vec<16> { typedef uint4 T; };
template <> struct Vec<8> { typedef uint2 T; };
template <> struct Vec<4> { typedef u32 T; };
template <> struct Vec<2> { typedef u16 T; };
template <> struct Vec<1> { typedef u8 T; };
template <int BYTES> union Pack {
    typename Vec<BYTES>::T v;
    u8 b[BYTES];
};

/// Loads N consecutive elements of type DT starting at element i (aligned to N elements, or to 16
/// bytes when wider) as floats, in accesses of at most 16 bytes.
template <int DT, int N> __device__ __forceinline__ void load_vec(const void* p, i64 i, float* out) {
    typedef typename Elem<DT>::T T;
    if constexpr (N * sizeof(T) > 16) {
        const int per = 16 / sizeof(T);
        #pragma unroll
        for (int c = 0; c < N / per; ++c) load_vec<DT, 16 / sizeof(T)>(p, i + c * per, out + c * per);
    } else if constexpr (DT == DT_I8 && N % 4 == 0) {
        union { typename Vec<N>::T v; u32 w[N / 4]; } pack;
        pack.v = *((const typename Vec<N>::T*)((const T*)p + i));
        #pragma unroll
        for (int q = 0; q < N / 4; ++q) {
            const u32 flipped = pack.w[q] ^ 0x80808080u;
            #pragma unroll
            for (int e = 0; e < 4; ++e) out[4 * q + e] = i8_byte_to_f32(flipped, e);
        }
    } else {
        Pack<N * sizeof(T)> pack;
        pack.v = *((const typename Vec<N * sizeof(T)>::T*)((const T*)p + i));
        #pragma unroll
        for (int e = 0; e < N; ++e) out[e] = Elem<DT>::load(((const T*)pack.b)[e]);
    }
}
template <int DT, int N> __device__ __forceinline__ void store_vec(void* p, i64 i, const float* in) {
    typedef typename Elem<DT>::T T;
    if constexpr (N * sizeof(T) > 16) {
        const int per = 16 / sizeof(T);
        #pragma unroll
        for (int c = 0; c < N / per; ++c) store_vec<DT, 16 / sizeof(T)>(p, i + c * per, in + c * per);
    } else {
        Pack<N * sizeof(T)> pack;
        #pragma unroll
        for (int e = 0; e < N; ++e) ((T*)pack.b)[e] = Elem<DT>::store(in[e]);
        *((typename Vec<N * sizeof(T)>::T*)((T*)p + i)) = pack.v;
    }
}

__device__ __forceinline__ bool is_finite(float v) { return fabsf(v) <= 3.402823466e38f; }

// The INT8 block scale (NOTES.md, numerics): amax / 127, one float step lower where 127 * scale would
// overflow for a finite amax, so the code 127 dequantizes finite; bit-identical to amax / 127 for every
// other amax. A non-finite amax (the unchecked quantizer inside a linear) keeps its NaN / infinite
// scale, so the GEMM's row is non-finite as a float linear's would be.
__device__ __forceinline__ float i8_scale(float amax) {
    const float scale = __fdiv_rn(amax, 127.0f);
    return __fmul_rn(scale, 127.0f) > 3.402823466e38f && is_finite(amax) ? nextafterf(scale, 0.0f) : scale;
}

__device__ __forceinline__ float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float gelu_tanh(float x) {
    return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

__device__ __forceinline__ float warp_max(float v, int width) {
    for (int o = width / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
/// max(a, |b|) for a >= 0 (or NaN) by bit patterns: fmaxf's order on finite values and infinity,
/// but a NaN (whose bits exceed +inf's) wins instead of being dropped.
__device__ __forceinline__ float abs_max(float a, float b) {
    return __uint_as_float(max(__float_as_uint(a), __float_as_uint(b) & 0x7fffffffu));
}
/// abs_max over `width` lanes (a power of two) of values that are already non-negative or NaN.
__device__ __forceinline__ float warp_abs_max(float v, int width) {
    for (int o = width / 2; o > 0; o /= 2) v = abs_max(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

