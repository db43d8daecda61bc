// Activation packing for the W8A8 GEMM: int16 pairs (AVX2) or u8 = q + 128 quads (AVX-512 VNNI),
// K blocks padded with zeros. The layouts are described in int8_gemm.c.
#include "int8_gemm.h"

void ck_i8_packed_activation_size(int64_t m, int64_t k, int64_t bk, int path, int64_t *rows,
                                  int64_t *row_bytes) {
    if (path == CK_PATH_AVX512VNNI) {
        *rows = ck_round_up(m, VNNI_MR);
        *row_bytes = packed_k(k, bk, 4);
    } else if (path == CK_PATH_AVX2) {
        *rows = ck_round_up(m, AVX2_MR);
        *row_bytes = packed_k(k, bk, 2) * 2;
    } else {
        *rows = m;
        *row_bytes = 0;
    }
}

void ck_i8_pack_activation(const int8_t *x, const float *sx, int64_t m, int64_t k, int64_t bk, int path,
                           int64_t row0, int64_t row1, void *apack, float *sxpack) {
    int64_t rows, row_bytes;
    ck_i8_packed_activation_size(m, k, bk, path, &rows, &row_bytes);
    const int64_t kb = ck_ceil_div(k, bk);
    const int64_t group = path == CK_PATH_AVX512VNNI ? 4 : 2, bp = ck_round_up(bk, group);
    for (int64_t r = row0; r < row1 && r < rows; r++) {
        for (int64_t j = 0; j < kb; j++) {
            const int64_t len = k - j * bk < bk ? k - j * bk : bk, padded = ck_round_up(len, group);
            const int8_t *src = x + r * k + j * bk;
            if (path == CK_PATH_AVX512VNNI) {
                uint8_t *dst = (uint8_t *)apack + r * row_bytes + j * bp;
                for (int64_t t = 0; t < padded; t++) dst[t] = (r < m && t < len) ? (uint8_t)(src[t] ^ 0x80) : 128;
            } else {
                int16_t *dst = (int16_t *)((char *)apack + r * row_bytes) + j * bp;
                for (int64_t t = 0; t < padded; t++) dst[t] = (r < m && t < len) ? src[t] : 0;
            }
            sxpack[r * kb + j] = r < m ? sx[r * kb + j] : 0;
        }
    }
}
