#define _GNU_SOURCE
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
void ck_i8_gemv_weight_only(const float *x, int64_t m, int64_t k, const int8_t *w, const float *sw, int64_t n,
                            int64_t bn, int64_t bk, const float *bias, void *out, int out_dtype, int64_t n0, int64_t n1, int path);
void ck_fp8_gemv(const float *x, int64_t m, int64_t k, const uint8_t *w, float wscale, float post, int64_t n,
                 const float *bias, void *out, int out_dtype, int64_t n0, int64_t n1, int path);
void old_ck_i8_gemv_weight_only(const float *x, int64_t m, int64_t k, const int8_t *w, const float *sw, int64_t n,
                            int64_t bn, int64_t bk, const float *bias, void *out, int out_dtype, int64_t n0, int64_t n1, int path);
void old_ck_fp8_gemv(const float *x, int64_t m, int64_t k, const uint8_t *w, float wscale, float post, int64_t n,
                 const float *bias, void *out, int out_dtype, int64_t n0, int64_t n1, int path);
#include "extra.h"
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(int argc, char **argv) {
    int64_t N = 32, K = 5120, BK = 128, BN = 128;
    uint8_t *W = aligned_alloc(64, N * K); float S[4096]; for (int i = 0; i < 4096; i++) S[i] = 0.01f;
    for (int64_t i = 0; i < N * K; i++) W[i] = (uint8_t)((i * 2654435761u >> 13) % 0x7E) | ((i & 1) << 7);
    float *X = aligned_alloc(64, K * 4), Y[64];
    for (int64_t i = 0; i < K; i++) X[i] = (float)((i % 7) - 3) * 0.25f;
    int nk = argc > 1 ? atoi(argv[1]) : 10;
    double best[16]; for (int i = 0; i < 16; i++) best[i] = 1e9;
    for (int r = 0; r < 30; r++) for (int kk = 0; kk < nk; kk++) {
        if (kk == 4) continue;
        double t0 = cpu();
        for (int it = 0; it < 50; it++) switch (kk) {
            case 0: old_ck_i8_gemv_weight_only(X, 1, K, (int8_t *)W, S, N, BN, BK, NULL, Y, 0, 0, N, 1); break;
            case 1: ck_i8_gemv_weight_only(X, 1, K, (int8_t *)W, S, N, BN, BK, NULL, Y, 0, 0, N, 1); break;
            case 2: old_ck_fp8_gemv(X, 1, K, W, 0.01f, 1.0f, N, NULL, Y, 0, 0, N, 1); break;
            case 3: ck_fp8_gemv(X, 1, K, W, 0.01f, 1.0f, N, NULL, Y, 0, 0, N, 1); break;
            default: extra_run(kk, X, K, W, S, N, BN, BK, Y, 0, N);
        }
        double dt = (cpu() - t0) / 50; if (dt < best[kk]) best[kk] = dt;
    }
    for (int kk = 0; kk < nk; kk++) if (kk != 4) printf("%d %8.2f us %6.2f GB/s per core\n", kk, best[kk] * 1e6, N * K / best[kk] / 1e9);
}
