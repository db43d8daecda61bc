#include <stdlib.h>
static int64_t PF = 512;
#define AVX2 __attribute__((target("avx2,fma,f16c")))
AVX2 static inline __attribute__((always_inline)) void x_i8_row1(const float *x, int64_t k, const int8_t *wr,
        const float *swr, int64_t bk, float *y, int pf) {
    const int64_t kb = (k + bk - 1) / bk;
    __m256 total = _mm256_setzero_ps();
    for (int64_t j = 0; j < kb; j++) {
        const int64_t p0 = j * bk, len = k - p0 < bk ? k - p0 : bk;
        const int8_t *wb = wr + p0;
        const __m256 s = _mm256_set1_ps(swr[j]);
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        const int64_t vlen = len / 32 * 32;
        for (int64_t t = 0; t < vlen; t += 32) {
            if (pf) _mm_prefetch((const char *)(wb + t + PF), _MM_HINT_T0);
#pragma clang loop unroll(full)
            for (int u = 0; u < 4; u++) {
                const __m128i codes = _mm_loadl_epi64((const __m128i *)(wb + t + 8 * u));
                const __m256 wv = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(codes)), s);
                acc[u] = _mm256_fmadd_ps(_mm256_loadu_ps(x + p0 + t + 8 * u), wv, acc[u]);
            }
        }
        total = _mm256_add_ps(total, _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(total), _mm256_extractf128_ps(total, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h)); h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    *y = _mm_cvtss_f32(h);
}
/// Whole row, accumulators across blocks (no per-block reduction): acc += x * (q*s).
AVX2 static inline __attribute__((always_inline)) void x_i8_row1b(const float *x, int64_t k, const int8_t *wr,
        const float *swr, int64_t bk, float *y) {
    const int64_t kb = (k + bk - 1) / bk;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t j = 0; j < kb; j++) {
        const int64_t p0 = j * bk, len = k - p0 < bk ? k - p0 : bk;
        const int8_t *wb = wr + p0;
        const __m256 s = _mm256_set1_ps(swr[j]);
        const int64_t vlen = len / 32 * 32;
        for (int64_t t = 0; t < vlen; t += 32) {
            _mm_prefetch((const char *)(wb + t + PF), _MM_HINT_T0);
#pragma clang loop unroll(full)
            for (int u = 0; u < 4; u++) {
                const __m256 wv = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(wb + t + 8 * u)))), s);
                acc[u] = _mm256_fmadd_ps(_mm256_loadu_ps(x + p0 + t + 8 * u), wv, acc[u]);
            }
        }
    }
    __m256 total = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(total), _mm256_extractf128_ps(total, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h)); h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    *y = _mm_cvtss_f32(h);
}
AVX2 static inline void x_e4m3_16(const uint8_t *q, __m256 *lo, __m256 *hi) {
    const __m256i shifted = _mm256_slli_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)q)), 8);
    __m256i h = _mm256_and_si256(_mm256_srai_epi16(shifted, 1), _mm256_set1_epi16((short)0xBFFF));
    const __m256i nan = _mm256_set1_epi16(0x7F00);
    h = _mm256_or_si256(h, _mm256_cmpeq_epi16(_mm256_and_si256(shifted, nan), nan));
    *lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
    *hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}
AVX2 static void x_fp8_row1(const float *x, int64_t k, const uint8_t *wr, float wscale, float *y, int pf) {
    const __m256 s = _mm256_set1_ps(wscale * 256.0f);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const int64_t vlen = k / 32 * 32;
    for (int64_t t = 0; t < vlen; t += 32) {
        if (pf) _mm_prefetch((const char *)(wr + t + PF), _MM_HINT_T0);
#pragma clang loop unroll(full)
        for (int u = 0; u < 2; u++) {
            __m256 w0, w1;
            x_e4m3_16(wr + t + 16 * u, &w0, &w1);
            acc[2 * u] = _mm256_fmadd_ps(_mm256_loadu_ps(x + t + 16 * u), _mm256_mul_ps(w0, s), acc[2 * u]);
            acc[2 * u + 1] = _mm256_fmadd_ps(_mm256_loadu_ps(x + t + 16 * u + 8), _mm256_mul_ps(w1, s), acc[2 * u + 1]);
        }
    }
    __m256 total = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(total), _mm256_extractf128_ps(total, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h)); h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    *y = _mm_cvtss_f32(h);
}
/// integer decode: sign-extended code << 20 & 0x87F00000 is the float32 of value * 2^-120
AVX2 static void x_fp8_row1_int(const float *x, int64_t k, const uint8_t *wr, float wscale, float *y) {
    const __m256 s = _mm256_set1_ps(wscale), e120 = _mm256_set1_ps(0x1p120f);
    const __m256i mask = _mm256_set1_epi32((int)0x87F00000u), nanb = _mm256_set1_epi32(0x07F00000);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const int64_t vlen = k / 32 * 32;
    for (int64_t t = 0; t < vlen; t += 32) {
        _mm_prefetch((const char *)(wr + t + PF), _MM_HINT_T0);
#pragma clang loop unroll(full)
        for (int u = 0; u < 4; u++) {
            __m256i c = _mm256_and_si256(_mm256_slli_epi32(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(wr + t + 8 * u))), 20), mask);
            c = _mm256_or_si256(c, _mm256_cmpeq_epi32(_mm256_and_si256(c, nanb), nanb));
            const __m256 w = _mm256_mul_ps(_mm256_mul_ps(_mm256_castsi256_ps(c), e120), s);
            acc[u] = _mm256_fmadd_ps(_mm256_loadu_ps(x + t + 8 * u), w, acc[u]);
        }
    }
    __m256 total = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(total), _mm256_extractf128_ps(total, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h)); h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    *y = _mm_cvtss_f32(h);
}
/// FP8: 32 codes per step; bytes unpacked into the high byte of words (lane order: codes 0-7 and 16-23 in lo,
/// 8-15 and 24-31 in hi), f16 = (code << 8 >>a 1) & 0xBFFF, NaN codes found by a running max of code & 0x7F.
AVX2 static float x_fp8_row32(const float *x, int64_t k, const uint8_t *wr, float wscale, int mul, int pf) {
    const __m256 s = _mm256_set1_ps(wscale * 256.0f);
    const __m256i clear14 = _mm256_set1_epi16((short)0xBFFF), low7 = _mm256_set1_epi8(0x7F), zero = _mm256_setzero_si256();
    __m256i nanscan = zero;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const int64_t vlen = k / 32 * 32;
    for (int64_t t = 0; t < vlen; t += 32) {
        if (pf) _mm_prefetch((const char *)(wr + t + PF), _MM_HINT_T0);
        const __m256i c = _mm256_loadu_si256((const __m256i *)(wr + t));
        nanscan = _mm256_max_epu8(nanscan, _mm256_and_si256(c, low7));
        const __m256i lo = _mm256_and_si256(_mm256_srai_epi16(_mm256_unpacklo_epi8(zero, c), 1), clear14);
        const __m256i hi = _mm256_and_si256(_mm256_srai_epi16(_mm256_unpackhi_epi8(zero, c), 1), clear14);
        __m256 w0 = _mm256_cvtph_ps(_mm256_castsi256_si128(lo));       // codes 0-7
        __m256 w1 = _mm256_cvtph_ps(_mm256_castsi256_si128(hi));       // 8-15
        __m256 w2 = _mm256_cvtph_ps(_mm256_extracti128_si256(lo, 1));  // 16-23
        __m256 w3 = _mm256_cvtph_ps(_mm256_extracti128_si256(hi, 1));  // 24-31
        if (mul) { w0 = _mm256_mul_ps(w0, s); w1 = _mm256_mul_ps(w1, s); w2 = _mm256_mul_ps(w2, s); w3 = _mm256_mul_ps(w3, s); }
        acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(x + t), w0, acc[0]);
        acc[1] = _mm256_fmadd_ps(_mm256_loadu_ps(x + t + 8), w1, acc[1]);
        acc[2] = _mm256_fmadd_ps(_mm256_loadu_ps(x + t + 16), w2, acc[2]);
        acc[3] = _mm256_fmadd_ps(_mm256_loadu_ps(x + t + 24), w3, acc[3]);
    }
    __m256 total = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(total), _mm256_extractf128_ps(total, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h)); h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    if (_mm256_movemask_epi8(_mm256_cmpeq_epi8(nanscan, low7))) return __builtin_nanf("");
    return _mm_cvtss_f32(h);
}

/// INT8 weight-only, 4 weight rows at once (one x load feeds 4 FMAs), 2 accumulators per row.
AVX2 static void x_i8_rows4(const float *x, int64_t k, const int8_t *w, const float *sw, int64_t kb, int64_t bk,
                            float *y, int pf) {
    __m256 acc[4][2];
    for (int c = 0; c < 4; c++) acc[c][0] = acc[c][1] = _mm256_setzero_ps();
    for (int64_t j = 0; j < kb; j++) {
        const int64_t p0 = j * bk;
        __m256 s[4];
        for (int c = 0; c < 4; c++) s[c] = _mm256_set1_ps(sw[c * kb + j]);
        for (int64_t t = p0; t < p0 + bk; t += 16) {
            const __m256 x0 = _mm256_loadu_ps(x + t), x1 = _mm256_loadu_ps(x + t + 8);
#pragma clang loop unroll(full)
            for (int c = 0; c < 4; c++) {
                const int8_t *wr = w + c * k + t;
                if (pf && (t & 63) == 0) _mm_prefetch((const char *)(wr + PF), _MM_HINT_T0);
                const __m256 w0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)wr))), s[c]);
                const __m256 w1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(wr + 8)))), s[c]);
                acc[c][0] = _mm256_fmadd_ps(x0, w0, acc[c][0]);
                acc[c][1] = _mm256_fmadd_ps(x1, w1, acc[c][1]);
            }
        }
    }
    for (int c = 0; c < 4; c++) {
        __m256 total = _mm256_add_ps(acc[c][0], acc[c][1]);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(total), _mm256_extractf128_ps(total, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h)); h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        y[c] = _mm_cvtss_f32(h);
    }
}
AVX2 static void x_fp8_rows4(const float *x, int64_t k, const uint8_t *w, float wscale, float *y, int mul, int pf) {
    const __m256 s = _mm256_set1_ps(wscale * 256.0f);
    const __m256i clear14 = _mm256_set1_epi16((short)0xBFFF), low7 = _mm256_set1_epi8(0x7F), zero = _mm256_setzero_si256();
    __m256i nanscan = zero;
    __m256 acc[4][2];
    for (int c = 0; c < 4; c++) acc[c][0] = acc[c][1] = _mm256_setzero_ps();
    for (int64_t t = 0; t < k; t += 32) {
        const __m256 x0 = _mm256_loadu_ps(x + t), x1 = _mm256_loadu_ps(x + t + 8);
        const __m256 x2 = _mm256_loadu_ps(x + t + 16), x3 = _mm256_loadu_ps(x + t + 24);
#pragma clang loop unroll(full)
        for (int r = 0; r < 4; r++) {
            if (pf && (t & 63) == 0) _mm_prefetch((const char *)(w + r * k + t + PF), _MM_HINT_T0);
            const __m256i c = _mm256_loadu_si256((const __m256i *)(w + r * k + t));
            nanscan = _mm256_max_epu8(nanscan, _mm256_and_si256(c, low7));
            const __m256i lo = _mm256_and_si256(_mm256_srai_epi16(_mm256_unpacklo_epi8(zero, c), 1), clear14);
            const __m256i hi = _mm256_and_si256(_mm256_srai_epi16(_mm256_unpackhi_epi8(zero, c), 1), clear14);
            __m256 w0 = _mm256_cvtph_ps(_mm256_castsi256_si128(lo));
            __m256 w1 = _mm256_cvtph_ps(_mm256_castsi256_si128(hi));
            __m256 w2 = _mm256_cvtph_ps(_mm256_extracti128_si256(lo, 1));
            __m256 w3 = _mm256_cvtph_ps(_mm256_extracti128_si256(hi, 1));
            if (mul) { w0 = _mm256_mul_ps(w0, s); w1 = _mm256_mul_ps(w1, s); w2 = _mm256_mul_ps(w2, s); w3 = _mm256_mul_ps(w3, s); }
            acc[r][0] = _mm256_fmadd_ps(x0, w0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x1, w1, acc[r][1]);
            acc[r][0] = _mm256_fmadd_ps(x2, w2, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x3, w3, acc[r][1]);
        }
    }
    for (int c = 0; c < 4; c++) {
        __m256 total = _mm256_add_ps(acc[c][0], acc[c][1]);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(total), _mm256_extractf128_ps(total, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h)); h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        y[c] = _mm_cvtss_f32(h);
    }
    if (_mm256_movemask_epi8(_mm256_cmpeq_epi8(nanscan, low7))) y[0] = __builtin_nanf("");
}
static const float *s_;
static void extra_run2(int which, const float *x, int64_t k, const uint8_t *w, float *y, int64_t n0, int64_t n1) {
    for (int64_t col = n0; col < n1; col++) {
        const uint8_t *wr = w + col * k;
        switch (which) {
        case 10: y[col] = x_fp8_row32(x, k, wr, 0.01f, 1, 0); break;
        case 11: y[col] = x_fp8_row32(x, k, wr, 0.01f, 1, 1); break;
        case 12: y[col] = x_fp8_row32(x, k, wr, 0.01f, 0, 1); break;
        case 13: if (col % 4 == 0) x_i8_rows4(x, k, (const int8_t *)wr, (const float *)s_ + (col / 128) * (k / 128), k / 128, 128, y + col, 1); break;
        case 14: if (col % 4 == 0) x_fp8_rows4(x, k, wr, 0.01f, y + col, 1, 1); break;
        case 15: if (col % 4 == 0) x_fp8_rows4(x, k, wr, 0.01f, y + col, 0, 1); break;
        case 16: if (col % 4 == 0) x_i8_rows4(x, k, (const int8_t *)wr, (const float *)s_ + (col / 128) * (k / 128), k / 128, 128, y + col, 0); break;
        }
    }
}
static void extra_run(int which, const float *x, int64_t k, const uint8_t *w, const float *s, int64_t n, int64_t bn,
                      int64_t bk, float *y, int64_t n0, int64_t n1) {
    s_ = s;
    static int init; if (!init) { init = 1; if (getenv("PF")) PF = atoll(getenv("PF")); }
    const int64_t kb = (k + bk - 1) / bk;
    for (int64_t col = n0; col < n1; col++) {
        const uint8_t *wr = w + col * k;
        switch (which) {
        case 17: PF = 256; x_i8_row1(x, k, (const int8_t *)wr, s + (col / bn) * kb, bk, y + col, 1); break;
        case 18: PF = 512; x_i8_row1(x, k, (const int8_t *)wr, s + (col / bn) * kb, bk, y + col, 1); break;
        case 19: PF = 1024; x_i8_row1(x, k, (const int8_t *)wr, s + (col / bn) * kb, bk, y + col, 1); break;
        case 23: PF = 2048; y[col] = x_fp8_row32(x, k, wr, 0.01f, 1, 1); break;
        case 24: PF = 4096; y[col] = x_fp8_row32(x, k, wr, 0.01f, 1, 1); break;
        case 25: PF = 2048; x_i8_row1(x, k, (const int8_t *)wr, s + (col / bn) * kb, bk, y + col, 1); break;
        case 26: PF = 4096; x_i8_row1(x, k, (const int8_t *)wr, s + (col / bn) * kb, bk, y + col, 1); break;
        case 20: PF = 256; y[col] = x_fp8_row32(x, k, wr, 0.01f, 1, 1); break;
        case 21: PF = 512; y[col] = x_fp8_row32(x, k, wr, 0.01f, 1, 1); break;
        case 22: PF = 1024; y[col] = x_fp8_row32(x, k, wr, 0.01f, 1, 1); break;
        case 5: x_i8_row1(x, k, (const int8_t *)wr, s + (col / bn) * kb, bk, y + col, 1); break;
        case 6: x_i8_row1b(x, k, (const int8_t *)wr, s + (col / bn) * kb, bk, y + col); break;
        case 7: x_fp8_row1(x, k, wr, 0.01f, y + col, 0); break;
        case 8: x_fp8_row1(x, k, wr, 0.01f, y + col, 1); break;
        case 9: x_fp8_row1_int(x, k, wr, 0.01f, y + col); break;
        default: extra_run2(which, x, k, w, y, col, col + 1); break;
        }
    }
}
