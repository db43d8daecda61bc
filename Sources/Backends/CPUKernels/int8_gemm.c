// Block-wise INT8 W8A8 GEMM: the activation packer, the weight-panel packer, the cache-blocked
// driver the SIMD paths share, and the portable path. Micro-kernels: int8_gemm_avx2.c (vpmaddubsw
// sign trick), int8_gemm_vnni.c (vpdpbusd on ymm and zmm); AMX: int8_gemm_amx.c. Design and
// measurements: NOTES.md, "CPU kernels".
#include "int8_gemm.h"

ck_gemm_geometry ck_gemm_geometry_of(int path) {
    switch (path) {
    case CK_PATH_AVX2: return (ck_gemm_geometry){4, 16, 64, 4, 1, 0, 0};
    case CK_PATH_AVXVNNI: return (ck_gemm_geometry){6, 16, 64, 4, 0, 1, 1};
    case CK_PATH_AVX512VNNI: return (ck_gemm_geometry){8, 32, 64, 4, 0, 1, 1};
    case CK_PATH_AMX: return (ck_gemm_geometry){32, 16, 64, 64, 0, 0, 0};
    default: return (ck_gemm_geometry){1, 1, 1, 1, 0, 0, 0};
    }
}

void ck_i8_gemm_activation_size(int64_t m, int64_t k, int64_t bk, int path, int64_t *rows, int64_t *row_bytes) {
    if (path == CK_PATH_PORTABLE) {
        *rows = m;
        *row_bytes = 0;
        return;
    }
#if CK_X86
    if (ck_gemm_wt_applies(m, k, bk, path)) {
        *rows = ck_round_up(m, 16);
        *row_bytes = k;
        return;
    }
#endif
    const ck_gemm_geometry g = ck_gemm_geometry_of(path);
    *rows = ck_round_up(m, g.mr);
    *row_bytes = ck_gemm_packed_k(k, bk, g.group);
}

void ck_i8_gemm_pack_activation(const int8_t *x, const float *sx, int64_t m, int64_t k, int64_t bk, int path,
                                int64_t row0, int64_t row1, void *apack, float *sxpack) {
    int64_t rows, row_bytes;
    ck_i8_gemm_activation_size(m, k, bk, path, &rows, &row_bytes);
#if CK_X86
    if (ck_gemm_wt_applies(m, k, bk, path)) {
        ck_gemm_wt_pack_activation(x, sx, m, k, bk, row0, row1, (uint8_t *)apack, sxpack);
        return;
    }
#endif
    const ck_gemm_geometry g = ck_gemm_geometry_of(path);
    const int64_t kb = ck_ceil_div(k, bk), bp = ck_round_up(bk, g.group);
    const uint8_t flip = g.act_u8 ? 0x80 : 0;
    for (int64_t r = row0; r < row1 && r < rows; r++) {
        uint8_t *dst_row = (uint8_t *)apack + r * row_bytes;
        for (int64_t j = 0; j < kb; j++) {
            const int64_t len = k - j * bk < bk ? k - j * bk : bk, padded = ck_round_up(len, g.group);
            uint8_t *dst = dst_row + j * bp;
            if (r < m) {
                const uint8_t *src = (const uint8_t *)(x + r * k + j * bk);
                for (int64_t t = 0; t < len; t++) dst[t] = src[t] ^ flip;
                memset(dst + len, flip, (size_t)(padded - len));
            } else {
                memset(dst, flip, (size_t)padded);
            }
            sxpack[r * kb + j] = r < m ? sx[r * kb + j] : 0;
        }
    }
}

int64_t ck_i8_gemm_granule(int path) {
    if (path == CK_PATH_PORTABLE) return 1;
    if (path == CK_PATH_AMX) return 64;
    return ck_gemm_geometry_of(path).nr;
}

// MARK: - Weight panels

/// One quad of `nr` columns, scalar: codes beyond `len` (the block's length) are zeros.
static void pack_quads_scalar(const ck_gemm_geometry *g, const int8_t *const *src, int64_t len, int64_t q0,
                              int64_t q1, int8_t *dst, int32_t *sums) {
    const int64_t qb = ck_gemm_quad_bytes(g);
    for (int64_t q = q0; q < q1; q++) {
        int8_t *d = dst + q * qb;
        for (int64_t c = 0; c < g->nr; c++) {
            for (int64_t e = 0; e < 4; e++) {
                const int64_t t = 4 * q + e;
                const int8_t v = (src[c] && t < len) ? src[c][t] : 0;
                d[4 * c + e] = v;
                if (g->abs_copy) d[4 * g->nr + 4 * c + e] = (int8_t)(v < 0 ? -v : v);
                sums[c] += v;
            }
        }
    }
}

#if CK_X86
/// 8 quads of 8 columns (8 rows of 32 codes) transposed into 8 vectors of [column][4 codes].
CK_AVX2 static inline void transpose8x8_epi32(__m256i r[8]) {
    __m256i t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int h = 0; h < 2; h++) {
        u[4 * h + 0] = _mm256_unpacklo_epi64(t[4 * h + 0], t[4 * h + 2]);
        u[4 * h + 1] = _mm256_unpackhi_epi64(t[4 * h + 0], t[4 * h + 2]);
        u[4 * h + 2] = _mm256_unpacklo_epi64(t[4 * h + 1], t[4 * h + 3]);
        u[4 * h + 3] = _mm256_unpackhi_epi64(t[4 * h + 1], t[4 * h + 3]);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2x128_si256(u[i], u[4 + i], 0x20);
        r[4 + i] = _mm256_permute2x128_si256(u[i], u[4 + i], 0x31);
    }
}

/// Quads [0, 8 * (len / 32)) of a block: 8 columns at a time, 32 codes per column per step.
CK_AVX2 static int64_t pack_quads_avx2(const ck_gemm_geometry *g, const int8_t *const *src, int64_t len, int8_t *dst,
                                       int32_t *sums) {
    const int64_t qb = ck_gemm_quad_bytes(g), steps = len / 32;
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int64_t c0 = 0; c0 < g->nr; c0 += 8) {
        __m256i total = _mm256_setzero_si256();
        for (int64_t s = 0; s < steps; s++) {
            __m256i r[8];
            for (int c = 0; c < 8; c++)
                r[c] = src[c0 + c] ? _mm256_loadu_si256((const __m256i *)(src[c0 + c] + 32 * s))
                                   : _mm256_setzero_si256();
            transpose8x8_epi32(r);
            for (int q = 0; q < 8; q++) {
                int8_t *d = dst + (8 * s + q) * qb + 4 * c0;
                _mm256_storeu_si256((__m256i *)d, r[q]);
                if (g->abs_copy) _mm256_storeu_si256((__m256i *)(d + 4 * g->nr), _mm256_abs_epi8(r[q]));
                if (g->wsum)
                    total = _mm256_add_epi32(total, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, r[q]), ones16));
            }
        }
        if (g->wsum) {
            int32_t lanes[8];
            _mm256_storeu_si256((__m256i *)lanes, total);
            for (int c = 0; c < 8; c++) sums[c0 + c] += lanes[c];
        }
    }
    return 8 * steps;
}
#endif

void ck_gemm_pack_weight(const ck_gemm_geometry *g, const ck_i8_gemm_args *a, int64_t col0, int64_t n1, int64_t j0,
                         int64_t j1, int64_t block_bytes, int8_t *dst, float *sw, int32_t *wsum) {
    const int64_t k = a->k, bk = a->bk, kb = ck_ceil_div(k, bk);
    const int8_t *src[64];
    int32_t sums[64];
    for (int64_t j = j0; j < j1; j++) {
        const int64_t len = k - j * bk < bk ? k - j * bk : bk, quads = ck_round_up(len, g->group) / 4;
        const int64_t b = j - j0;
        for (int64_t c = 0; c < g->nr; c++) {
            const int64_t col = col0 + c;
            src[c] = col < n1 ? a->w + col * k + j * bk : NULL;
            sw[b * g->nr + c] = col < n1 ? a->sw[(col / a->bn) * kb + j] : 0;
            sums[c] = 0;
        }
        int8_t *d = dst + b * block_bytes;
        int64_t done = 0;
#if CK_X86
        done = pack_quads_avx2(g, src, len, d, sums);
#endif
        pack_quads_scalar(g, src, len, done, quads, d, sums);
        if (g->wsum)
            for (int64_t c = 0; c < g->nr; c++) wsum[b * g->nr + c] = sums[c];
    }
}

// MARK: - Driver

/// Adds the bias and writes rows [0, m) of a float tile (ld columns, `cols` used) to the output.
static void store_tile(const ck_i8_gemm_args *a, const float *tile, int64_t ld, int64_t n0, int64_t cols, float *tmp,
                       int path) {
    const size_t esize = ck_out_size(a->out_dtype);
    for (int64_t r = 0; r < a->m; r++) {
        char *dst = (char *)a->out + ((size_t)r * (size_t)a->n + (size_t)n0) * esize;
        // float32 results go straight to the output; other types through a row of floats.
        float *row = a->out_dtype == CK_OUT_F32 ? (float *)dst : tmp;
        for (int64_t c = 0; c < cols; c++) {
            const float v = tile[r * ld + c];
            row[c] = a->bias ? v + a->bias[n0 + c] : v;
        }
        if (row == tmp) ck_store(tmp, dst, a->out_dtype, cols, path);
    }
}

static ck_gemm_ukernel ukernel_of(int path) {
#if CK_X86
    switch (path) {
    case CK_PATH_AVX2: return ck_gemm_ukernel_avx2;
    case CK_PATH_AVXVNNI: return ck_gemm_ukernel_avxvnni;
    case CK_PATH_AVX512VNNI: return ck_gemm_ukernel_avx512vnni;
    default: return NULL;
    }
#else
    (void)path;
    return NULL;
#endif
}

/// Chunk depth in K: a sub-panel chunk (depth x nr codes, twice with the |w| copy) stays in L1.
enum { CHUNK_DEPTH = 512 };

/// Columns [n0, n1): each panel of g.nc columns is packed whole (every K block; its rows are read
/// from memory as long sequential streams), then for each chunk of whole K blocks about
/// CHUNK_DEPTH deep every micro-tile row of the activation runs over the chunk's sub-panels (L1),
/// adding into a float tile of m x nc (flushed per K block by the micro-kernel).
static int gemm_packed(const ck_i8_gemm_args *a, int64_t n0, int64_t n1, int path) {
    const ck_gemm_geometry g = ck_gemm_geometry_of(path);
    const ck_gemm_ukernel uk = ukernel_of(path);
    const int64_t k = a->k, bk = a->bk, kb = ck_ceil_div(k, bk), bp = ck_round_up(bk, g.group);
    const int64_t kp = ck_gemm_packed_k(k, bk, g.group), cb = ck_gemm_chunk_blocks(bk, CHUNK_DEPTH);
    const int64_t block_bytes = bp / 4 * ck_gemm_quad_bytes(&g), sub_bytes = kb * block_bytes;
    const int64_t rows = ck_round_up(a->m, g.mr), nsub_max = g.nc / g.nr;
    const int64_t last_len = k - (kb - 1) * bk;
    // One scratch buffer, kept by the thread between calls (ck_scratch_acquire), cut into the
    // packed weight panel, its scales and column sums, the float tile and a row of output.
    const size_t wbytes = (size_t)ck_round_up(nsub_max * sub_bytes, 64);
    const size_t meta_bytes = (size_t)ck_round_up(nsub_max * kb * g.nr * 4, 64);
    const size_t cbytes = (size_t)ck_round_up(rows * g.nc * 4, 64);
    char *scratch = uk ? ck_scratch_acquire(wbytes + 2 * meta_bytes + cbytes + (size_t)g.nc * 4) : NULL;
    if (!scratch) return -1;
    int8_t *wbuf = (int8_t *)scratch;
    float *swbuf = (float *)(scratch + wbytes);
    int32_t *wsum = (int32_t *)(scratch + wbytes + meta_bytes);
    float *cbuf = (float *)(scratch + wbytes + 2 * meta_bytes);
    float *tmp = (float *)(scratch + wbytes + 2 * meta_bytes + cbytes);
    const uint8_t *apack = a->apack;
    for (int64_t nc0 = n0; nc0 < n1; nc0 += g.nc) {
        const int64_t cols = n1 - nc0 < g.nc ? n1 - nc0 : g.nc, nsub = ck_ceil_div(cols, g.nr);
        memset(cbuf, 0, (size_t)(rows * g.nc) * 4);
        for (int64_t s = 0; s < nsub; s++)
            ck_gemm_pack_weight(&g, a, nc0 + s * g.nr, n1, 0, kb, block_bytes, wbuf + s * sub_bytes,
                                swbuf + s * kb * g.nr, wsum + s * kb * g.nr);
        for (int64_t j0 = 0; j0 < kb; j0 += cb) {
            const int64_t j1 = j0 + cb < kb ? j0 + cb : kb, nblocks = j1 - j0;
            const int64_t quads_last = ck_round_up(j1 == kb ? last_len : bk, g.group) / 4;
            for (int64_t mt = 0; mt < rows; mt += g.mr) {
                for (int64_t s = 0; s < nsub; s++) {
                    const int64_t meta = (s * kb + j0) * g.nr;
                    uk(apack + mt * kp + j0 * bp, kp, bp, wbuf + s * sub_bytes + j0 * block_bytes, block_bytes,
                       nblocks, bp / 4, quads_last, wsum + meta, a->sxpack + mt * kb + j0, kb, swbuf + meta,
                       cbuf + mt * g.nc + s * g.nr, g.nc);
                }
            }
        }
        store_tile(a, cbuf, g.nc, nc0, cols, tmp, path);
    }
    ck_scratch_release(scratch);
    return 0;
}

/// Plain C: exact int32 block sums, the contract's float arithmetic.
static int gemm_portable(const ck_i8_gemm_args *a, int64_t n0, int64_t n1) {
    enum { TILE = 64 };
    const int64_t k = a->k, bk = a->bk, kb = ck_ceil_div(k, bk);
    float *tile = ck_alloc((size_t)a->m * TILE * 4), tmp[TILE];
    if (!tile) return -1;
    for (int64_t t0 = n0; t0 < n1; t0 += TILE) {
        const int64_t cols = n1 - t0 < TILE ? n1 - t0 : TILE;
        for (int64_t r = 0; r < a->m; r++) {
            for (int64_t c = 0; c < cols; c++) {
                const int64_t col = t0 + c;
                const int8_t *xr = a->x + r * k, *wr = a->w + col * k;
                float total = 0;
                for (int64_t j = 0; j < kb; j++) {
                    const int64_t p1 = (j + 1) * bk < k ? (j + 1) * bk : k;
                    int32_t sum = 0;
                    for (int64_t p = j * bk; p < p1; p++) sum += (int32_t)xr[p] * (int32_t)wr[p];
                    const float scale = a->sx[r * kb + j] * a->sw[(col / a->bn) * kb + j];
                    const float term = (float)sum * scale;
                    total = total + term;
                }
                tile[r * TILE + c] = total;
            }
        }
        store_tile(a, tile, TILE, t0, cols, tmp, CK_PATH_PORTABLE);
    }
    free(tile);
    return 0;
}

int ck_i8_gemm_run(const ck_i8_gemm_args *args, int64_t n0, int64_t n1, int path) {
    if (n0 >= n1) return 0;
#if CK_X86
    if (path == CK_PATH_AMX) return ck_gemm_amx(args, n0, n1);
    if (ck_gemm_wt_applies(args->m, args->k, args->bk, path)) return ck_gemm_wt_run(args, n0, n1);
#endif
    if (path == CK_PATH_PORTABLE) return gemm_portable(args, n0, n1);
    return gemm_packed(args, n0, n1, path);
}
