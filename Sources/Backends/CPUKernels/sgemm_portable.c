#include "CKernels.h"

// Cache-blocked C = alpha A B^T + beta C. Both operands are read along k, so the inner loop is a
// dot product the compiler vectorises; four rows of A share each pass over a row of B.
void ck_sgemm_nt_portable(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                          const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    const int64_t kc = 512;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    for (int64_t k0 = 0; k0 < k; k0 += kc) {
        int64_t kl = k - k0 < kc ? k - k0 : kc;
        int64_t i = 0;
        for (; i + 4 <= m; i += 4) {
            const float *a0 = a + i * lda + k0, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
            for (int64_t j = 0; j < n; j++) {
                const float *bj = b + j * ldb + k0;
                float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                for (int64_t p = 0; p < kl; p++) {
                    float bv = bj[p];
                    s0 += a0[p] * bv; s1 += a1[p] * bv; s2 += a2[p] * bv; s3 += a3[p] * bv;
                }
                c[i * ldc + j] += alpha * s0; c[(i + 1) * ldc + j] += alpha * s1;
                c[(i + 2) * ldc + j] += alpha * s2; c[(i + 3) * ldc + j] += alpha * s3;
            }
        }
        for (; i < m; i++) {
            const float *ai = a + i * lda + k0;
            for (int64_t j = 0; j < n; j++) {
                const float *bj = b + j * ldb + k0;
                float s = 0;
                for (int64_t p = 0; p < kl; p++) s += ai[p] * bj[p];
                c[i * ldc + j] += alpha * s;
            }
        }
    }
}
