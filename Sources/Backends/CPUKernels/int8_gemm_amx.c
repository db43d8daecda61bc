// AMX-INT8 W8A8 GEMM (Sapphire Rapids and later): tdpbssd multiplies a 16 x 64 tile of s8
// activation codes by a 16 x (16 x 4) tile of s8 weight codes into 16 x 16 exact int32 sums.
// Each K block is padded with zero codes to a multiple of 64, so one tile pass per 64 K of a block
// accumulates exactly that block's sums; after the block, the four accumulator tiles (a 32 x 32
// output tile) are stored and promoted with the contract's float arithmetic,
// acc += float(S) * (sx * sw). Operands: the activation as int8 rows, read in place when every K block
// is a multiple of 64 long (else packed by ck_i8_gemm_pack_activation), the weight packed panel by
// panel (up to 256 columns, so one pass over the activation serves them all) with the shared packer
// (16 columns x 4 codes per K quad, the tile's row layout). The OS must have granted tile data
// (ck_amx_request_permission). NOTES.md ("Issue 11, session 5") has the measurements.
#include "int8_gemm.h"

#if CK_X86
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { ARCH_GET_XCOMP_PERM = 0x1022, ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };

int ck_amx_request_permission(void) {
    if ((ck_cpu_features() & CK_CPU_AMXINT8) == 0) return 0;
#if defined(__linux__)
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return 0;
    unsigned long granted = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &granted) != 0) return 0;
    return (granted >> XFEATURE_XTILEDATA) & 1;
#else
    return 0;
#endif
}

/// Palette 1 tile configuration: every tile 16 rows x 64 bytes.
typedef struct {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

/// Tiles of 16 rows / columns, 32 x 32 output tiles, panels of up to PANEL_MAX columns (the columns
/// one pass over the activation serves), chunks of whole K blocks about CHUNK_DEPTH deep.
enum { TILE = 16, PAIR = 32, PANEL_MAX = 256, CHUNK_DEPTH = 512 };

/// acc[r][0..32) += float(S[r][c]) * (sx[r] * sw[c]) for the 32 x 32 block sums S.
CK_AMX static void flush32(const int32_t *sums, const float *sx, int64_t ldsx, const float *sw0, const float *sw1,
                           float *c, int64_t ldc, int64_t rows) {
    const __m512 s0 = _mm512_loadu_ps(sw0), s1 = _mm512_loadu_ps(sw1);
    for (int64_t r = 0; r < rows; r++) {
        const __m512 sr = _mm512_set1_ps(sx[r * ldsx]);
        float *cr = c + r * ldc;
        const __m512 f0 = _mm512_cvtepi32_ps(_mm512_loadu_si512((const void *)(sums + r * PAIR)));
        const __m512 f1 = _mm512_cvtepi32_ps(_mm512_loadu_si512((const void *)(sums + r * PAIR + TILE)));
        _mm512_storeu_ps(cr, _mm512_add_ps(_mm512_loadu_ps(cr), _mm512_mul_ps(f0, _mm512_mul_ps(sr, s0))));
        _mm512_storeu_ps(cr + TILE,
                         _mm512_add_ps(_mm512_loadu_ps(cr + TILE), _mm512_mul_ps(f1, _mm512_mul_ps(sr, s1))));
    }
}

int ck_i8_gemm_activation_in_place(int64_t k, int64_t bk, int path) {
    return path == CK_PATH_AMX && bk % 64 == 0 && k % 64 == 0;
}

CK_AMX int ck_gemm_amx(const ck_i8_gemm_args *a, int64_t n0, int64_t n1) {
    const ck_gemm_geometry g = ck_gemm_geometry_of(CK_PATH_AMX);
    const int64_t k = a->k, bk = a->bk, kb = ck_ceil_div(k, bk), bp = ck_round_up(bk, 64);
    const int64_t kp = ck_gemm_packed_k(k, bk, 64), cb = ck_gemm_chunk_blocks(bk, CHUNK_DEPTH);
    const int64_t block_bytes = bp / 4 * ck_gemm_quad_bytes(&g), sub_bytes = cb * block_bytes;
    const int64_t rows = ck_round_up(a->m, PAIR), last_len = k - (kb - 1) * bk;
    const int64_t width = n1 - n0 < PANEL_MAX ? ck_round_up(n1 - n0, PAIR) : PANEL_MAX, nsub_max = width / TILE;
    // In place (apack NULL): full 32-row tiles read the codes and scales as they are; the last,
    // partial one (m % 32 rows) is copied with zero rows below it into `tail`.
    const int in_place = a->apack == NULL;
    const int64_t full = in_place ? a->m / PAIR * PAIR : rows;
    const size_t wbytes = (size_t)(nsub_max * sub_bytes), swbytes = (size_t)(nsub_max * cb * TILE) * 4;
    const size_t cbytes = (size_t)(rows * width) * 4, sums_bytes = (size_t)(PAIR * PAIR) * 4;
    const size_t tail_bytes = in_place && full < rows ? (size_t)(PAIR * kp + PAIR * kb * 4) : 0;
    const size_t bytes = wbytes + swbytes + cbytes + sums_bytes + (size_t)width * 4 + tail_bytes + 6 * 64;
    char *scratch = ck_scratch_acquire(bytes);
    if (!scratch) return -1;
    char *cursor = scratch;
#define CK_CARVE(type, name, bytes) type name = (type)cursor; cursor += ((bytes) + 63) / 64 * 64
    CK_CARVE(int8_t *, wbuf, wbytes);
    CK_CARVE(float *, swbuf, swbytes);
    CK_CARVE(float *, cbuf, cbytes);
    CK_CARVE(int32_t *, sums, sums_bytes);
    CK_CARVE(float *, tmp, (size_t)width * 4);
    CK_CARVE(int8_t *, tail, tail_bytes);
#undef CK_CARVE
    const int8_t *apack = in_place ? a->x : a->apack;
    const float *sxpack = in_place ? a->sx : a->sxpack;
    float *tail_sx = (float *)(tail + PAIR * kp);
    if (tail_bytes) {
        const int64_t live = a->m - full;
        memcpy(tail, a->x + full * k, (size_t)(live * kp));
        memset(tail + live * kp, 0, (size_t)((PAIR - live) * kp));
        memcpy(tail_sx, a->sx + full * kb, (size_t)(live * kb) * 4);
        memset(tail_sx + live * kb, 0, (size_t)((PAIR - live) * kb) * 4);
    }
    amx_config config;
    memset(&config, 0, sizeof config);
    config.palette = 1;
    for (int t = 0; t < 8; t++) {
        config.colsb[t] = 64;
        config.rows[t] = TILE;
    }
    _tile_loadconfig(&config);
    for (int64_t nc0 = n0; nc0 < n1; nc0 += width) {
        const int64_t cols = n1 - nc0 < width ? n1 - nc0 : width;
        const int64_t nsub = ck_round_up(ck_ceil_div(cols, TILE), 2);
        memset(cbuf, 0, cbytes);
        for (int64_t j0 = 0; j0 < kb; j0 += cb) {
            const int64_t j1 = j0 + cb < kb ? j0 + cb : kb;
            for (int64_t s = 0; s < nsub; s++)
                ck_gemm_pack_weight(&g, a, nc0 + s * TILE, n1, j0, j1, block_bytes, wbuf + s * sub_bytes,
                                    swbuf + s * cb * TILE, NULL);
            // Each 32-row activation chunk (L1) serves every column pair of the panel (L2).
            for (int64_t mt = 0; mt < rows; mt += PAIR) {
                const int64_t live = a->m - mt < PAIR ? a->m - mt : PAIR;
                const int8_t *atile = mt < full ? apack + mt * kp : tail;
                const float *sxt = mt < full ? sxpack + mt * kb : tail_sx;
                for (int64_t s = 0; s < nsub; s += 2) {
                    for (int64_t j = j0; j < j1; j++) {
                        const int64_t b = j - j0, steps = ck_round_up(j == kb - 1 ? last_len : bk, 64) / 64;
                        const int8_t *arow = atile + j * bp;
                        const int8_t *w0 = wbuf + s * sub_bytes + b * block_bytes, *w1 = w0 + sub_bytes;
                        _tile_zero(0);
                        _tile_zero(1);
                        _tile_zero(2);
                        _tile_zero(3);
                        for (int64_t st = 0; st < steps; st++) {
                            _tile_loadd(4, arow + st * 64, kp);
                            _tile_loadd(5, arow + TILE * kp + st * 64, kp);
                            _tile_loadd(6, w0 + st * 64 * TILE, 64);
                            _tile_loadd(7, w1 + st * 64 * TILE, 64);
                            _tile_dpbssd(0, 4, 6);
                            _tile_dpbssd(1, 4, 7);
                            _tile_dpbssd(2, 5, 6);
                            _tile_dpbssd(3, 5, 7);
                        }
                        _tile_stored(0, sums, PAIR * 4);
                        _tile_stored(1, sums + TILE, PAIR * 4);
                        _tile_stored(2, sums + TILE * PAIR, PAIR * 4);
                        _tile_stored(3, sums + TILE * PAIR + TILE, PAIR * 4);
                        const float *sw = swbuf + s * cb * TILE + b * TILE;
                        flush32(sums, sxt + j, kb, sw, sw + cb * TILE, cbuf + mt * width + s * TILE, width, live);
                    }
                }
            }
        }
        const size_t esize = ck_out_size(a->out_dtype);
        for (int64_t r = 0; r < a->m; r++) {
            for (int64_t c = 0; c < cols; c++) {
                const float v = cbuf[r * width + c];
                tmp[c] = a->bias ? v + a->bias[nc0 + c] : v;
            }
            ck_store(tmp, (char *)a->out + ((size_t)r * (size_t)a->n + (size_t)nc0) * esize, a->out_dtype, cols,
                     CK_PATH_AVX2);
        }
    }
    _tile_release();
    ck_scratch_release(scratch);
    return 0;
}
#else
int ck_amx_request_permission(void) { return 0; }
int ck_i8_gemm_activation_in_place(int64_t k, int64_t bk, int path) {
    (void)k;
    (void)bk;
    (void)path;
    return 0;
}
#endif
