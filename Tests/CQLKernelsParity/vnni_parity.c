// Stand-alone parity check of the INT8 W8A8 GEMM kernels (AVX2 and AVX-512 VNNI) against the
// portable kernel, for machines without a Swift toolchain (the GPU hosts, whose Xeons have VNNI).
// The Swift suite (CPUKernelINT8Tests) runs the same comparison wherever `swift test` runs.
//
//   clang -O3 -fno-math-errno -ISources/Backends/CPUKernels/include -ISources/Backends/CPUKernels \
//       Tests/CQLKernelsParity/vnni_parity.c Sources/Backends/CPUKernels/*.c -o vnni-parity -lm && ./vnni-parity
//
// Exit status 0 when every case is within 1e-6 relative L2 error of the portable kernel; it also
// prints the one-core speed of each path on 1024 x 3072 x 3072.
#include "CKernels.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t state = 88172645463325252ull;
static uint32_t next_random(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)state;
}

static int8_t random_code(void) { return (int8_t)((int)(next_random() % 255) - 127); }
static float random_scale(void) { return (float)(next_random() % 1000 + 1) * 1e-4f; }

/// Runs `path` on columns split in two ranges (as two threads would) and returns the relative
/// L2 error against the portable kernel.
static double compare(int64_t m, int64_t n, int64_t k, int64_t bk, int64_t bn, int path, int with_bias) {
    const int64_t kb = (k + bk - 1) / bk, nb = (n + bn - 1) / bn;
    int8_t *x = malloc((size_t)(m * k)), *w = malloc((size_t)(n * k));
    float *sx = malloc((size_t)(m * kb) * 4), *sw = malloc((size_t)(nb * kb) * 4), *bias = malloc((size_t)n * 4);
    float *expected = malloc((size_t)(m * n) * 4), *actual = malloc((size_t)(m * n) * 4);
    for (int64_t i = 0; i < m * k; i++) x[i] = random_code();
    for (int64_t i = 0; i < n * k; i++) w[i] = random_code();
    for (int64_t i = 0; i < m * kb; i++) sx[i] = random_scale();
    for (int64_t i = 0; i < nb * kb; i++) sw[i] = random_scale();
    for (int64_t i = 0; i < n; i++) bias[i] = (float)(next_random() % 100) * 0.01f;
    ck_i8_gemm_args args = {m, n, k, bk, bn, x, sx, NULL, NULL, w, sw, with_bias ? bias : NULL, expected, CK_OUT_F32};
    ck_i8_gemm(&args, 0, n, CK_PATH_PORTABLE);

    int64_t rows, row_bytes;
    ck_i8_packed_activation_size(m, k, bk, path, &rows, &row_bytes);
    void *packed = aligned_alloc(64, (size_t)((rows * row_bytes + 63) / 64 * 64 + 64));
    float *packed_scales = malloc((size_t)(rows * kb) * 4 + 4);
    ck_i8_pack_activation(x, sx, m, k, bk, path, 0, rows, packed, packed_scales);
    args.apack = packed;
    args.sxpack = packed_scales;
    args.out = actual;
    const int64_t granule = ck_i8_gemm_column_granule(path), middle = (n / 2) / granule * granule;
    ck_i8_gemm(&args, 0, middle, path);
    ck_i8_gemm(&args, middle, n, path);

    double difference = 0, norm = 0;
    for (int64_t i = 0; i < m * n; i++) {
        difference += ((double)actual[i] - expected[i]) * ((double)actual[i] - expected[i]);
        norm += (double)expected[i] * expected[i];
    }
    free(x); free(w); free(sx); free(sw); free(bias); free(expected); free(actual); free(packed); free(packed_scales);
    return sqrt(difference / (norm > 0 ? norm : 1));
}

static void time_path(int path) {
    const int64_t m = 1024, n = 3072, k = 3072, kb = k / 128;
    int8_t *x = malloc((size_t)(m * k)), *w = malloc((size_t)(n * k));
    float *sx = malloc((size_t)(m * kb) * 4), *sw = malloc((size_t)(kb * kb) * 4), *y = malloc((size_t)(m * n) * 4);
    for (int64_t i = 0; i < m * k; i++) x[i] = random_code();
    for (int64_t i = 0; i < n * k; i++) w[i] = random_code();
    for (int64_t i = 0; i < m * kb; i++) sx[i] = 1e-3f;
    for (int64_t i = 0; i < kb * kb; i++) sw[i] = 1e-3f;
    int64_t rows, row_bytes;
    ck_i8_packed_activation_size(m, k, 128, path, &rows, &row_bytes);
    void *packed = aligned_alloc(64, (size_t)(rows * row_bytes));
    float *packed_scales = malloc((size_t)(rows * kb) * 4);
    ck_i8_pack_activation(x, sx, m, k, 128, path, 0, rows, packed, packed_scales);
    const ck_i8_gemm_args args = {m, n, k, 128, 128, x, sx, packed, packed_scales, w, sw, NULL, y, CK_OUT_F32};
    double best = 1e9;
    for (int repeat = 0; repeat < 3; repeat++) {
        const double start = now();
        ck_i8_gemm(&args, 0, n, path);
        const double elapsed = now() - start;
        best = elapsed < best ? elapsed : best;
    }
    printf("path %d: 1024x3072x3072 on one core %.1f ms, %.1f GOP/s\n", path, best * 1e3, 2.0 * m * n * k / best / 1e9);
    free(x); free(w); free(sx); free(sw); free(y); free(packed); free(packed_scales);
}

int main(void) {
    const uint32_t features = ck_cpu_features();
    const int has_vnni = (features & CK_CPU_AVX512VNNI) && (features & CK_CPU_AVX512BW) && (features & CK_CPU_AVX512VL);
    const int64_t shapes[][3] = {{1, 45, 300},   {3, 70, 129},  {17, 37, 257},  {18, 70, 200},
                                 {40, 33, 96},   {2, 130, 150}, {9, 100, 1000}, {64, 96, 513}};
    const int64_t blocks[][2] = {{32, 32}, {48, 48}, {64, 64}, {128, 128}, {256, 256}, {7, 5}, {128, 16}, {33, 64}};
    const int paths[] = {CK_PATH_AVX2, CK_PATH_AVX512VNNI};
    int failures = 0, cases = 0;
    for (int p = 0; p < 2; p++) {
        if (!(features & CK_CPU_AVX2) || (paths[p] == CK_PATH_AVX512VNNI && !has_vnni)) {
            printf("path %d: skipped, this CPU lacks its instructions (features 0x%x)\n", paths[p], features);
            continue;
        }
        double worst = 0;
        for (int s = 0; s < 8; s++) {
            for (int b = 0; b < 8; b++) {
                for (int with_bias = 0; with_bias < 2; with_bias++) {
                    const double error = compare(shapes[s][0], shapes[s][1], shapes[s][2], blocks[b][0], blocks[b][1],
                                                 paths[p], with_bias);
                    cases++;
                    if (!(error <= 1e-6)) {
                        failures++;
                        printf("FAIL path %d m=%lld n=%lld k=%lld bk=%lld bn=%lld: error %.3g\n", paths[p],
                               (long long)shapes[s][0], (long long)shapes[s][1], (long long)shapes[s][2],
                               (long long)blocks[b][0], (long long)blocks[b][1], error);
                    }
                    worst = error > worst ? error : worst;
                }
            }
        }
        printf("path %d: worst relative L2 error against the portable kernel %.3g\n", paths[p], worst);
        time_path(paths[p]);
    }
    printf("%d/%d parity cases passed\n", cases - failures, cases);
    return failures != 0;
}
