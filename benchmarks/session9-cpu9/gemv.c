// Build (session 9): K=Sources/Backends/CPUKernels; compile every $K/*.c with clang -O3 -fno-math-errno -I$K/include -I$K -c,
// then clang -O3 -I$K/include gemv.c gemv_zmm.c *.o -lpthread -lm -o gemv; run ./gemv (no arguments).
// One thread: weight-only INT8 and FP8 GEMV (M = 1), GB/s of weight in L2 (256 x 3072, repeated) and
// streamed (rotating over 1 GB of copies), against a vector max read of the same bytes (the "read" line).
#include "CKernels.h"
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
__attribute__((target("avx2"))) static int readmax(const uint8_t *p, size_t n) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i < n; i += 128) {
        a = _mm256_max_epu8(a, _mm256_load_si256((const __m256i *)(p + i)));
        b = _mm256_max_epu8(b, _mm256_load_si256((const __m256i *)(p + i + 32)));
        c = _mm256_max_epu8(c, _mm256_load_si256((const __m256i *)(p + i + 64)));
        d = _mm256_max_epu8(d, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    a = _mm256_max_epu8(_mm256_max_epu8(a, b), _mm256_max_epu8(c, d));
    return _mm256_extract_epi8(a, 0);
}
void z_wo(const float *, int64_t, const int8_t *, const float *, int64_t, int64_t, float *);
int main(int argc, char **argv) {
    const int64_t k = 3072, nl2 = 256, ns = 4608; // streamed: 4608 x 3072 = 14 MB per copy
    const size_t copies = 80, sz = ns * k;        // 1.1 GB
    uint8_t *w = aligned_alloc(64, sz * copies);
    for (size_t i = 0; i < sz * copies; i++) w[i] = (uint8_t)((i * 2654435761u >> 13) & 0x77);
    float *x = aligned_alloc(64, k * 4), *sw = malloc(((ns + 127) / 128) * (k / 128) * 4), *y = malloc(ns * 4);
    for (int64_t i = 0; i < k; i++) x[i] = (float)(i % 7) * 0.1f;
    for (int64_t i = 0; i < ((ns + 127) / 128) * (k / 128); i++) sw[i] = 0.01f;
    volatile int sink = 0;
    for (int round = 0; round < 3; round++) {
        double t0 = now();
        for (int r = 0; r < 2000; r++) ck_i8_gemv_weight_only(x, 1, k, (int8_t *)w, sw, nl2, 128, 128, NULL, y, CK_OUT_F32, 0, nl2, CK_PATH_AVX2);
        double t1 = now();
        for (int r = 0; r < 2000; r++) ck_fp8_gemv(x, 1, k, w, 0.5f, 1.0f, nl2, NULL, y, CK_OUT_F32, 0, nl2, CK_PATH_AVX2);
        double t2 = now();
        for (int r = 0; r < 2000; r++) z_wo(x, k, (int8_t *)w, sw, nl2, 128, y);
        double t3 = now(), b = 2000.0 * nl2 * k * 1e-9;
        printf("L2   : int8-wo %.1f GB/s  fp8 %.1f GB/s  zmm-wo %.1f GB/s\n", b / (t1 - t0), b / (t2 - t1), b / (t3 - t2));
        double s0 = now();
        for (size_t c = 0; c < copies; c++) ck_i8_gemv_weight_only(x, 1, k, (int8_t *)(w + c * sz), sw, ns, 128, 128, NULL, y, CK_OUT_F32, 0, ns, CK_PATH_AVX2);
        double s1 = now();
        for (size_t c = 0; c < copies; c++) ck_fp8_gemv(x, 1, k, w + c * sz, 0.5f, 1.0f, ns, NULL, y, CK_OUT_F32, 0, ns, CK_PATH_AVX2);
        double s2 = now();
        for (size_t c = 0; c < copies; c++) sink += readmax(w + c * sz, sz);
        double s4 = now();
        for (size_t c = 0; c < copies; c++) z_wo(x, k, (int8_t *)(w + c * sz), sw, ns, 128, y);
        double s3 = now(), bs = (double)copies * sz * 1e-9;
        printf("DRAM : int8-wo %.1f GB/s  fp8 %.1f GB/s  read %.1f GB/s zmm-wo %.1f GB/s\n", bs / (s1 - s0), bs / (s2 - s1), bs / (s4 - s2), bs / (s3 - s4));
    }
    { float *y2 = malloc(ns * 4); ck_i8_gemv_weight_only(x, 1, k, (int8_t *)w, sw, ns, 128, 128, NULL, y, CK_OUT_F32, 0, ns, CK_PATH_AVX2); z_wo(x, k, (int8_t *)w, sw, ns, 128, y2);
      int bad = 0; for (int64_t i = 0; i < ns; i++) bad += memcmp(y + i, y2 + i, 4) != 0; printf("bit differences: %d of %lld\n", bad, (long long)ns); }
    return sink == 12345;
}
