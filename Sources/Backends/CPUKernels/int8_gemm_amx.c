// AMX-INT8 W8A8 GEMM (Sapphire Rapids and later): tdpbssd multiplies a 16 x 64 tile of s8
// activation codes by a 16 x (16 x 4) tile of s8 weight codes into 16 x 16 exact int32 sums.
// Each K block is padded with zero codes to a multiple of 64, so one tile pass per 64 K of a block
// accumulates exactly that block's sums; after the block, the four accumulator tiles (a 32 x 32
// output tile) are stored and promoted with the contract's float arithmetic,
// acc += float(S) * (sx * sw). Operands: the activation packed as int8 rows (ck_i8_gemm_pack_activation),
// the weight packed panel by panel with the shared packer (16 columns x 4 codes per K quad, the
// tile's row layout). The OS must have granted tile data (ck_amx_request_permission).
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

enum { TILE = 16, PAIR = 32, PANEL = 64, CHUNK_DEPTH = 512 };

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

CK_AMX int ck_gemm_amx(const ck_i8_gemm_args *a, int64_t n0, int64_t n1) {
    const ck_gemm_geometry g = ck_gemm_geometry_of(CK_PATH_AMX);
    const int64_t k = a->k, bk = a->bk, kb = ck_ceil_div(k, bk), bp = ck_round_up(bk, 64);
    const int64_t kp = ck_gemm_packed_k(k, bk, 64), cb = ck_gemm_chunk_blocks(bk, CHUNK_DEPTH);
    const int64_t block_bytes = bp / 4 * ck_gemm_quad_bytes(&g), sub_bytes = cb * block_bytes;
    const int64_t rows = ck_round_up(a->m, PAIR), nsub_max = PANEL / TILE, last_len = k - (kb - 1) * bk;
    int8_t *wbuf = ck_alloc((size_t)(nsub_max * sub_bytes));
    float *swbuf = ck_alloc((size_t)(nsub_max * cb * TILE) * 4);
    float *cbuf = ck_alloc((size_t)(rows * PANEL) * 4);
    int32_t *sums = ck_alloc((size_t)(PAIR * PAIR) * 4);
    float *tmp = ck_alloc((size_t)PANEL * 4);
    if (!wbuf || !swbuf || !cbuf || !sums || !tmp) {
        free(wbuf); free(swbuf); free(cbuf); free(sums); free(tmp);
        return -1;
    }
    amx_config config;
    memset(&config, 0, sizeof config);
    config.palette = 1;
    for (int t = 0; t < 8; t++) {
        config.colsb[t] = 64;
        config.rows[t] = TILE;
    }
    _tile_loadconfig(&config);
    const int8_t *apack = a->apack;
    for (int64_t nc0 = n0; nc0 < n1; nc0 += PANEL) {
        const int64_t cols = n1 - nc0 < PANEL ? n1 - nc0 : PANEL;
        const int64_t nsub = ck_round_up(ck_ceil_div(cols, TILE), 2);
        memset(cbuf, 0, (size_t)(rows * PANEL) * 4);
        for (int64_t j0 = 0; j0 < kb; j0 += cb) {
            const int64_t j1 = j0 + cb < kb ? j0 + cb : kb;
            for (int64_t s = 0; s < nsub; s++)
                ck_gemm_pack_weight(&g, a, nc0 + s * TILE, n1, j0, j1, block_bytes, wbuf + s * sub_bytes,
                                    swbuf + s * cb * TILE, NULL);
            for (int64_t mt = 0; mt < rows; mt += PAIR) {
                const int64_t live = a->m - mt < PAIR ? a->m - mt : PAIR;
                for (int64_t s = 0; s < nsub; s += 2) {
                    for (int64_t j = j0; j < j1; j++) {
                        const int64_t b = j - j0, steps = ck_round_up(j == kb - 1 ? last_len : bk, 64) / 64;
                        const int8_t *arow = apack + mt * kp + j * bp;
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
                        flush32(sums, a->sxpack + mt * kb + j, kb, sw, sw + cb * TILE, cbuf + mt * PANEL + s * TILE,
                                PANEL, live);
                    }
                }
            }
        }
        const size_t esize = ck_out_size(a->out_dtype);
        for (int64_t r = 0; r < a->m; r++) {
            for (int64_t c = 0; c < cols; c++) {
                const float v = cbuf[r * PANEL + c];
                tmp[c] = a->bias ? v + a->bias[nc0 + c] : v;
            }
            ck_store(tmp, (char *)a->out + ((size_t)r * (size_t)a->n + (size_t)nc0) * esize, a->out_dtype, cols,
                     CK_PATH_AVX2);
        }
    }
    _tile_release();
    free(wbuf); free(swbuf); free(cbuf); free(sums); free(tmp);
    return 0;
}
#else
int ck_amx_request_permission(void) { return 0; }
#endif
