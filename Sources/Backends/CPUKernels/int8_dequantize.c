// Block-wise INT8 dequantize: q * scale of each element's block, written in the output dtype.
#include "ck_internal.h"
#include <float.h>

static void seg_dequant_portable(const int8_t *q, int64_t n, float scale, float *out) {
    for (int64_t i = 0; i < n; i++) out[i] = (float)q[i] * scale;
}

#if CK_X86
CK_AVX2 static void seg_dequant_avx2(const int8_t *q, int64_t n, float scale, float *out) {
    const __m256 s = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + i)));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtepi32_ps(v), s));
    }
    seg_dequant_portable(q + i, n - i, scale, out + i);
}
#endif

void ck_i8_dequant_segment(const int8_t *q, int64_t n, float scale, float *out, int path) {
#if CK_X86
    if (path != CK_PATH_PORTABLE) { seg_dequant_avx2(q, n, scale, out); return; }
#endif
    (void)path;
    seg_dequant_portable(q, n, scale, out);
}

int ck_i8_dequantize(const int8_t *q, const float *scales, int64_t rows, int64_t cols, int64_t br, int64_t bc,
                     int64_t row0, int64_t row1, void *out, int out_dtype, int path) {
    if (out_dtype != CK_OUT_F32 && out_dtype != CK_OUT_F16 && out_dtype != CK_OUT_BF16) return -1;
    enum { CHUNK = 1024 };
    _Alignas(64) float tmp[CHUNK];
    const int64_t row_blocks = ck_ceil_div(rows, br), col_blocks = ck_ceil_div(cols, bc);
    const size_t esize = ck_out_size(out_dtype);
    for (int64_t g = row0; g < row1; g++) {
        const int64_t batch = g / rows, r = g % rows;
        const float *srow = scales + (batch * row_blocks + r / br) * col_blocks;
        const int8_t *qrow = q + g * cols;
        char *orow = (char *)out + (size_t)(g - row0) * (size_t)cols * esize;
        for (int64_t c0 = 0; c0 < cols; c0 += CHUNK) {
            const int64_t c1 = c0 + CHUNK < cols ? c0 + CHUNK : cols;
            float *dst = out_dtype == CK_OUT_F32 ? (float *)orow + c0 : tmp;
            for (int64_t c = c0; c < c1;) {
                const int64_t cb = c / bc, end = (cb + 1) * bc < c1 ? (cb + 1) * bc : c1;
                ck_i8_dequant_segment(qrow + c, end - c, srow[cb], dst + (c - c0), path);
                c = end;
            }
            if (out_dtype != CK_OUT_F32) ck_store(tmp, orow + (size_t)c0 * esize, out_dtype, c1 - c0, path);
        }
    }
    return 0;
}
