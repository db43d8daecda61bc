// Session-6 (cpu6) harness: one core's share of a GEMM on this 2-core AVX-512 VNNI machine, timed in
// thread CPU time (resists the other processes on the machine). W8A8: activation packing + ck_i8_gemm_run
// over columns [0, N/2) as four ranges (what the Swift wrapper gives one of two cores); weight-only /
// FP8: ck_decoded_gemm_pack_input (whole input, as the wrapper does before the split, counted
// in full) + ck_decoded_gemm over [0, N/2) in 4 ranges (granule 16). Prints best and median of R runs.
// Usage: harness MODE M N K [reps] [path]; MODE = w8a8 | wo | fp8 | par (parity W8A8 vs portable).
#include "CKernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dlfcn.h>

static double tcpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static uint64_t st = 88172645463325252ull;
static uint32_t rnd(void) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return (uint32_t)st; }
static void *xa(size_t b) { void *p = aligned_alloc(64, (b + 63) / 64 * 64 + 64); if (!p) exit(2); return p; }
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

static void ranges(int64_t total, int64_t granule, int parts, int64_t *b) {
    int64_t units = (total + granule - 1) / granule;
    for (int p = 0; p <= parts; p++) { int64_t u = units * p / parts * granule; b[p] = u < total ? u : total; }
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage\n"); return 1; }
    const char *mode = argv[1];
    int64_t m = atoll(argv[2]), n = atoll(argv[3]), k = atoll(argv[4]);
    int reps = argc > 5 ? atoi(argv[5]) : 7;
    int path = argc > 6 ? atoi(argv[6]) : CK_PATH_AVX512VNNI;
    const int64_t bk = 128, bn = 128, kb = (k + bk - 1) / bk;
    int8_t *w = xa(n * k), *x = xa(m * k);
    float *sw = xa(((n + bn - 1) / bn) * kb * 4), *sx = xa(m * kb * 4), *out = xa(m * n * 4), *ref = xa(m * n * 4);
    int extreme = getenv("EXTREME") != NULL;
    for (int64_t i = 0; i < n * k; i++) w[i] = extreme ? (i & 1 ? 127 : -127) : (int8_t)(rnd() % 255 - 127);
    for (int64_t i = 0; i < m * k; i++) x[i] = extreme ? -127 : (int8_t)(rnd() % 255 - 127);
    for (int64_t i = 0; i < ((n + bn - 1) / bn) * kb; i++) sw[i] = 1e-3f * (1 + rnd() % 100);
    for (int64_t i = 0; i < m * kb; i++) sx[i] = 1e-3f * (1 + rnd() % 100);
    double *t = xa(reps * 8);
    int64_t nh = strcmp(mode, "par") == 0 ? n : n / 2;
    if (!strcmp(mode, "sgemm")) {
        // OpenBLAS (the system's libopenblas.so.0) on this thread: y = x W^T for N/2 columns.
        // OpenBLAS 0.3.21 takes this CPU for a Prescott (generic kernels, ~5x slower) unless told, as
        // the Swift loader (OpenBLAS.swift) tells it from CPUID.
        setenv("OPENBLAS_CORETYPE", __builtin_cpu_supports("avx512f") ? "SkylakeX" : "Haswell", 0);
        void *h = dlopen("libopenblas.so.0", RTLD_NOW);
        if (!h) { fprintf(stderr, "no openblas\n"); return 1; }
        void (*setn)(int) = (void (*)(int))dlsym(h, "openblas_set_num_threads");
        void (*gemm)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int) =
            (void (*)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int))dlsym(h, "cblas_sgemm");
        setn(1);
        float *xf = xa(m * k * 4), *wf = xa(n * k * 4);
        for (int64_t i = 0; i < m * k; i++) xf[i] = (float)x[i] * 0.01f;
        for (int64_t i = 0; i < n * k; i++) wf[i] = (float)w[i] * 0.01f;
        for (int r = 0; r < reps + 1; r++) {
            double t0 = tcpu();
            gemm(101, 111, 112, (int)m, (int)nh, (int)k, 1, xf, (int)k, wf, (int)k, 0, out, (int)n);
            if (r) t[r - 1] = tcpu() - t0;
        }
    } else if (!strcmp(mode, "w8a8") || !strcmp(mode, "par")) {
        int64_t rows, rb;
        ck_i8_gemm_activation_size(m, k, bk, path, &rows, &rb);
        void *ap = xa(rows * rb);
        float *sp = xa(rows * kb * 4);
        ck_i8_gemm_args a = {m, n, k, bk, bn, x, sx, ap, sp, w, sw, NULL, out, CK_OUT_F32};
        // PARTS=P: the N/2 columns in P ranges instead of four (the Swift wrapper's split per core).
        const int parts = getenv("PARTS") ? atoi(getenv("PARTS")) : 4;
        int64_t *b = xa((parts + 1) * 8);
        ranges(nh, ck_i8_gemm_granule(path), parts, b);
        if (!strcmp(mode, "par")) {
            ck_i8_gemm_pack_activation(x, sx, m, k, bk, path, 0, rows, ap, sp);
            for (int p = 0; p < parts; p++) ck_i8_gemm_run(&a, b[p], b[p + 1], path);
            memcpy(ref, out, m * n * 4);
            a.out = ref;
            ck_i8_gemm_run(&a, 0, n, CK_PATH_PORTABLE);
            int64_t bad = 0;
            for (int64_t i = 0; i < m * n; i++) if (memcmp(&out[i], &ref[i], 4)) { if (bad < 5) fprintf(stderr, "diff %lld: %g vs %g\n", (long long)i, out[i], ref[i]); bad++; }
            printf("parity m=%lld n=%lld k=%lld path=%d: %lld differ\n", (long long)m, (long long)n, (long long)k, path, (long long)bad);
            return bad != 0;
        }
        for (int r = 0; r < reps + 1; r++) {
            double t0 = tcpu();
            ck_i8_gemm_pack_activation(x, sx, m, k, bk, path, 0, rows, ap, sp);
            for (int p = 0; p < parts; p++) ck_i8_gemm_run(&a, b[p], b[p + 1], path);
            if (r) t[r - 1] = tcpu() - t0;
        }
    } else {
        int fp8 = !strcmp(mode, "fp8");
        float *xf = xa(m * k * 4);
        for (int64_t i = 0; i < m * k; i++) xf[i] = (float)x[i] * 0.01f;
        uint8_t *xq = (uint8_t *)x;
        for (int64_t i = 0; fp8 && i < m * k; i++) xq[i] &= 0x77;
        for (int64_t i = 0; fp8 && i < n * k; i++) w[i] &= 0x77;
        float *xp = xa(ck_decoded_gemm_input_size(m, k) * 4);
        ck_decoded_weight dw = {fp8 ? CK_WEIGHT_E4M3 : CK_WEIGHT_INT8, w, sw, 0.5f, bn, bk};
        int64_t b[5];
        ranges(nh, 16, 4, b);
        if (getenv("DPAR")) {
            // Decoded-GEMM parity (session 7): this path over all N against the AVX2 path, bit for bit.
            if (fp8) ck_decoded_gemm_pack_input_e4m3(xq, m, k, 0, (m + 5) / 6, xp, path);
            else ck_decoded_gemm_pack_input(xf, m, k, 0, (m + 5) / 6, xp, path);
            ranges(n, 16, 4, b);
            for (int p = 0; p < 4; p++) ck_decoded_gemm(xp, m, n, k, &dw, 1.0f, NULL, out, CK_OUT_F32, b[p], b[p + 1], path);
            for (int p = 0; p < 4; p++) ck_decoded_gemm(xp, m, n, k, &dw, 1.0f, NULL, ref, CK_OUT_F32, b[p], b[p + 1], CK_PATH_AVX2);
            int64_t bad = 0;
            for (int64_t i = 0; i < m * n; i++) if (memcmp(&out[i], &ref[i], 4)) { if (bad < 5) fprintf(stderr, "diff %lld: %g vs %g\n", (long long)i, out[i], ref[i]); bad++; }
            printf("decoded parity %s m=%lld n=%lld k=%lld path=%d vs avx2: %lld differ\n", mode, (long long)m, (long long)n, (long long)k, path, (long long)bad);
            return bad != 0;
        }
        for (int r = 0; r < reps + 1; r++) {
            double t0 = tcpu();
            if (fp8) ck_decoded_gemm_pack_input_e4m3(xq, m, k, 0, (m + 5) / 6, xp, path);
            else ck_decoded_gemm_pack_input(xf, m, k, 0, (m + 5) / 6, xp, path);
            for (int p = 0; p < 4; p++) ck_decoded_gemm(xp, m, n, k, &dw, 1.0f, NULL, out, CK_OUT_F32, b[p], b[p + 1], path);
            if (r) t[r - 1] = tcpu() - t0;
        }
    }
    qsort(t, reps, 8, cmpd);
    double ops = 2.0 * m * nh * k;
    printf("%s M=%lld N=%lld K=%lld (one core, N/2): best %.3f ms (%.1f GOP/s), median %.3f ms; x2 cores equiv best %.3f ms\n",
           mode, (long long)m, (long long)n, (long long)k, t[0] * 1e3, ops / t[0] * 1e-9, t[reps / 2] * 1e3, t[0] * 1e3);
    return 0;
}
