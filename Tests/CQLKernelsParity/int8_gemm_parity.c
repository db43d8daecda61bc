// Stand-alone parity check of the INT8 W8A8 GEMM and GEMV kernels (AVX2, AVX-VNNI, AVX-512 VNNI,
// AMX) against the portable kernel, for machines without a Swift toolchain (the GPU hosts, whose
// Xeons have AVX-512 VNNI and AMX-INT8). The Swift suite (CPUKernelINT8Tests) runs the same
// comparison wherever `swift test` runs.
//
//   clang -O3 -fno-math-errno -ISources/Backends/CPUKernels/include -ISources/Backends/CPUKernels \
//       Tests/CQLKernelsParity/int8_gemm_parity.c Sources/Backends/CPUKernels/*.c -o int8-gemm-parity -lm \
//       && ./int8-gemm-parity
//
// Every path follows the same output arithmetic (exact int32 block sums, acc += float(S) * (sx * sw)
// in increasing j, bias last), so results must equal the portable kernel's bit for bit: the exit
// status is 0 only then. Random codes and codes at +-127 everywhere (pair sums at the int16 limit of
// vpmaddubsw). It also prints the one-core speed of each path on 1024 x 3072 x 3072.
#include "CKernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int8_t random_code(int extreme, int64_t i) {
    if (extreme) return (i / 3) % 2 ? 127 : -127;
    return (int8_t)((int)(next_random() % 255) - 127);
}
static float random_scale(void) { return (float)(next_random() % 1000 + 1) * 1e-4f; }

/// Runs `path` (the GEMV when `gemv`) on columns split in two ranges (as two threads would) and
/// returns the number of outputs that differ from the portable kernel's.
static int64_t compare(int64_t m, int64_t n, int64_t k, int64_t bk, int64_t bn, int path, int gemv, int with_bias,
                       int extreme) {
    const int64_t kb = (k + bk - 1) / bk, nb = (n + bn - 1) / bn;
    int8_t *x = malloc((size_t)(m * k)), *w = malloc((size_t)(n * k));
    float *sx = malloc((size_t)(m * kb) * 4), *sw = malloc((size_t)(nb * kb) * 4), *bias = malloc((size_t)n * 4);
    float *expected = malloc((size_t)(m * n) * 4), *actual = malloc((size_t)(m * n) * 4);
    for (int64_t i = 0; i < m * k; i++) x[i] = random_code(extreme, i);
    for (int64_t i = 0; i < n * k; i++) w[i] = random_code(extreme, i / 2);
    for (int64_t i = 0; i < m * kb; i++) sx[i] = random_scale();
    for (int64_t i = 0; i < nb * kb; i++) sw[i] = random_scale();
    for (int64_t i = 0; i < n; i++) bias[i] = (float)(next_random() % 100) * 0.01f;
    ck_i8_gemm_args args = {m, n, k, bk, bn, x, sx, NULL, NULL, w, sw, with_bias ? bias : NULL, expected, CK_OUT_F32};
    ck_i8_gemm_run(&args, 0, n, CK_PATH_PORTABLE);

    int64_t rows, row_bytes;
    ck_i8_gemm_activation_size(m, k, bk, path, &rows, &row_bytes);
    void *packed = aligned_alloc(64, (size_t)((rows * row_bytes + 63) / 64 * 64 + 64));
    float *packed_scales = malloc((size_t)(rows * kb) * 4 + 4);
    ck_i8_gemm_pack_activation(x, sx, m, k, bk, path, 0, rows, packed, packed_scales);
    args.apack = packed;
    args.sxpack = packed_scales;
    args.out = actual;
    const int64_t granule = gemv ? 1 : ck_i8_gemm_granule(path), middle = (n / 2) / granule * granule;
    if (gemv) {
        ck_i8_gemv_run(&args, 0, middle, path);
        ck_i8_gemv_run(&args, middle, n, path);
    } else {
        ck_i8_gemm_run(&args, 0, middle, path);
        ck_i8_gemm_run(&args, middle, n, path);
    }
    int64_t differ = 0;
    for (int64_t i = 0; i < m * n; i++) differ += memcmp(&actual[i], &expected[i], 4) != 0;
    free(x); free(w); free(sx); free(sw); free(bias); free(expected); free(actual); free(packed); free(packed_scales);
    return differ;
}

static void time_path(int path) {
    const int64_t m = 1024, n = 3072, k = 3072, kb = k / 128;
    int8_t *x = malloc((size_t)(m * k)), *w = malloc((size_t)(n * k));
    float *sx = malloc((size_t)(m * kb) * 4), *sw = malloc((size_t)(kb * kb) * 4), *y = malloc((size_t)(m * n) * 4);
    for (int64_t i = 0; i < m * k; i++) x[i] = random_code(0, i);
    for (int64_t i = 0; i < n * k; i++) w[i] = random_code(0, i);
    for (int64_t i = 0; i < m * kb; i++) sx[i] = 1e-3f;
    for (int64_t i = 0; i < kb * kb; i++) sw[i] = 1e-3f;
    int64_t rows, row_bytes;
    ck_i8_gemm_activation_size(m, k, 128, path, &rows, &row_bytes);
    void *packed = aligned_alloc(64, (size_t)((rows * row_bytes + 63) / 64 * 64));
    float *packed_scales = malloc((size_t)(rows * kb) * 4);
    ck_i8_gemm_pack_activation(x, sx, m, k, 128, path, 0, rows, packed, packed_scales);
    const ck_i8_gemm_args args = {m, n, k, 128, 128, x, sx, packed, packed_scales, w, sw, NULL, y, CK_OUT_F32};
    double best = 1e9;
    for (int repeat = 0; repeat < 3; repeat++) {
        const double start = now();
        ck_i8_gemm_run(&args, 0, n, path);
        const double elapsed = now() - start;
        best = elapsed < best ? elapsed : best;
    }
    printf("path %d: 1024x3072x3072 on one core %.1f ms, %.1f GOP/s\n", path, best * 1e3, 2.0 * m * n * k / best / 1e9);
    free(x); free(w); free(sx); free(sw); free(y); free(packed); free(packed_scales);
}

int main(void) {
    const uint32_t f = ck_cpu_features();
    const int avx2 = (f & CK_CPU_AVX2) && (f & CK_CPU_FMA) && (f & CK_CPU_F16C);
    const int vnni = avx2 && (f & CK_CPU_AVX512F) && (f & CK_CPU_AVX512BW) && (f & CK_CPU_AVX512VL)
        && (f & CK_CPU_AVX512VNNI);
    const int supported[] = {avx2, avx2 && (f & CK_CPU_AVXVNNI), vnni,
                             vnni && (f & CK_CPU_AMXINT8) && ck_amx_request_permission()};
    const int paths[] = {CK_PATH_AVX2, CK_PATH_AVXVNNI, CK_PATH_AVX512VNNI, CK_PATH_AMX};
    const int64_t shapes[][3] = {{1, 45, 300},   {3, 70, 129},  {16, 37, 257}, {17, 37, 257}, {18, 70, 200},
                                 {40, 33, 96},   {2, 130, 150}, {9, 100, 1000}, {64, 96, 513}, {70, 200, 1030}};
    const int64_t blocks[][2] = {{32, 32}, {48, 48}, {64, 64}, {128, 128}, {256, 256}, {7, 5}, {128, 16}, {33, 64}};
    int failures = 0, cases = 0;
    for (int p = 0; p < 4; p++) {
        if (!supported[p]) {
            printf("path %d: skipped, this CPU (or OS) lacks its instructions (features 0x%x)\n", paths[p], f);
            continue;
        }
        for (int s = 0; s < 10; s++) {
            for (int b = 0; b < 8; b++) {
                for (int variant = 0; variant < 4; variant++) {
                    const int with_bias = variant & 1, extreme = variant >> 1;
                    for (int gemv = 0; gemv < 2; gemv++) {
                        if (gemv && shapes[s][0] > 16) continue;
                        const int64_t differ = compare(shapes[s][0], shapes[s][1], shapes[s][2], blocks[b][0],
                                                       blocks[b][1], paths[p], gemv, with_bias, extreme);
                        cases++;
                        if (differ) {
                            failures++;
                            printf("FAIL path %d %s m=%lld n=%lld k=%lld bk=%lld bn=%lld extreme=%d: %lld outputs "
                                   "differ\n", paths[p], gemv ? "gemv" : "gemm", (long long)shapes[s][0],
                                   (long long)shapes[s][1], (long long)shapes[s][2], (long long)blocks[b][0],
                                   (long long)blocks[b][1], extreme, (long long)differ);
                        }
                    }
                }
            }
        }
        time_path(paths[p]);
    }
    printf("%d/%d parity cases bit-identical to the portable kernel\n", cases - failures, cases);
    return failures != 0;
}
