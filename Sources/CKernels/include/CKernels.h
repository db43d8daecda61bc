#ifndef CKERNELS_H
#define CKERNELS_H
// The project's C kernels. Only Swift wrappers in Tensors and Layouts call these; every pointer
// argument is a plain contiguous buffer whose size the wrapper has checked.
#include <stdint.h>
#include <stddef.h>

// CPU feature bits reported by ck_cpu_features().
enum {
    CK_CPU_AVX2 = 1 << 0,
    CK_CPU_FMA = 1 << 1,
    CK_CPU_F16C = 1 << 2,
    CK_CPU_AVX512F = 1 << 3,
    CK_CPU_AVX512BW = 1 << 4,
    CK_CPU_AVX512VL = 1 << 5,
    CK_CPU_AVX512VNNI = 1 << 6,
    CK_CPU_AVXVNNI = 1 << 7,
};

/// Feature bits of this CPU, from CPUID and XGETBV (0 on non-x86 machines).
uint32_t ck_cpu_features(void);

/// Portable C = A * B^T for row-major A (m x k, row stride lda), B (n x k, ldb), C (m x n, ldc),
/// C = alpha * A B^T + beta * C. Used only when OpenBLAS cannot be loaded.
void ck_sgemm_nt_portable(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                          const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

#endif
