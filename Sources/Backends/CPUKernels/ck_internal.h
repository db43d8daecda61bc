#ifndef CK_INTERNAL_H
#define CK_INTERNAL_H
// Helpers shared by the quantized kernels: target attributes, output stores, scalar e4m3.
#include "CKernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CK_X86 1
#else
#define CK_X86 0
#endif

// Functions that use AVX2 carry the attribute instead of the whole target being built with
// -mavx2: the library must load and run its portable path on CPUs without AVX2.
#define CK_AVX2 __attribute__((target("avx2,fma,f16c")))
/// AVX-512 F (with AVX2, FMA, F16C): the zmm float kernels of the avx512vnni and amx paths.
#define CK_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))
#define CK_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

#if CK_X86
/// The sum of v's 8 lanes: the two 128-bit halves added, then pairs, then the last two (one fixed order).
CK_AVX2 static inline float ck_hsum8(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}

/// The zmm GEMV rows' two 16-lane accumulators as the AVX2 loops' four 8-lane chains u0 (a01's low half),
/// u1 (its high half), u2, u3 (a23's), folded as (u0 + u1) + (u2 + u3), the AVX2 loops' order.
CK_AVX512 static inline __m256 ck_fold_chains(__m512 a01, __m512 a23) {
    const __m256 u0 = _mm512_castps512_ps256(a01), u1 = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a01), 1));
    const __m256 u2 = _mm512_castps512_ps256(a23), u3 = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a23), 1));
    return _mm256_add_ps(_mm256_add_ps(u0, u1), _mm256_add_ps(u2, u3));
}

/// Transposes a 16 x 16 matrix of 32-bit lanes in place: r[i] lane j <-> r[j] lane i (unpacks within
/// 128-bit lanes, then two rounds of 128-bit lane shuffles; 64 shuffles). Float rows go through
/// `_mm512_castps_si512`.
CK_AVX512 static inline void ck_transpose16x16_epi32(__m512i r[16]) {
    __m512i a[16], b[16];
    for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        b[4 * i] = _mm512_unpacklo_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 2] = _mm512_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
        b[4 * i + 3] = _mm512_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
    }
    // b[4 g + c], 128-bit lane L: element 4 L + c of rows 4 g .. 4 g + 3.
    for (int c = 0; c < 4; c++) {
        const __m512i c1 = _mm512_shuffle_i32x4(b[c], b[4 + c], 0x88), c2 = _mm512_shuffle_i32x4(b[c], b[4 + c], 0xDD);
        const __m512i d1 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], 0x88),
                      d2 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], 0xDD);
        r[c] = _mm512_shuffle_i32x4(c1, d1, 0x88);
        r[8 + c] = _mm512_shuffle_i32x4(c1, d1, 0xDD);
        r[4 + c] = _mm512_shuffle_i32x4(c2, d2, 0x88);
        r[12 + c] = _mm512_shuffle_i32x4(c2, d2, 0xDD);
    }
}
#endif

static inline int64_t ck_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// The INT8 block scale of a block with largest magnitude `amax` (NOTES.md, numerics): amax / 127,
/// one float step lower when 127 * (amax / 127) would overflow (amax within an ulp or so of
/// FLT_MAX), so that dequantizing the code 127 never gives infinity. Bit-identical to amax / 127
/// for every other amax.
static inline float ck_i8_scale(float amax) {
    float scale = amax / 127.0f;
    float top = scale * 127.0f;
    if (top > 3.40282347e38f) scale = nextafterf(scale, 0.0f);
    return scale;
}
static inline int64_t ck_round_up(int64_t a, int64_t b) { return ck_ceil_div(a, b) * b; }

static inline void *ck_alloc(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    return aligned_alloc(64, rounded ? rounded : 64);
}

/// Largest scratch buffer kept between calls (ck_scratch_acquire); larger ones are allocated and freed
/// per call.
#define CK_SCRATCH_KEEP ((size_t)8 << 20)

/// A 64-byte aligned buffer of at least `bytes`: the most recently released free buffer of the
/// process-wide pool (grown as needed, kept for the process) when `bytes` <= CK_SCRATCH_KEEP and the
/// pool has one or room for one, else a fresh allocation. NULL when memory runs out. Contents are
/// unspecified.
void *ck_scratch_acquire(size_t bytes);

/// Gives back a buffer from ck_scratch_acquire (NULL is ignored).
void ck_scratch_release(void *buffer);

/// bfloat16 bits of f, round to nearest even; NaN stays a quiet NaN (as BFloat16.init does).
static inline uint16_t ck_bf16_bits(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((bits >> 16) | 0x0040);
    uint32_t lsb = (bits >> 16) & 1;
    return (uint16_t)((bits + 0x7FFFu + lsb) >> 16);
}

/// Writes n floats as out_dtype (round to nearest even for the 16-bit types).
static inline void ck_store_portable(const float *src, void *dst, int out_dtype, int64_t n) {
    switch (out_dtype) {
    case CK_OUT_F32:
        if ((const void *)src != dst) memmove(dst, src, (size_t)n * 4);
        break;
    case CK_OUT_F16: {
        _Float16 *d = (_Float16 *)dst;
        for (int64_t i = 0; i < n; i++) d[i] = (_Float16)src[i];
        break;
    }
    default: {
        uint16_t *d = (uint16_t *)dst;
        for (int64_t i = 0; i < n; i++) d[i] = ck_bf16_bits(src[i]);
        break;
    }
    }
}

#if CK_X86
CK_AVX2 static inline void ck_store_avx2(const float *src, void *dst, int out_dtype, int64_t n) {
    if (out_dtype == CK_OUT_F16) {
        uint16_t *d = (uint16_t *)dst;
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm_storeu_si128((__m128i *)(d + i), h);
        }
        ck_store_portable(src + i, d + i, out_dtype, n - i);
    } else {
        ck_store_portable(src, dst, out_dtype, n);
    }
}
#endif

static inline void ck_store(const float *src, void *dst, int out_dtype, int64_t n, int path) {
#if CK_X86
    if (path != CK_PATH_PORTABLE) { ck_store_avx2(src, dst, out_dtype, n); return; }
#endif
    (void)path;
    ck_store_portable(src, dst, out_dtype, n);
}

/// Writes one value as out_dtype at element `index`.
static inline void store_one(void *out, int out_dtype, int64_t index, float v) {
    switch (out_dtype) {
    case CK_OUT_F32: ((float *)out)[index] = v; break;
    case CK_OUT_F16: ((_Float16 *)out)[index] = (_Float16)v; break;
    default: ((uint16_t *)out)[index] = ck_bf16_bits(v); break;
    }
}

static inline size_t ck_out_size(int out_dtype) { return out_dtype == CK_OUT_F32 ? 4 : 2; }

/// The float value of an e4m3fn code (0x7F and 0xFF are NaN).
static inline float ck_e4m3_value(uint8_t code) {
    int t = code & 0x7F;
    float v;
    if (t == 0x7F) return NAN;
    if (t < 8) {
        v = (float)t * 0x1p-9f;
    } else {
        uint32_t bits = ((uint32_t)t << 20) + (120u << 23);
        memcpy(&v, &bits, 4);
    }
    return (code & 0x80) ? -v : v;
}

/// e4m3fn code of a finite v with |v| <= 448, round to nearest even (Float8E4M3FN.encode).
static inline uint8_t ck_e4m3_code(float v) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    uint8_t sign = (uint8_t)((bits >> 24) & 0x80);
    uint32_t mag = bits & 0x7FFFFFFFu;
    if (mag >= 0x43E00000u) return sign | 0x7E;
    if (mag < (121u << 23)) {
        float m;
        memcpy(&m, &mag, 4);
        return sign | (uint8_t)rintf(m * 512.0f);
    }
    uint32_t rounded = mag + 0x7FFFFu + ((mag >> 20) & 1);
    return sign | (uint8_t)((rounded >> 20) - 960);
}

/// out[i] = float(q[i]) * scale for i < n, on `path` (int8_dequantize.c): the one INT8 decode the
/// dequantize kernel and the weight-only GEMV share.
void ck_i8_dequant_segment(const int8_t *q, int64_t n, float scale, float *out, int path);

/// Decodes columns [c0, c0 + len) of weight row `col` into floats.
typedef void (*ck_row_decoder)(const void *context, int64_t col, int64_t c0, int64_t len, float *out, int path);

/// Portable GEMV for few rows: y[r, col] = (sum_c x[r, c] w[col, c]) * post + bias[col] for
/// columns [n0, n1), every weight row decoded 512 values at a time into a buffer and used for all
/// m rows (int8_gemv_weight_only.c). The AVX2 GEMVs decode in registers instead.
void ck_gemv_decoded_portable(const float *x, int64_t m, int64_t k, ck_row_decoder decode, const void *context,
                              float post, int64_t n, const float *bias, void *out, int out_dtype, int64_t n0,
                              int64_t n1);

#endif
