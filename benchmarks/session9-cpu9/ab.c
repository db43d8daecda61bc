// A/B harness (session 7, dec7): several decoded-GEMM variants and OpenBLAS sgemm linked into one
// process, called in turn (round robin, R rounds), one core's share as cpu6-harness (pack input + N/2
// columns in four ranges of granule 16), thread CPU time; best and median per variant.
#include "CKernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dlfcn.h>
#define DECL(n) int n##_gemm(const float *, int64_t, int64_t, int64_t, const ck_decoded_weight *, float, const float *, void *, int, int64_t, int64_t, int); \
  void n##_pack(const float *, int64_t, int64_t, int64_t, int64_t, float *, int); \
  void n##_pack8(const uint8_t *, int64_t, int64_t, int64_t, int64_t, float *, int); int64_t n##_isize(int64_t, int64_t);
VARIANTS
typedef struct { const char *name; int (*gemm)(const float *, int64_t, int64_t, int64_t, const ck_decoded_weight *, float, const float *, void *, int, int64_t, int64_t, int);
  void (*pack)(const float *, int64_t, int64_t, int64_t, int64_t, float *, int); void (*pack8)(const uint8_t *, int64_t, int64_t, int64_t, int64_t, float *, int); int64_t (*isize)(int64_t, int64_t); } variant;
#define ENTRY(n) {#n, n##_gemm, n##_pack, n##_pack8, n##_isize}
static variant vs[] = {TABLE};
static double tcpu(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static uint64_t st = 88172645463325252ull;
static uint32_t rnd(void) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return (uint32_t)st; }
static void *xa(size_t b) { void *p = aligned_alloc(64, (b + 63) / 64 * 64 + 64); if (!p) exit(2); memset(p, 0, b); return p; }
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
static void ranges(int64_t total, int64_t granule, int parts, int64_t *b) {
    int64_t units = (total + granule - 1) / granule;
    for (int p = 0; p <= parts; p++) { int64_t u = units * p / parts * granule; b[p] = u < total ? u : total; }
}
int main(int argc, char **argv) {
    const char *mode = argv[1];
    int64_t m = atoll(argv[2]), n = atoll(argv[3]), k = atoll(argv[4]);
    int R = atoi(argv[5]), path = getenv("CKPATH") ? atoi(getenv("CKPATH")) : CK_PATH_AVX512VNNI, fp8 = !strcmp(mode, "fp8");
    int nv = sizeof vs / sizeof vs[0], sg = getenv("NOSGEMM") == NULL;
    const int64_t bk = 128, bn = 128, kb = (k + bk - 1) / bk, nh = n / 2;
    int8_t *w = xa(n * k); uint8_t *xq = xa(m * k);
    float *sw = xa(((n + bn - 1) / bn) * kb * 4), *out = xa(m * n * 4), *ref = xa(m * n * 4), *xf = xa(m * k * 4), *wf = xa(n * k * 4);
    for (int64_t i = 0; i < n * k; i++) w[i] = (int8_t)(rnd() % 255 - 127);
    for (int64_t i = 0; i < m * k; i++) xq[i] = (uint8_t)(rnd() % 255 - 127);
    for (int64_t i = 0; i < ((n + bn - 1) / bn) * kb; i++) sw[i] = 1e-3f * (1 + rnd() % 100);
    for (int64_t i = 0; i < m * k; i++) xf[i] = (float)(int8_t)xq[i] * 0.01f;
    for (int64_t i = 0; i < n * k; i++) wf[i] = (float)w[i] * 0.01f;
    for (int64_t i = 0; fp8 && i < m * k; i++) xq[i] &= 0x77;
    for (int64_t i = 0; fp8 && i < n * k; i++) w[i] &= 0x77;
    ck_decoded_weight dw = {fp8 ? CK_WEIGHT_E4M3 : CK_WEIGHT_INT8, w, sw, 0.5f, bn, bk};
    void (*gemm)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int) = NULL;
    if (sg) {
        // OpenBLAS 0.3.21 takes this CPU for a Prescott (generic kernels, ~5x slower) unless told, as
        // the Swift loader (OpenBLAS.swift) tells it from CPUID.
        setenv("OPENBLAS_CORETYPE", __builtin_cpu_supports("avx512f") ? "SkylakeX" : "Haswell", 0);
        void *h = dlopen("libopenblas.so.0", RTLD_NOW);
        ((void (*)(int))dlsym(h, "openblas_set_num_threads"))(1);
        gemm = (void (*)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int))dlsym(h, "cblas_sgemm");
    }
    int nt = nv + sg;
    double *t = xa(sizeof(double) * nt * R);
    float **xps = malloc(sizeof(float *) * nv);
    for (int v = 0; v < nv; v++) xps[v] = xa(vs[v].isize(m, k) * 4);
    int64_t b[5];
    ranges(nh, 16, 4, b);
    for (int r = -1; r < R; r++)
        for (int v = 0; v < nt; v++) {
            double t0 = tcpu();
            if (v == nv) gemm(101, 111, 112, (int)m, (int)nh, (int)k, 1, xf, (int)k, wf, (int)k, 0, out, (int)n);
            else {
                if (fp8) vs[v].pack8(xq, m, k, 0, (m + 5) / 6, xps[v], path); else vs[v].pack(xf, m, k, 0, (m + 5) / 6, xps[v], path);
                for (int p = 0; p < 4; p++) vs[v].gemm(xps[v], m, n, k, &dw, 1.0f, NULL, out, CK_OUT_F32, b[p], b[p + 1], path);
            }
            if (r >= 0) t[v * R + r] = tcpu() - t0;
            if (r == -1 && v < nv) { // parity vs variant 0 over the computed columns
                if (v == 0) for (int64_t i = 0; i < m; i++) memcpy(ref + i * n, out + i * n, nh * 4);
                else { int64_t bad = 0; for (int64_t i = 0; i < m; i++) bad += memcmp(ref + i * n, out + i * n, nh * 4) != 0;
                       if (bad) printf("PARITY %s vs %s: %lld rows differ\n", vs[v].name, vs[0].name, (long long)bad); }
            }
        }
    double ops = 2.0 * m * nh * k;
    printf("%s %lldx%lldx%lld R=%d:", mode, (long long)m, (long long)n, (long long)k, R);
    for (int v = 0; v < nt; v++) {
        qsort(t + v * R, R, 8, cmpd);
        printf("  %s best %.2f ms (%.0f GF/s) med %.2f", v == nv ? "sgemm" : vs[v].name, t[v * R] * 1e3, ops / t[v * R] * 1e-9, t[v * R + R / 2] * 1e3);
    }
    printf("\n");
}
