#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>
#include <cblas.h>
#include "CKernels.h"
void openblas_set_num_threads(int);
#define DECL(p) int p##_gemm(const float *xp, int64_t m, int64_t n, int64_t k, const ck_decoded_weight *w, float alpha, \
    const float *bias, void *out, int out_dtype, int64_t n0, int64_t n1, int path); \
    void p##_pack(const float *x, int64_t m, int64_t k, int64_t tile0, int64_t tile1, float *xp, int path); \
    int64_t p##_size(int64_t m, int64_t k);
VARIANTS(DECL)
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(int argc, char **argv) {
    int64_t N = atoll(argv[1]), K = atoll(argv[2]), M = atoll(argv[3]); int reps = argc > 4 ? atoi(argv[4]) : 5;
    int fp8 = getenv("FP8") != NULL;
    openblas_set_num_threads(1);
    int8_t *q = malloc(N * K); float *wf = malloc(N * K * 4); int64_t BK = 128, kb = (K + BK - 1) / BK, nb = (N + 127) / 128;
    float *sc = malloc(kb * nb * 4); for (int64_t i = 0; i < kb * nb; i++) sc[i] = 0.01f + 0.001f * (i % 7);
    for (int64_t i = 0; i < N * K; i++) { q[i] = fp8 ? (int8_t)((i * 2654435761u >> 11) % 0x7E) : (int8_t)((int)((i * 2654435761u >> 11) % 255) - 127); }
    ck_decoded_weight w = {fp8 ? CK_WEIGHT_E4M3 : CK_WEIGHT_INT8, q, sc, 0.02f, 128, BK};
    float *x = malloc(M * K * 4); for (int64_t i = 0; i < M * K; i++) x[i] = (float)((i * 7919) % 13) * 0.1f - 0.6f;
    float *y0 = malloc(M * N * 4), *y1 = malloc(M * N * 4);
    // dequantized weight for OpenBLAS (the reference)
    for (int64_t r = 0; r < N; r++) for (int64_t c = 0; c < K; c++) wf[r * K + c] = fp8 ? 0 : q[r * K + c] * sc[(r / 128) * kb + c / BK];
    if (fp8) { extern void ck_fp8_decode(const uint8_t *, int64_t, float, float *, int); ck_fp8_decode((uint8_t *)q, N * K, 0.02f, wf, 1); }
    const char *names[] = VNAMES;
    int nv = sizeof(names) / sizeof(names[0]);
    double best[16]; for (int i = 0; i < 16; i++) best[i] = 1e9;
    float *xp = malloc(64 << 20 > M * K * 8 ? (size_t)64 << 20 : (size_t)M * K * 8);
    for (int r = 0; r < reps; r++) {
        double t0 = cpu();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, K, wf, K, 0.0f, y0, N);
        double dt = cpu() - t0; if (dt < best[15]) best[15] = dt;
        int vi = 0;
#define RUN(p) { double t0 = cpu(); p##_pack(x, M, K, 0, (M + 5) / 6, xp, 1); p##_gemm(xp, M, N, K, &w, 1.0f, NULL, y1, 0, 0, N, 1); \
        double dt = cpu() - t0; if (dt < best[vi]) best[vi] = dt; \
        double e = 0, ref = 0; for (int64_t i = 0; i < M * N; i++) { e = fmax(e, fabs(y1[i] - y0[i])); ref = fmax(ref, fabs(y0[i])); } \
        if (e > 1e-4 * ref) printf("MISMATCH %s %g\n", names[vi], e / ref); vi++; }
        VARIANTS(RUN)
    }
    double fl = 2.0 * M * N * K;
    printf("N=%lld K=%lld M=%lld  openblas %.1f GF/s |", (long long)N, (long long)K, (long long)M, fl / best[15] / 1e9);
    for (int i = 0; i < nv; i++) printf(" %s %.1f (%.2fx)", names[i], fl / best[i] / 1e9, best[15] / best[i]);
    printf("\n");
}
