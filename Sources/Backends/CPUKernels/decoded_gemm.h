#ifndef CK_DECODED_GEMM_H
#define CK_DECODED_GEMM_H
// Internal interface of the float GEMM on decoded weight panels (decoded_gemm.c): its blocking and the
// AVX-512 micro-kernel (decoded_gemm_avx512.c) that the AVX-512 paths run in place of the AVX2 one.
#include "ck_internal.h"

/// MR x NR tile of one micro-kernel call on AVX2 (the packed input's tile rows and a sub-panel's
/// columns), NC-column panels, KC-deep chunks; at most MC_MAX rows share one float tile (rows x NC
/// floats, 2 MB), more rows run in equal chunks that each decode the panel again; past PREFETCH_C_ROWS
/// rows the float tile (with the 256 KB block) outgrows L2 and its rows are prefetched.
enum { MR = 6, NR = 16, NC = 256, KC = 256, MC_MAX = 2048, PREFETCH_C_ROWS = 256 };

#if CK_X86
/// Decodes the first depth / 16 * 16 K values [k0, ..) of INT8 weight rows [col0, col0 + 16) into the
/// sub-panel ([t][16]) as decoded_gemm.c's AVX2 decode does (the same values q * s), 16 columns x 16 K
/// values at a time through a 16 x 16 transpose. Returns the number of K values decoded: 0 (nothing
/// done) unless the weight is INT8, all 16 columns exist (< n1) and the blocks start at multiples of
/// 16 with k0 one too. e4m3 weights keep the AVX2 decode (its F16C conversion of 8 codes at a time
/// was 3-6% faster at M = 64 than a 16-code one here).
int64_t ck_decoded_decode_avx512(const ck_decoded_weight *w, int64_t k, int64_t col0, int64_t n1, int64_t k0,
                                 int64_t depth, float *panel);

/// One K chunk of the GEMM on AVX-512F: every row of the float tile c (`rows` rows, row stride ldc)
/// gets c[r][s * NR + j] += sum_t x[r][t] panel_s[t][j] over `depth` K values (`first`: c = 0 + the
/// sum, c not read, so the tile needs no zeroing), for the `nsub` sub-panels of the decoded block
/// (sub-panel s at panel + s * KC * NR, [t][NR]) and the packed input tiles of the chunk (tile i at
/// x + i * KC * MR, [t][MR]). Four input tiles (24 rows) and one sub-panel at a time, 24 zmm
/// accumulators; each product is the same FMA chain over t as the AVX2 kernel's, so the results are
/// bit-identical to it. `prefetch_c` fetches the tile's c rows before each call.
void ck_decoded_chunk_avx512(const float *x, int64_t rows, const float *panel, int64_t nsub, int64_t depth,
                             float *c, int64_t ldc, int prefetch_c, int first);
#endif

#endif
