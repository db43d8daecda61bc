#ifndef CK_INT8_GEMM_H
#define CK_INT8_GEMM_H
// Internal interface of the block-wise INT8 W8A8 GEMM (int8_gemm*.c): the per-path geometry, the
// weight-panel packer shared by the paths, and the micro-kernels the driver calls.
//
// Every path computes, per output element and K block j, the exact int32 block sum
// S_j = sum_{k in j} qx[m,k] qw[n,k] and accumulates acc += float(S_j) * (sx[m,j] * sw[n/Bn,j]) in
// float32, j increasing; bias is added last (NOTES.md, "Numerics decisions").
#include "ck_internal.h"

// Float results must not depend on whether the compiler fuses a multiply and an add.
#pragma STDC FP_CONTRACT OFF

/// How one path lays out its operands and tiles its output.
typedef struct {
    int64_t mr;     ///< rows of a micro-tile; the packed activation has a multiple of mr rows
    int64_t nr;     ///< columns of a weight sub-panel (one micro-tile's width)
    int64_t nc;     ///< columns of a panel (a multiple of nr): the unit a thread packs and finishes
    int64_t group;  ///< each K block is padded with zero codes to a multiple of this many bytes
    int abs_copy;   ///< the sub-panel stores |w| after w for every quad (the vpmaddubsw sign trick)
    int wsum;       ///< the packer records sum_k w per column and block (vpdpbusd's +128 correction)
    int act_u8;     ///< activation codes are stored as u8 = q + 128 (q ^ 0x80)
} ck_gemm_geometry;

/// The geometry of `path` (CK_PATH_*).
ck_gemm_geometry ck_gemm_geometry_of(int path);

/// Packed K extent of a row: every K block padded to a multiple of `group`.
static inline int64_t ck_gemm_packed_k(int64_t k, int64_t bk, int64_t group) {
    const int64_t kb = ck_ceil_div(k, bk);
    return (kb - 1) * ck_round_up(bk, group) + ck_round_up(k - (kb - 1) * bk, group);
}

/// K blocks per packed chunk: whole blocks, about `depth` deep, so a chunk of a sub-panel stays in L1.
static inline int64_t ck_gemm_chunk_blocks(int64_t bk, int64_t depth) { return bk >= depth ? 1 : depth / bk; }

/// Bytes of one quad (4 K values) of a sub-panel: nr columns x 4 codes, twice with the |w| copy.
static inline int64_t ck_gemm_quad_bytes(const ck_gemm_geometry *g) { return g->nr * 4 * (g->abs_copy ? 2 : 1); }

/// Packs columns [col0, col0 + g->nr) (those >= n1 as zeros) of K blocks [j0, j1) of the weight into
/// one sub-panel: block b = j - j0 at dst + b * block_bytes, quad q of it at + q * quad_bytes, holding
/// for column c the 4 codes at + 4c (and |w| at + 4 nr + 4c with the abs copy). Writes the block's
/// weight scale per column to sw[b * nr + c] and, with g->wsum, sum_k w to wsum[b * nr + c].
void ck_gemm_pack_weight(const ck_gemm_geometry *g, const ck_i8_gemm_args *a, int64_t col0, int64_t n1, int64_t j0,
                         int64_t j1, int64_t block_bytes, int8_t *dst, float *sw, int32_t *wsum);

/// A micro-kernel: an mr x nr tile over `nblocks` consecutive K blocks. Block b has its activation at
/// a + b * block_bytes_a (row i at + i * lda), its weight sub-panel at w + b * block_bytes_w, `quads`
/// quads (quads_last for the final block), scales sx[i * ldsx + b] and sw[b * nr + c], and (VNNI)
/// wsum[b * nr + c]; it adds float(S) * (sx * sw) to c[i * ldc + c] after each block.
typedef void (*ck_gemm_ukernel)(const uint8_t *a, int64_t lda, int64_t block_bytes_a, const int8_t *w,
                                int64_t block_bytes_w, int64_t nblocks, int64_t quads, int64_t quads_last,
                                const int32_t *wsum, const float *sx, int64_t ldsx, const float *sw, float *c,
                                int64_t ldc);

#if CK_X86
#define CK_AVXVNNI __attribute__((target("avxvnni,avx2,fma,f16c")))
#define CK_AMX __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

void ck_gemm_ukernel_avx2(const uint8_t *a, int64_t lda, int64_t block_bytes_a, const int8_t *w,
                          int64_t block_bytes_w, int64_t nblocks, int64_t quads, int64_t quads_last,
                          const int32_t *wsum, const float *sx, int64_t ldsx, const float *sw, float *c, int64_t ldc);
void ck_gemm_ukernel_avxvnni(const uint8_t *a, int64_t lda, int64_t block_bytes_a, const int8_t *w,
                             int64_t block_bytes_w, int64_t nblocks, int64_t quads, int64_t quads_last,
                             const int32_t *wsum, const float *sx, int64_t ldsx, const float *sw, float *c,
                             int64_t ldc);
void ck_gemm_ukernel_avx512vnni(const uint8_t *a, int64_t lda, int64_t block_bytes_a, const int8_t *w,
                                int64_t block_bytes_w, int64_t nblocks, int64_t quads, int64_t quads_last,
                                const int32_t *wsum, const float *sx, int64_t ldsx, const float *sw, float *c,
                                int64_t ldc);

/// The AMX GEMM for columns [n0, n1) (a multiple of 32 apart, except at n): 32 x 32 output tiles of
/// four tdpbssd accumulators, one pass per 64 K of a block, flushed per K block; panels of up to 256
/// columns. args->apack NULL: the activation is read in place (ck_i8_gemm_activation_in_place).
/// Returns 0, or -1 when a buffer cannot be allocated.
int ck_gemm_amx(const ck_i8_gemm_args *a, int64_t n0, int64_t n1);

/// 1 when the AVX-512 VNNI GEMM reads the weight in place (int8_gemm_avx512.c) for these sizes: the
/// activation is then packed by ck_gemm_wt_pack_activation (rows padded to 16, no K padding) and the
/// product run by ck_gemm_wt_run.
int ck_gemm_wt_applies(int64_t m, int64_t k, int64_t bk, int path);
void ck_gemm_wt_pack_activation(const int8_t *x, const float *sx, int64_t m, int64_t k, int64_t bk, int64_t row0,
                                int64_t row1, uint8_t *apack, float *sxt);
int ck_gemm_wt_run(const ck_i8_gemm_args *a, int64_t n0, int64_t n1);
#endif

#endif
