// Shared by the INT8 packing (int8_pack.c) and the W8A8 GEMM (int8_gemm.c): packed sizes and the
// micro-kernel tile shape of each path.
#ifndef INT8_GEMM_H
#define INT8_GEMM_H
#include "ck_internal.h"

static inline int64_t packed_k(int64_t k, int64_t bk, int64_t group) {
    const int64_t kb = ck_ceil_div(k, bk);
    return (kb - 1) * ck_round_up(bk, group) + ck_round_up(k - (kb - 1) * bk, group);
}

enum { AVX2_MR = 4, AVX2_NR = 16, AVX2_NC = 32, VNNI_MR = 8, VNNI_NR = 32, VNNI_NC = 64 };

/// K depth of one packed chunk: whole K blocks, about 256 deep, so a weight sub-panel stays in L1.
static inline int64_t chunk_blocks(int64_t bk) { return bk >= 256 ? 1 : 256 / bk; }

#endif
