#include "CKernels.h"
#include "ck_internal.h"
#include <math.h>
#include <string.h>

// Fused dequantize -> gelu -> round to the original dtype -> requantize, one 1 x B block at a
// time in an L1-resident buffer. Contraction is off so every float operation rounds exactly as the
// plain-Swift definition (GeluApproximation.apply, which ck_gelu_scalar computes, then
// BlockWiseINT8Reference.quantize) does.
#pragma STDC FP_CONTRACT OFF

static float ck_round_to_dtype(float v, int dtype) {
    if (dtype == CK_OUT_F16) return (float)(_Float16)v;
    if (dtype == CK_OUT_BF16) {
        uint32_t bits;
        memcpy(&bits, &v, 4);
        bits = (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;
        memcpy(&v, &bits, 4);
    }
    return v;
}

void ck_i8_gelu_requantize_rows(const int8_t *q, const float *s, int64_t cols, int64_t block, int tanh_form,
                                int round_dtype, int toward_zero, int64_t row_begin, int64_t row_end,
                                int8_t *q_out, float *s_out) {
    float buffer[CK_GELU_MAX_BLOCK];
    const int64_t blocks = (cols + block - 1) / block;
    for (int64_t r = row_begin; r < row_end; r++) {
        for (int64_t j = 0; j < blocks; j++) {
            const int64_t start = j * block;
            const int64_t length = cols - start < block ? cols - start : block;
            const int8_t *in = q + r * cols + start;
            const float scale_in = s[r * blocks + j];
            float amax = 0.0f;
            int finite = 1;
            for (int64_t i = 0; i < length; i++) {
                float v = ck_round_to_dtype(ck_gelu_scalar((float)in[i] * scale_in, tanh_form), round_dtype);
                buffer[i] = v;
                float a = fabsf(v);
                finite &= isfinite(v) ? 1 : 0;
                amax = a > amax ? a : amax;
            }
            // A NaN or infinity (a NaN or infinite input scale) makes the block's scale NaN, never 0:
            // the caller reports it; dequantizing gives NaN, not a silent zero.
            const float scale = finite ? ck_i8_scale(amax) : NAN;
            s_out[r * blocks + j] = scale;
            int8_t *out = q_out + r * cols + start;
            if (!(scale > 0.0f)) {
                memset(out, 0, (size_t)length);
                continue;
            }
            for (int64_t i = 0; i < length; i++) {
                float t = buffer[i] / scale;
                t = toward_zero ? truncf(t) : nearbyintf(t);
                t = t < -127.0f ? -127.0f : (t > 127.0f ? 127.0f : t);
                out[i] = (int8_t)t;
            }
        }
    }
}
