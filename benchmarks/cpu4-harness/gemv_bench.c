// M = 1 GEMV harness: old (8e109ab) vs new kernels, 2 threads, weights rotated over > 1 GB, wall time.
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
void ck_i8_gemv_weight_only(const float *x, int64_t m, int64_t k, const int8_t *w, const float *sw, int64_t n,
                            int64_t bn, int64_t bk, const float *bias, void *out, int out_dtype, int64_t n0,
                            int64_t n1, int path);
void ck_fp8_gemv(const float *x, int64_t m, int64_t k, const uint8_t *w, float wscale, float post, int64_t n,
                 const float *bias, void *out, int out_dtype, int64_t n0, int64_t n1, int path);
void old_ck_i8_gemv_weight_only(const float *x, int64_t m, int64_t k, const int8_t *w, const float *sw, int64_t n,
                            int64_t bn, int64_t bk, const float *bias, void *out, int out_dtype, int64_t n0,
                            int64_t n1, int path);
void old_ck_fp8_gemv(const float *x, int64_t m, int64_t k, const uint8_t *w, float wscale, float post, int64_t n,
                 const float *bias, void *out, int out_dtype, int64_t n0, int64_t n1, int path);
#ifdef EXTRA
#include "extra.h"
#endif
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
enum { NT = 2 };
static int64_t N = 5120, K = 5120, BK = 128, BN = 128;
static int NCOPY;
static uint8_t **W; static float **S; static float *X, *Y;
static int which; static int copy;
static pthread_barrier_t bar;
static volatile float sink;
static void run_part(int t) {
    int64_t n0 = N * t / NT, n1 = N * (t + 1) / NT;
    uint8_t *w = W[copy]; float *s = S[copy];
    switch (which) {
    case 0: old_ck_i8_gemv_weight_only(X, 1, K, (int8_t *)w, s, N, BN, BK, NULL, Y, 0, n0, n1, 1); break;
    case 1: ck_i8_gemv_weight_only(X, 1, K, (int8_t *)w, s, N, BN, BK, NULL, Y, 0, n0, n1, 1); break;
    case 2: old_ck_fp8_gemv(X, 1, K, w, 0.01f, 1.0f, N, NULL, Y, 0, n0, n1, 1); break;
    case 3: ck_fp8_gemv(X, 1, K, w, 0.01f, 1.0f, N, NULL, Y, 0, n0, n1, 1); break;
    case 4: { // read bandwidth: vector max over the weight bytes
        const __m256i *p = (const __m256i *)(w + n0 * K), *e = (const __m256i *)(w + n1 * K);
        __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
        for (; p + 4 <= e; p += 4) { a = _mm256_max_epu8(a, p[0]); b = _mm256_max_epu8(b, p[1]); c = _mm256_max_epu8(c, p[2]); d = _mm256_max_epu8(d, p[3]); }
        a = _mm256_max_epu8(_mm256_max_epu8(a, b), _mm256_max_epu8(c, d));
        sink += _mm256_extract_epi8(a, 0); break; }
#ifdef EXTRA
    default: extra_run(which, X, K, w, s, N, BN, BK, Y, n0, n1); break;
#endif
    }
}
static void *worker(void *arg) {
    int t = (int)(intptr_t)arg;
    for (;;) { pthread_barrier_wait(&bar); if (which < 0) return NULL; run_part(t); pthread_barrier_wait(&bar); }
}
int main(int argc, char **argv) {
    if (argc > 2) { N = atoll(argv[1]); K = atoll(argv[2]); }
    int nk = argc > 3 ? atoi(argv[3]) : 5;
    int reps = argc > 4 ? atoi(argv[4]) : 15;
    size_t bytes = (size_t)N * K;
    NCOPY = getenv("HOT") ? 1 : (int)((1200ull << 20) / bytes) + 1;
    W = malloc(sizeof *W * NCOPY); S = malloc(sizeof *S * NCOPY);
    int64_t kb = (K + BK - 1) / BK, nb = (N + BN - 1) / BN;
    for (int c = 0; c < NCOPY; c++) {
        W[c] = aligned_alloc(64, bytes); S[c] = malloc(sizeof(float) * kb * nb);
        for (size_t i = 0; i < bytes; i++) W[c][i] = (uint8_t)((i * 2654435761u >> 13) % 0x7E) | ((i & 1) << 7);
        for (int64_t i = 0; i < kb * nb; i++) S[c][i] = 0.01f;
    }
    X = aligned_alloc(64, K * 4); Y = aligned_alloc(64, N * 4 * 16);
    for (int64_t i = 0; i < K; i++) X[i] = (float)((i % 7) - 3) * 0.25f;
    pthread_barrier_init(&bar, NULL, NT + 1);
    pthread_t th[NT];
    for (int t = 0; t < NT; t++) pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
    const char *names[] = {"old i8 WO", "new i8 WO", "old fp8", "new fp8", "read bw", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16", "i8pf256", "i8pf512", "i8pf1024", "f8pf256", "f8pf512", "f8pf1024", "f8pf2048", "f8pf4096", "i8pf2048", "i8pf4096"};
    double best[32]; for (int i = 0; i < 32; i++) best[i] = 1e9;
    for (int r = 0; r < reps; r++)
        for (int kk = 0; kk < nk; kk++) {
            if (kk > 4 && kk < 17) continue;
            which = kk; copy = (copy + 1) % NCOPY;
            double t0 = now();
            pthread_barrier_wait(&bar); pthread_barrier_wait(&bar);
            double dt = now() - t0; if (dt < best[kk]) best[kk] = dt;
        }
    which = -1; pthread_barrier_wait(&bar);
    for (int kk = 0; kk < nk; kk++) if (kk <= 4 || kk >= 17)
        printf("%-10s %8.3f ms  %6.2f GB/s  %5.1f%% of read\n", names[kk], best[kk] * 1e3, bytes / best[kk] / 1e9, 100 * best[4] / best[kk]);
    return 0;
}
