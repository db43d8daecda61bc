// Block-wise INT8 W8A8 for few rows (decode): each weight row is streamed from memory once for all
// m input rows, four weight rows at a time. AVX2 multiplies with the same exact sign trick as the
// GEMM (vpsignb moves w's sign onto x, vpmaddubsw takes |w|, vpmaddwd widens: pair sums within
// int16), one int32 vector per weight row, reduced for the four rows together per K block; the
// float arithmetic is the contract's, acc += float(S) * (sx * sw) in increasing j, bias last.
#include "int8_gemm.h"

enum { GROUP = 4 };

/// Exact int32 block sum of one row pair, plain C.
static int32_t dot_portable(const int8_t *x, const int8_t *w, int64_t n) {
    int32_t s = 0;
    for (int64_t i = 0; i < n; i++) s += (int32_t)x[i] * (int32_t)w[i];
    return s;
}

static void gemv_portable(const ck_i8_gemm_args *a, int64_t n0, int64_t n1) {
    const int64_t k = a->k, bk = a->bk, kb = ck_ceil_div(k, bk);
    for (int64_t col = n0; col < n1; col++) {
        const int8_t *wr = a->w + col * k;
        const float *swr = a->sw + (col / a->bn) * kb;
        for (int64_t r = 0; r < a->m; r++) {
            float total = 0;
            for (int64_t j = 0; j < kb; j++) {
                const int64_t p0 = j * bk, len = k - p0 < bk ? k - p0 : bk;
                const float scale = a->sx[r * kb + j] * swr[j];
                const float term = (float)dot_portable(a->x + r * k + p0, wr + p0, len) * scale;
                total = total + term;
            }
            store_one(a->out, a->out_dtype, r * a->n + col, a->bias ? total + a->bias[col] : total);
        }
    }
}

#if CK_X86
CK_AVX2 static void gemv_avx2(const ck_i8_gemm_args *a, int64_t n0, int64_t n1) {
    const int64_t k = a->k, bk = a->bk, kb = ck_ceil_div(k, bk);
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t col0 = n0; col0 < n1; col0 += GROUP) {
        const int64_t live = n1 - col0 < GROUP ? n1 - col0 : GROUP;
        const int8_t *wr[GROUP];
        const float *swr[GROUP];
        for (int c = 0; c < GROUP; c++) {
            const int64_t col = col0 + (c < live ? c : live - 1);
            wr[c] = a->w + col * k;
            swr[c] = a->sw + (col / a->bn) * kb;
        }
        // The weight rows come from memory for the first input row and from cache after that.
        for (int64_t r = 0; r < a->m; r++) {
            const int8_t *xr = a->x + r * k;
            __m128 total = _mm_setzero_ps();
            for (int64_t j = 0; j < kb; j++) {
                const int64_t p0 = j * bk, len = k - p0 < bk ? k - p0 : bk, vlen = len / 32 * 32;
                __m256i acc[GROUP];
                for (int c = 0; c < GROUP; c++) acc[c] = _mm256_setzero_si256();
                for (int64_t t = 0; t < vlen; t += 32) {
                    const __m256i x = _mm256_loadu_si256((const __m256i *)(xr + p0 + t));
#pragma clang loop unroll(full)
                    for (int c = 0; c < GROUP; c++) {
                        const __m256i w = _mm256_loadu_si256((const __m256i *)(wr[c] + p0 + t));
                        const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
                        acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(p, ones));
                    }
                }
                const __m256i h =
                    _mm256_hadd_epi32(_mm256_hadd_epi32(acc[0], acc[1]), _mm256_hadd_epi32(acc[2], acc[3]));
                __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
                if (vlen < len) {
                    int32_t rest[GROUP];
                    for (int c = 0; c < GROUP; c++)
                        rest[c] = dot_portable(xr + p0 + vlen, wr[c] + p0 + vlen, len - vlen);
                    sums = _mm_add_epi32(sums, _mm_loadu_si128((const __m128i *)rest));
                }
                const __m128 sw = _mm_setr_ps(swr[0][j], swr[1][j], swr[2][j], swr[3][j]);
                const __m128 scale = _mm_mul_ps(_mm_set1_ps(a->sx[r * kb + j]), sw);
                total = _mm_add_ps(total, _mm_mul_ps(_mm_cvtepi32_ps(sums), scale));
            }
            float y[GROUP];
            _mm_storeu_ps(y, total);
            for (int64_t c = 0; c < live; c++)
                store_one(a->out, a->out_dtype, r * a->n + col0 + c, a->bias ? y[c] + a->bias[col0 + c] : y[c]);
        }
    }
}
#endif

void ck_i8_gemv_run(const ck_i8_gemm_args *args, int64_t n0, int64_t n1, int path) {
    if (n0 >= n1) return;
#if CK_X86
    if (path != CK_PATH_PORTABLE) {
        gemv_avx2(args, n0, n1);
        return;
    }
#endif
    (void)path;
    gemv_portable(args, n0, n1);
}
