// Session-5 (cpu5) harness for the AMX / AVX-512 host: parity of the new kernels and their speed on
// all cores, side by side with main's AMX kernel (old_gemm_amx, main's int8_gemm_amx.c renamed) and the
// decoded-panel GEMM's AVX2 micro-kernel, one run (ratios against OpenBLAS come from qlinear bench).
// Build: benchmarks/cpu5-harness/build.sh; run: ./harness [threads].
//
// Parity (exit status 1 on any difference): the AMX GEMM (packed and in-place activation, tail rows,
// block widths 64-256 and 32 / 96, which pack) against the portable kernel; the decoded-panel GEMM on
// the AVX-512 path against the AVX2 path (INT8 and e4m3 weights, tiling edges), bit for bit.
// Timing: T threads pull column parts from a counter (4 parts per thread as CPUKernels.parallelRanges
// makes by default, or one for the new AMX split), medians of REPS calls; each call includes the
// activation / input packing the Swift wrapper does. (A first run timed Debian's static OpenBLAS 0.3.21
// beside them: ~15 GFLOP/s per core on that host, not the bench's SkylakeX baseline, so it was dropped.)
#include "CKernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int old_gemm_amx(const ck_i8_gemm_args *a, int64_t n0, int64_t n1);
int mc512_gemm(const float *xp, int64_t m, int64_t n, int64_t k, const ck_decoded_weight *w, float alpha,
               const float *bias, void *out, int out_dtype, int64_t n0, int64_t n1, int path);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static uint64_t state = 88172645463325252ull;
static uint32_t rnd(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)state;
}
static void *xalloc(size_t bytes) {
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

// MARK: thread pool (workers spin on a generation counter)
typedef void (*job_fn)(void *ctx, int64_t part);
static int nthreads = 16;
static atomic_long generation, next_part, done_workers;
static job_fn job;
static void *job_ctx;
static int64_t job_parts;
static void run_parts(void) {
    for (;;) {
        int64_t p = atomic_fetch_add(&next_part, 1);
        if (p >= job_parts) break;
        job(job_ctx, p);
    }
}
static void *worker(void *arg) {
    (void)arg;
    long seen = 0;
    for (;;) {
        long g;
        while ((g = atomic_load(&generation)) == seen) __builtin_ia32_pause();
        seen = g;
        if (g < 0) return NULL;
        run_parts();
        atomic_fetch_add(&done_workers, 1);
    }
}
static void parallel(int64_t parts, job_fn fn, void *ctx) {
    job = fn;
    job_ctx = ctx;
    job_parts = parts;
    atomic_store(&next_part, 0);
    atomic_store(&done_workers, 0);
    atomic_fetch_add(&generation, 1);
    run_parts();
    while (atomic_load(&done_workers) < nthreads - 1) __builtin_ia32_pause();
}

/// Column parts as parallelRanges makes them: min(4 threads, units) parts of whole granules.
typedef struct { int64_t count, granule, units, parts; } split;
static split split_per(int64_t count, int64_t granule, int64_t parts) {
    split s = {count, granule, (count + granule - 1) / granule, 0};
    s.parts = s.units < parts ? s.units : parts;
    return s;
}
static split split_of(int64_t count, int64_t granule, int threads) { return split_per(count, granule, 4 * threads); }
static void part_range(const split *s, int64_t p, int64_t *a, int64_t *b) {
    *a = s->units * p / s->parts * s->granule;
    *b = s->units * (p + 1) / s->parts * s->granule;
    if (*a > s->count) *a = s->count;
    if (*b > s->count) *b = s->count;
}

// MARK: jobs
typedef struct {
    ck_i8_gemm_args *args;
    split cols;
    int old, path;
    int64_t pack_rows_per_part;
    void *apack;
    float *sxpack;
    atomic_int failed;
} i8_job;
static void i8_pack_part(void *c, int64_t p) {
    i8_job *j = c;
    ck_i8_gemm_args *a = j->args;
    ck_i8_gemm_pack_activation(a->x, a->sx, a->m, a->k, a->bk, j->path, p * j->pack_rows_per_part,
                               (p + 1) * j->pack_rows_per_part, j->apack, j->sxpack);
}
static void i8_gemm_part(void *c, int64_t p) {
    i8_job *j = c;
    int64_t a, b;
    part_range(&j->cols, p, &a, &b);
    if (a >= b) return;
    int rc = j->old ? old_gemm_amx(j->args, a, b) : ck_i8_gemm_run(j->args, a, b, j->path);
    if (rc) atomic_store(&j->failed, 1);
}
/// One W8A8 call: pack (unless in place) and GEMM, as the Swift wrapper does.
static void i8_call(i8_job *j, int in_place) {
    ck_i8_gemm_args *a = j->args;
    if (in_place) {
        a->apack = NULL;
        a->sxpack = NULL;
    } else {
        int64_t rows, row_bytes;
        ck_i8_gemm_activation_size(a->m, a->k, a->bk, j->path, &rows, &row_bytes);
        j->pack_rows_per_part = (rows + nthreads - 1) / nthreads;
        parallel(nthreads, i8_pack_part, j);
        a->apack = j->apack;
        a->sxpack = j->sxpack;
    }
    parallel(j->cols.parts, i8_gemm_part, j);
}

typedef struct {
    const float *x;
    float *xp, *out;
    int64_t m, n, k, tiles_per_part;
    ck_decoded_weight *w;
    split cols;
    int path, mc512;
} dec_job;
static void dec_pack_part(void *c, int64_t p) {
    dec_job *j = c;
    ck_decoded_gemm_pack_input(j->x, j->m, j->k, p * j->tiles_per_part, (p + 1) * j->tiles_per_part, j->xp, j->path);
}
static void dec_gemm_part(void *c, int64_t p) {
    dec_job *j = c;
    int64_t a, b;
    part_range(&j->cols, p, &a, &b);
    if (a < b)
        (j->mc512 ? mc512_gemm : ck_decoded_gemm)(j->xp, j->m, j->n, j->k, j->w, 1.0f, NULL, j->out, CK_OUT_F32, a,
                                                  b, j->path);
}
static void dec_call(dec_job *j) {
    const int64_t tiles = (j->m + 5) / 6;
    j->tiles_per_part = (tiles + nthreads - 1) / nthreads;
    parallel(nthreads, dec_pack_part, j);
    parallel(j->cols.parts, dec_gemm_part, j);
}

// MARK: parity
static int8_t code(int extreme, int64_t i) {
    return extreme ? ((i / 3) % 2 ? 127 : -127) : (int8_t)(rnd() % 255 - 127);
}
static float scale(void) { return (float)(rnd() % 1000 + 1) * 1e-4f; }

static int64_t amx_parity(int64_t m, int64_t n, int64_t k, int64_t bk, int64_t bn, int extreme, int in_place) {
    const int64_t kb = (k + bk - 1) / bk, nb = (n + bn - 1) / bn;
    int8_t *x = xalloc(m * k), *w = xalloc(n * k);
    float *sx = xalloc(m * kb * 4), *sw = xalloc(nb * kb * 4), *bias = xalloc(n * 4);
    float *expect = xalloc(m * n * 4), *got = xalloc(m * n * 4);
    for (int64_t i = 0; i < m * k; i++) x[i] = code(extreme, i);
    for (int64_t i = 0; i < n * k; i++) w[i] = code(extreme, i / 2);
    for (int64_t i = 0; i < m * kb; i++) sx[i] = scale();
    for (int64_t i = 0; i < nb * kb; i++) sw[i] = scale();
    for (int64_t i = 0; i < n; i++) bias[i] = (float)(rnd() % 100) * 0.01f;
    ck_i8_gemm_args a = {m, n, k, bk, bn, x, sx, NULL, NULL, w, sw, bias, expect, CK_OUT_F32};
    ck_i8_gemm_run(&a, 0, n, CK_PATH_PORTABLE);
    int64_t rows, row_bytes;
    ck_i8_gemm_activation_size(m, k, bk, CK_PATH_AMX, &rows, &row_bytes);
    void *ap = xalloc(rows * row_bytes);
    float *sp = xalloc(rows * kb * 4);
    if (!in_place) {
        ck_i8_gemm_pack_activation(x, sx, m, k, bk, CK_PATH_AMX, 0, rows, ap, sp);
        a.apack = ap;
        a.sxpack = sp;
    }
    a.out = got;
    memset(got, 0xFF, m * n * 4);
    const int64_t mid = (n / 2) / 32 * 32;
    ck_i8_gemm_run(&a, 0, mid, CK_PATH_AMX);
    ck_i8_gemm_run(&a, mid, n, CK_PATH_AMX);
    int64_t differ = 0;
    for (int64_t i = 0; i < m * n; i++) differ += memcmp(&got[i], &expect[i], 4) != 0;
    free(x); free(w); free(sx); free(sw); free(bias); free(expect); free(got); free(ap); free(sp);
    return differ;
}

static int64_t decoded_parity(int64_t m, int64_t n, int64_t k, int kind, int64_t bk) {
    const int64_t bn = 128, kb = (k + bk - 1) / bk, nb = (n + bn - 1) / bn;
    float *x = xalloc(m * k * 4), *sc = xalloc(nb * kb * 4), *bias = xalloc(n * 4);
    for (int64_t i = 0; i < n; i++) bias[i] = (float)(rnd() % 100) * 0.01f;
    uint8_t *codes = xalloc(n * k);
    for (int64_t i = 0; i < m * k; i++) x[i] = ((float)(rnd() % 20001) - 10000.0f) * 1e-4f;
    for (int64_t i = 0; i < n * k; i++) {
        codes[i] = (uint8_t)(rnd() % 255);
        if (kind == CK_WEIGHT_E4M3 && (codes[i] & 0x7F) == 0x7F) codes[i] = 0x10;
    }
    for (int64_t i = 0; i < nb * kb; i++) sc[i] = scale();
    ck_decoded_weight w = {kind, codes, sc, 0.37f, bn, bk};
    float *xp = xalloc(ck_decoded_gemm_input_size(m, k) * 4);
    float *ref = xalloc(m * n * 4), *got = xalloc(m * n * 4);
    memset(ref, 0xFF, m * n * 4);
    memset(got, 0xFF, m * n * 4);
    ck_decoded_gemm_pack_input(x, m, k, 0, (m + 5) / 6, xp, CK_PATH_AVX2);
    const int64_t mid = (n / 2) / 16 * 16;
    ck_decoded_gemm(xp, m, n, k, &w, 1.25f, bias, ref, CK_OUT_F32, 0, mid, CK_PATH_AVX2);
    ck_decoded_gemm(xp, m, n, k, &w, 1.25f, bias, ref, CK_OUT_F32, mid, n, CK_PATH_AVX2);
    ck_decoded_gemm(xp, m, n, k, &w, 1.25f, bias, got, CK_OUT_F32, 0, mid, CK_PATH_AMX);
    ck_decoded_gemm(xp, m, n, k, &w, 1.25f, bias, got, CK_OUT_F32, mid, n, CK_PATH_AMX);
    int64_t differ = 0;
    for (int64_t i = 0; i < m * n; i++) differ += memcmp(&got[i], &ref[i], 4) != 0;
    // sanity: the AVX2 result against a float64 dot product for a few outputs
    double worst = 0;
    for (int64_t t = 0; t < 16; t++) {
        int64_t r = rnd() % m, c = rnd() % n;
        double acc = 0, mag = 0;
        for (int64_t p = 0; p < k; p++) {
            double wv;
            if (kind == CK_WEIGHT_INT8) wv = (double)(int8_t)codes[c * k + p] * sc[(c / bn) * kb + p / bk];
            else {
                uint8_t q = codes[c * k + p];
                int e = (q >> 3) & 15, f = q & 7;
                double v = e ? (1 + f / 8.0) * __builtin_pow(2, e - 7) : f / 8.0 * __builtin_pow(2, -6);
                wv = (q & 0x80 ? -v : v) * 0.37f;
            }
            acc += x[r * k + p] * wv;
            mag += __builtin_fabs(x[r * k + p] * wv);
        }
        acc = acc * 1.25 + bias[c];
        double err = __builtin_fabs(ref[r * n + c] - acc) / (mag * 1.25 + 1e-30);
        if (err > worst) worst = err;
    }
    if (worst > 1e-4) {
        printf("  decoded GEMM %lldx%lldx%lld: AVX2 result off float64 by %.2e\n", (long long)m, (long long)n,
               (long long)k, worst);
        differ += 1;
    }
    free(x); free(sc); free(bias); free(codes); free(xp); free(ref); free(got);
    return differ;
}

// MARK: timing
static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
enum { REPS = 7 };
#define MEDIAN(expr) ({ double t_[REPS]; (expr); for (int r_ = 0; r_ < REPS; r_++) { double s_ = now(); (expr); \
    t_[r_] = now() - s_; } qsort(t_, REPS, sizeof(double), cmp_d); t_[REPS / 2]; })

static void time_shape(int64_t m, int64_t n, int64_t k) {
    const int64_t bk = 128, bn = 128, kb = k / bk, nb = (n + bn - 1) / bn;
    int8_t *x = xalloc(m * k), *w = xalloc(n * k);
    float *sx = xalloc(m * kb * 4), *sw = xalloc(nb * kb * 4), *out = xalloc(m * n * 4);
    float *xf = xalloc(m * k * 4);
    for (int64_t i = 0; i < m * k; i++) { x[i] = code(0, i); xf[i] = (float)x[i] * 0.01f; }
    for (int64_t i = 0; i < n * k; i++) w[i] = code(0, i);
    for (int64_t i = 0; i < m * kb; i++) sx[i] = scale();
    for (int64_t i = 0; i < nb * kb; i++) sw[i] = scale();
    const double ops = 2.0 * m * n * k;
    ck_i8_gemm_args a = {m, n, k, bk, bn, x, sx, NULL, NULL, w, sw, NULL, out, CK_OUT_F32};
    int64_t rows, row_bytes;
    ck_i8_gemm_activation_size(m, k, bk, CK_PATH_AMX, &rows, &row_bytes);
    i8_job j = {&a, split_of(n, 32, nthreads), 1, CK_PATH_AMX, 0, xalloc(rows * row_bytes), xalloc(rows * kb * 4), 0};
    double t_old = MEDIAN(i8_call(&j, 0));
    j.old = 0;
    j.cols = split_of(n, 64, nthreads);
    double t_new4 = MEDIAN(i8_call(&j, 1));
    j.cols = split_per(n, 64, nthreads);
    double t_new = MEDIAN(i8_call(&j, 1));
    double t_new_packed = MEDIAN(i8_call(&j, 0));
    printf("%5lld x %5lld x %5lld | AMX main (pack, 4 ranges/core of 32s) %6.2f ms  new (in place, "
           "4 ranges/core of 64s) %6.2f  new (in place, 1 range/core) %6.2f = %.2fx main [%.0f GOP/s]  new packed, "
           "1 range/core %6.2f\n", (long long)m, (long long)n, (long long)k, t_old * 1e3,
           t_new4 * 1e3, t_new * 1e3, t_old / t_new, ops / t_new / 1e9, t_new_packed * 1e3);
    // weight-only INT8 and e4m3 weights: decoded-panel GEMM, AVX2 vs AVX-512 micro-kernel
    float *xp = xalloc(ck_decoded_gemm_input_size(m, k) * 4);
    ck_decoded_weight wi = {CK_WEIGHT_INT8, w, sw, 1, bn, bk}, we = {CK_WEIGHT_E4M3, w, NULL, 0.01f, bn, bk};
    for (int i = 0; i < n * k; i++) if ((w[i] & 0x7F) == 0x7F) w[i] = 0x11;
    dec_job d = {xf, xp, out, m, n, k, 0, &wi, split_of(n, 16, nthreads), CK_PATH_AVX2, 0};
    double t_i2 = MEDIAN(dec_call(&d));
    d.path = CK_PATH_AMX;
    double t_i5 = MEDIAN(dec_call(&d));
    d.cols = split_of(n, 64, nthreads);
    d.mc512 = 1;
    double t_i5mc = m > 512 ? MEDIAN(dec_call(&d)) : t_i5;
    d.mc512 = 0;
    d.w = &we;
    double t_e5 = MEDIAN(dec_call(&d));
    d.path = CK_PATH_AVX2;
    double t_e2 = MEDIAN(dec_call(&d));
    printf("%23s decoded-panel GEMM, INT8 weight: AVX2 %6.2f ms, AVX-512 %6.2f (%.2fx AVX2), AVX-512 with float "
           "tiles <= 512 rows %6.2f | e4m3 weight: AVX2 %6.2f, AVX-512 %6.2f (%.2fx)\n", "", t_i2 * 1e3, t_i5 * 1e3,
           t_i2 / t_i5, t_i5mc * 1e3, t_e2 * 1e3, t_e5 * 1e3, t_e2 / t_e5);
    fflush(stdout);
    free(x); free(w); free(sx); free(sw); free(out); free(xf); free(j.apack); free(j.sxpack); free(xp);
}

int main(int argc, char **argv) {
    if (argc > 1) nthreads = atoi(argv[1]);
    uint32_t f = ck_cpu_features();
    if (!(f & CK_CPU_AVX512F) || !ck_amx_request_permission()) {
        printf("this CPU (features %#x) or OS lacks AVX-512 / AMX: nothing to check\n", f);
        return 3;
    }
    int64_t bad = 0, cases = 0;
    const int64_t ms[] = {17, 32, 33, 64, 100, 130}, bks[] = {64, 128, 256, 32, 96}, ks[] = {320, 512, 768, 512, 500};
    for (int extreme = 0; extreme < 2; extreme++)
        for (int mi = 0; mi < 6; mi++)
            for (int bi = 0; bi < 5; bi++)
                for (int in_place = 0; in_place < 2; in_place++) {
                    const int64_t bk = bks[bi], k = ks[bi];
                    if (in_place && !ck_i8_gemm_activation_in_place(k, bk, CK_PATH_AMX)) continue;
                    int64_t d = amx_parity(ms[mi], 200, k, bk, 64, extreme, in_place);
                    cases++;
                    if (d) printf("  AMX parity FAIL m=%lld bk=%lld in_place=%d extreme=%d: %lld differ\n",
                                  (long long)ms[mi], (long long)bk, in_place, extreme, (long long)d);
                    bad += d != 0;
                }
    int64_t d = amx_parity(1024, 320, 1024, 128, 128, 0, 1) + amx_parity(1000, 96, 3072, 128, 128, 0, 1);
    cases += 2;
    bad += d != 0;
    const int64_t dm[] = {17, 18, 23, 24, 64, 300}, dn[] = {16, 300, 529, 256};
    const int64_t dk[] = {7, 600, 520};
    for (int kind = 0; kind < 2; kind++)
        for (int a = 0; a < 6; a++)
            for (int b = 0; b < 4; b++)
                for (int c = 0; c < 3; c++) {
                    int64_t e = decoded_parity(dm[a], dn[b], dk[c], kind, c == 0 ? 7 : 32);
                    cases++;
                    if (e) printf("  decoded parity FAIL kind=%d m=%lld n=%lld k=%lld: %lld differ\n", kind,
                                  (long long)dm[a], (long long)dn[b], (long long)dk[c], (long long)e);
                    bad += e != 0;
                }
    bad += decoded_parity(2053, 300, 520, 0, 32) != 0;
    cases++;
    printf("parity: %lld / %lld cases bit-identical\n", (long long)(cases - bad), (long long)cases);
    fflush(stdout);
    pthread_t tid[256];
    for (int t = 1; t < nthreads; t++) pthread_create(&tid[t], NULL, worker, NULL);
    // one part (one core): the tile kernel alone, 1024 x 3072 x 3072
    {
        const int64_t m = 1024, n = 3072, k = 3072, kb = k / 128;
        int8_t *x = xalloc(m * k), *w = xalloc(n * k);
        float *sx = xalloc(m * kb * 4), *sw = xalloc(n / 128 * kb * 4), *out = xalloc(m * n * 4);
        for (int64_t i = 0; i < m * k; i++) x[i] = code(0, i);
        for (int64_t i = 0; i < n * k; i++) w[i] = code(0, i);
        for (int64_t i = 0; i < m * kb; i++) sx[i] = scale();
        for (int64_t i = 0; i < n / 128 * kb; i++) sw[i] = scale();
        ck_i8_gemm_args a = {m, n, k, 128, 128, x, sx, NULL, NULL, w, sw, NULL, out, CK_OUT_F32};
        i8_job j = {&a, split_per(n, n, 1), 1, CK_PATH_AMX, 0, xalloc(m * k), xalloc(m * kb * 4), 0};
        double t_old = MEDIAN(i8_call(&j, 0));
        j.old = 0;
        double t_new = MEDIAN(i8_call(&j, 0));
        double t_in = MEDIAN(i8_call(&j, 1));
        const double ops = 2.0 * m * n * k;
        printf("one core, 1024 x 3072 x 3072 (pack on %d threads): AMX old %.0f GOP/s, new %.0f, new in place %.0f\n",
               nthreads, ops / t_old / 1e9, ops / t_new / 1e9, ops / t_in / 1e9);
        free(x); free(w); free(sx); free(sw); free(out); free(j.apack); free(j.sxpack);
    }
    printf("%d threads, medians of %d calls\n", nthreads, REPS);
    const int64_t shapes[4][2] = {{3072, 3072}, {14336, 3072}, {3072, 14336}, {5120, 5120}};
    const int64_t mlist[] = {1024, 64};
    for (int mi = 0; mi < 2; mi++)
        for (int s = 0; s < 4; s++) time_shape(mlist[mi], shapes[s][0], shapes[s][1]);
    atomic_store(&generation, -1);
    for (int t = 1; t < nthreads; t++) pthread_join(tid[t], NULL);
    return bad ? 1 : 0;
}
