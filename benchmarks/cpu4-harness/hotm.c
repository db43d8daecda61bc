#define _GNU_SOURCE
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
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(int argc, char **argv) {
    int64_t N = 64, K = 3072, M = atoll(argv[1]);
    uint8_t *W = aligned_alloc(64, N * K); static float S[4096]; for (int i = 0; i < 4096; i++) S[i] = 0.01f;
    for (int64_t i = 0; i < N * K; i++) W[i] = (uint8_t)((i * 2654435761u >> 13) % 0x7E) | ((i & 1) << 7);
    float *X = aligned_alloc(64, M * K * 4), *Y = malloc(M * N * 4);
    for (int64_t i = 0; i < M * K; i++) X[i] = (float)((i % 7) - 3) * 0.25f;
    double best[4] = {1e9, 1e9, 1e9, 1e9};
    for (int r = 0; r < 30; r++) for (int kk = 0; kk < 4; kk++) {
        double t0 = cpu();
        for (int it = 0; it < 20; it++) switch (kk) {
            case 0: old_ck_i8_gemv_weight_only(X, M, K, (int8_t *)W, S, N, 128, 128, NULL, Y, 0, 0, N, 1); break;
            case 1: ck_i8_gemv_weight_only(X, M, K, (int8_t *)W, S, N, 128, 128, NULL, Y, 0, 0, N, 1); break;
            case 2: old_ck_fp8_gemv(X, M, K, W, 0.01f, 1.0f, N, NULL, Y, 0, 0, N, 1); break;
            case 3: ck_fp8_gemv(X, M, K, W, 0.01f, 1.0f, N, NULL, Y, 0, 0, N, 1); break;
        }
        double dt = (cpu() - t0) / 20; if (dt < best[kk]) best[kk] = dt;
    }
    printf("M=%lld  8e109ab i8 WO %.1f us | cpu4 i8 WO %.1f us | 8e109ab fp8 %.1f us | cpu4 fp8 %.1f us\n", (long long)M,
           best[0] * 1e6, best[1] * 1e6, best[2] * 1e6, best[3] * 1e6);
}
