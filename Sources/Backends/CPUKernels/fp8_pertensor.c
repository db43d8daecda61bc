// Per-tensor FP8 (e4m3fn) kernels: amax, quantize, decode/dequantize, the decode-shape GEMV, and
// the float GEMM epilogue. There is no FP8 arithmetic on these CPUs: codes are decoded to float32
// with integer bit operations (8 per AVX2 instruction group) and fed to FMA or to OpenBLAS.
#include "ck_internal.h"
#include <float.h>

#if CK_X86
CK_AVX2 static float fp8_amax_avx2(const float *x, int64_t n, int *bad) {
    const __m256 sign = _mm256_set1_ps(-0.0f), inf = _mm256_set1_ps(INFINITY);
    __m256 m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps(), nf = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i));
        __m256 b = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i + 8));
        m0 = _mm256_max_ps(m0, a);
        m1 = _mm256_max_ps(m1, b);
        nf = _mm256_or_ps(nf, _mm256_or_ps(_mm256_cmp_ps(a, inf, _CMP_NLT_UQ), _mm256_cmp_ps(b, inf, _CMP_NLT_UQ)));
    }
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i));
        m0 = _mm256_max_ps(m0, a);
        nf = _mm256_or_ps(nf, _mm256_cmp_ps(a, inf, _CMP_NLT_UQ));
    }
    if (_mm256_movemask_ps(nf)) *bad = 1;
    m0 = _mm256_max_ps(m0, m1);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m0), _mm256_extractf128_ps(m0, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}

/// e4m3fn codes of 8 clamped values (|v| <= 448), as Float8E4M3FN.encode computes them: the
/// normal range rounds the float32 bits to 3 mantissa bits (ties to even) and rebiases the
/// exponent, (rounded >> 20) - (120 << 3); below 2^-6 the code is rint(|v| * 512).
CK_AVX2 static inline __m256i e4m3_encode8(__m256 v) {
    const __m256i bits = _mm256_castps_si256(v);
    const __m256i sign = _mm256_srli_epi32(_mm256_and_si256(bits, _mm256_set1_epi32((int)0x80000000u)), 24);
    const __m256i mag = _mm256_and_si256(bits, _mm256_set1_epi32(0x7FFFFFFF));
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(mag, 20), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_add_epi32(_mm256_add_epi32(mag, _mm256_set1_epi32(0x7FFFF)), lsb);
    const __m256i normal = _mm256_sub_epi32(_mm256_srli_epi32(rounded, 20), _mm256_set1_epi32(960));
    const __m256i sub = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_castsi256_ps(mag), _mm256_set1_ps(512.0f)));
    const __m256i is_sub = _mm256_cmpgt_epi32(_mm256_set1_epi32(121 << 23), mag);
    const __m256i is_sat = _mm256_cmpgt_epi32(mag, _mm256_set1_epi32(0x43DFFFFF));
    __m256i code = _mm256_blendv_epi8(normal, sub, is_sub);
    code = _mm256_blendv_epi8(code, _mm256_set1_epi32(0x7E), is_sat);
    return _mm256_or_si256(code, sign);
}

CK_AVX2 static void fp8_quantize_avx2(const float *x, int64_t n, float scale, uint8_t *q) {
    const __m256 s = _mm256_set1_ps(scale), lo = _mm256_set1_ps(-448.0f), hi = _mm256_set1_ps(448.0f);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i c[4];
        for (int u = 0; u < 4; u++) {
            __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i + 8 * u), s);
            c[u] = e4m3_encode8(_mm256_min_ps(_mm256_max_ps(v, lo), hi));
        }
        __m256i p = _mm256_packus_epi16(_mm256_packus_epi32(c[0], c[1]), _mm256_packus_epi32(c[2], c[3]));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + i), p);
    }
    for (; i < n; i++) q[i] = ck_e4m3_code(fminf(fmaxf(x[i] / scale, -448.0f), 448.0f));
}

/// Float values / 256 of 16 codes. An e4m3 code with its sign moved to bit 15 and its other 7
/// bits to bits 13..7 is the float16 of value / 256 (the exponents differ by 8; e4m3 subnormals
/// land on float16 subnormals), so F16C converts it exactly; 0x7F/0xFF become the float16 NaN
/// 0xFFFF. 7 integer operations and 2 conversions per 16 values; callers multiply by 256 (exact)
/// where it costs least.
CK_AVX2 static inline void e4m3_decode16_div256(const uint8_t *q, __m256 *lo, __m256 *hi) {
    const __m256i shifted = _mm256_slli_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)q)), 8);
    __m256i h = _mm256_and_si256(_mm256_srai_epi16(shifted, 1), _mm256_set1_epi16((short)0xBFFF));
    const __m256i nan = _mm256_set1_epi16(0x7F00);
    h = _mm256_or_si256(h, _mm256_cmpeq_epi16(_mm256_and_si256(shifted, nan), nan));
    *lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
    *hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}

/// Float values / 256 of 32 codes as four vectors, in the order of `_mm256_unpack*_epi8`: `w[0]` holds
/// codes 0-7, `w[1]` 8-15, `w[2]` 16-23, `w[3]` 24-31. Each code is unpacked into the high byte of a
/// 16-bit word (code << 8), `>> 1` arithmetic puts the sign at bits 15 and 14 and the other bits at
/// 13..7, and clearing bit 14 leaves the float16 of value / 256 (as in e4m3_decode16_div256), so one
/// unpack, shift and mask serve 16 codes. NaN codes (0x7F, 0xFF) are not mapped here: `nan_scan`
/// keeps the running byte-wise max of code & 0x7F, which reaches 0x7F exactly when one occurred.
CK_AVX2 static inline __attribute__((always_inline)) void e4m3_decode32_div256(const uint8_t *q, __m256 w[4],
                                                                               __m256i *nan_scan) {
    const __m256i codes = _mm256_loadu_si256((const __m256i *)q), zero = _mm256_setzero_si256();
    const __m256i clear14 = _mm256_set1_epi16((short)0xBFFF);
    *nan_scan = _mm256_max_epu8(*nan_scan, _mm256_and_si256(codes, _mm256_set1_epi8(0x7F)));
    const __m256i lo = _mm256_and_si256(_mm256_srai_epi16(_mm256_unpacklo_epi8(zero, codes), 1), clear14);
    const __m256i hi = _mm256_and_si256(_mm256_srai_epi16(_mm256_unpackhi_epi8(zero, codes), 1), clear14);
    w[0] = _mm256_cvtph_ps(_mm256_castsi256_si128(lo));
    w[1] = _mm256_cvtph_ps(_mm256_castsi256_si128(hi));
    w[2] = _mm256_cvtph_ps(_mm256_extracti128_si256(lo, 1));
    w[3] = _mm256_cvtph_ps(_mm256_extracti128_si256(hi, 1));
}

/// R input rows (1 to 4) of the FP8 GEMV for one weight row, codes decoded in registers to the
/// dequantized weight w = value * wscale, 32 codes per step. The decode gives value / 256 exactly, and
/// (value / 256) * (256 * wscale) is the same single rounding of value * wscale as dequantize's (the
/// factor 256 is exact while |wscale| <= FLT_MAX / 256, which the caller checks), so y = sum_k x w with
/// one multiply per 8 codes (wscale = 1 for FP8 x FP8, whose scales apply after the sum). A row that
/// holds a NaN code gives NaN, as x * NaN does in every term's sum. Software prefetch 1 KB ahead in the
/// weight row: measured +10-20% of streamed bandwidth at M = 1 (5120 x 5120, 2 threads).
CK_AVX2 static inline __attribute__((always_inline)) void fp8_rows(const float *x, int64_t k, const uint8_t *wr,
                                                                   float wscale, float *y, const int R) {
    enum { U = 4, PREFETCH = 1024 };
    const __m256 s = _mm256_set1_ps(wscale * 256.0f);
    __m256i nan_scan = _mm256_setzero_si256();
    __m256 acc[4][U];
    for (int r = 0; r < R; r++)
        for (int u = 0; u < U; u++) acc[r][u] = _mm256_setzero_ps();
    const int64_t vlen = k / 32 * 32;
    for (int64_t t = 0; t < vlen; t += 32) {
        _mm_prefetch((const char *)(wr + t + PREFETCH), _MM_HINT_T0);
        __m256 w[4];
        e4m3_decode32_div256(wr + t, w, &nan_scan);
#pragma clang loop unroll(full)
        for (int u = 0; u < 4; u++) {
            w[u] = _mm256_mul_ps(w[u], s);
#pragma clang loop unroll(full)
            for (int r = 0; r < R; r++) {
                // R = 1 keeps four chains (FMA latency); more rows share two per row (registers).
                const int a = R == 1 ? u : u & 1;
                acc[r][a] = _mm256_fmadd_ps(_mm256_loadu_ps(x + r * k + t + 8 * u), w[u], acc[r][a]);
            }
        }
    }
    const int nan_code = _mm256_movemask_epi8(_mm256_cmpeq_epi8(nan_scan, _mm256_set1_epi8(0x7F))) != 0;
    for (int r = 0; r < R; r++) {
        float rest = 0;
        for (int64_t t = vlen; t < k; t++) rest += x[r * k + t] * (ck_e4m3_value(wr[t]) * wscale);
        const __m256 sum = _mm256_add_ps(_mm256_add_ps(acc[r][0], acc[r][1]), _mm256_add_ps(acc[r][2], acc[r][3]));
        y[r] = nan_code ? NAN : ck_hsum8(sum) + rest;
    }
}

/// Float values / 256 of 16 codes in code order, on zmm (the same float16 mapping as e4m3_decode16_div256).
CK_AVX512 static inline __m512 e4m3_decode16_div256_zmm(__m128i codes) {
    const __m256i shifted = _mm256_slli_epi16(_mm256_cvtepu8_epi16(codes), 8);
    return _mm512_cvtph_ps(_mm256_and_si256(_mm256_srai_epi16(shifted, 1), _mm256_set1_epi16((short)0xBFFF)));
}

/// fp8_rows for one input row on zmm (the AVX-512 paths): two 16-lane accumulators whose halves are exactly
/// the AVX2 loop's four 8-lane chains (lanes 0-7 of the first = acc[0] (codes 0-7 of each step), 8-15 =
/// acc[1] (8-15); of the second acc[2], acc[3]), the same products, FMA chains, NaN scan, tail and final
/// reduction, so the same bits, with about two thirds of the instructions per code. Measured on one Zen 4
/// core, weight in L2: 12.2-12.3 GB/s against 11.7-11.8 for the AVX2 loop (session 9): the decode, not the
/// instruction count, bounds it; an e4m3 -> float32 bit mapping without `vcvtph2ps` is the next thing to try.
CK_AVX512 static void fp8_row_avx512(const float *x, int64_t k, const uint8_t *wr, float wscale, float *y) {
    enum { PREFETCH = 1024 };
    const __m512 s = _mm512_set1_ps(wscale * 256.0f);
    __m256i nan_scan = _mm256_setzero_si256();
    __m512 a01 = _mm512_setzero_ps(), a23 = _mm512_setzero_ps();
    const int64_t vlen = k / 32 * 32;
    for (int64_t t = 0; t < vlen; t += 32) {
        _mm_prefetch((const char *)(wr + t + PREFETCH), _MM_HINT_T0);
        const __m256i codes = _mm256_loadu_si256((const __m256i *)(wr + t));
        nan_scan = _mm256_max_epu8(nan_scan, _mm256_and_si256(codes, _mm256_set1_epi8(0x7F)));
        const __m512 w01 = _mm512_mul_ps(e4m3_decode16_div256_zmm(_mm256_castsi256_si128(codes)), s);
        const __m512 w23 = _mm512_mul_ps(e4m3_decode16_div256_zmm(_mm256_extracti128_si256(codes, 1)), s);
        a01 = _mm512_fmadd_ps(_mm512_loadu_ps(x + t), w01, a01);
        a23 = _mm512_fmadd_ps(_mm512_loadu_ps(x + t + 16), w23, a23);
    }
    const int nan_code = _mm256_movemask_epi8(_mm256_cmpeq_epi8(nan_scan, _mm256_set1_epi8(0x7F))) != 0;
    float rest = 0;
    for (int64_t t = vlen; t < k; t++) rest += x[t] * (ck_e4m3_value(wr[t]) * wscale);
    y[0] = nan_code ? NAN : ck_hsum8(ck_fold_chains(a01, a23)) + rest;
}

CK_AVX2 static void fp8_gemv_avx2(const float *x, int64_t m, int64_t k, const uint8_t *w, float wscale, float post,
                                  int64_t n, const float *bias, void *out, int out_dtype, int64_t n0, int64_t n1,
                                  int avx512) {
    for (int64_t col = n0; col < n1; col++) {
        const uint8_t *wr = w + col * k;
        for (int64_t r0 = 0; r0 < m; r0 += 4) {
            float y[4];
            const float *xr = x + r0 * k;
            switch (m - r0 < 4 ? m - r0 : 4) {
            case 1:
                if (avx512) fp8_row_avx512(xr, k, wr, wscale, y);
                else fp8_rows(xr, k, wr, wscale, y, 1);
                break;
            case 2: fp8_rows(xr, k, wr, wscale, y, 2); break;
            case 3: fp8_rows(xr, k, wr, wscale, y, 3); break;
            default: fp8_rows(xr, k, wr, wscale, y, 4); break;
            }
            for (int64_t r = r0; r < r0 + 4 && r < m; r++)
                store_one(out, out_dtype, r * n + col, y[r - r0] * post + (bias ? bias[col] : 0.0f));
        }
    }
}

CK_AVX2 static void fp8_decode_avx2(const uint8_t *q, int64_t n, float scale, float *out) {
    const __m256 s = _mm256_set1_ps(scale), k256 = _mm256_set1_ps(256.0f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 lo, hi;
        e4m3_decode16_div256(q + i, &lo, &hi);
        // (value / 256) * 256 is exact, so the result is float(q) * scale rounded once.
        lo = _mm256_mul_ps(lo, k256);
        hi = _mm256_mul_ps(hi, k256);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(lo, s));
        _mm256_storeu_ps(out + i + 8, _mm256_mul_ps(hi, s));
    }
    for (; i < n; i++) out[i] = ck_e4m3_value(q[i]) * scale;
}
#endif

int ck_fp8_amax(const float *x, int64_t n, float *amax, int path) {
    int bad = 0;
    float a = 0;
    int64_t i = 0;
#if CK_X86
    if (path != CK_PATH_PORTABLE) {
        a = fp8_amax_avx2(x, n & ~(int64_t)7, &bad);
        i = n & ~(int64_t)7;
    }
#endif
    (void)path;
    for (; i < n; i++) {
        float v = fabsf(x[i]);
        if (!(v <= FLT_MAX)) bad = 1;
        a = v > a ? v : a;
    }
    *amax = a;
    return bad;
}

void ck_fp8_quantize(const float *x, int64_t n, float scale, uint8_t *q, int path) {
#if CK_X86
    if (path != CK_PATH_PORTABLE) { fp8_quantize_avx2(x, n, scale, q); return; }
#endif
    (void)path;
    for (int64_t i = 0; i < n; i++) q[i] = ck_e4m3_code(fminf(fmaxf(x[i] / scale, -448.0f), 448.0f));
}

void ck_fp8_decode(const uint8_t *q, int64_t n, float scale, float *out, int path) {
#if CK_X86
    if (path != CK_PATH_PORTABLE) { fp8_decode_avx2(q, n, scale, out); return; }
#endif
    (void)path;
    for (int64_t i = 0; i < n; i++) out[i] = ck_e4m3_value(q[i]) * scale;
}

int ck_fp8_dequantize(const uint8_t *q, int64_t n, float scale, void *out, int out_dtype, int path) {
    if (out_dtype != CK_OUT_F32 && out_dtype != CK_OUT_F16 && out_dtype != CK_OUT_BF16) return -1;
    if (out_dtype == CK_OUT_F32) {
        ck_fp8_decode(q, n, scale, out, path);
        return 0;
    }
    enum { CHUNK = 1024 };
    _Alignas(64) float tmp[CHUNK];
    for (int64_t i = 0; i < n; i += CHUNK) {
        const int64_t len = n - i < CHUNK ? n - i : CHUNK;
        ck_fp8_decode(q + i, len, scale, tmp, path);
        ck_store(tmp, (char *)out + i * 2, out_dtype, len, path);
    }
    return 0;
}

typedef struct {
    const uint8_t *w;
    int64_t k;
    float scale;
} fp8_row_source;

static void fp8_decode_row(const void *context, int64_t col, int64_t c0, int64_t len, float *out, int path) {
    const fp8_row_source *s = context;
    ck_fp8_decode(s->w + col * s->k + c0, len, s->scale, out, path);
}

void ck_fp8_gemv(const float *x, int64_t m, int64_t k, const uint8_t *w, float wscale, float post, int64_t n,
                 const float *bias, void *out, int out_dtype, int64_t n0, int64_t n1, int path) {
#if CK_X86
    // The folded factor 256 * wscale of fp8_rows must stay finite; larger scales decode rows first.
    if (path != CK_PATH_PORTABLE && fabsf(wscale) <= FLT_MAX / 256) {
        // One input row runs on zmm where the CPU has AVX-512 (same bits as the AVX2 loop).
        fp8_gemv_avx2(x, m, k, w, wscale, post, n, bias, out, out_dtype, n0, n1,
                      path == CK_PATH_AVX512VNNI || path == CK_PATH_AMX);
        return;
    }
#endif
    const fp8_row_source source = {w, k, wscale};
    ck_gemv_decoded_portable(x, m, k, fp8_decode_row, &source, post, n, bias, out, out_dtype, n0, n1);
}

void ck_gemm_epilogue(const float *acc, int64_t cols, float alpha, const float *bias, void *out, int out_dtype,
                      int64_t row0, int64_t row1, int path) {
    enum { CHUNK = 1024 };
    _Alignas(64) float tmp[CHUNK];
    const size_t esize = ck_out_size(out_dtype);
    for (int64_t r = row0; r < row1; r++) {
        for (int64_t c0 = 0; c0 < cols; c0 += CHUNK) {
            const int64_t len = cols - c0 < CHUNK ? cols - c0 : CHUNK;
            const float *src = acc + r * cols + c0;
            for (int64_t c = 0; c < len; c++) tmp[c] = src[c] * alpha + (bias ? bias[c0 + c] : 0.0f);
            ck_store(tmp, (char *)out + ((size_t)r * (size_t)cols + (size_t)c0) * esize, out_dtype, len, path);
        }
    }
}
