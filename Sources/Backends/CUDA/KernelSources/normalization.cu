// Row-wise reductions over the last dimension: layer norm, softmax with an additive mask, L2
// normalization. Rows are contiguous and `d` long; arithmetic in float32.
//
// One group of `RT` threads per row: `RT = 32` is one warp per row (blocks of 32 x 8 threads,
// eight rows per block), `RT = 128 ... 1024` one block per row for long rows. Each thread reads
// `VEC` consecutive elements per access (`d % VEC == 0`, every operand aligned to its vector).
// Reductions are warp shuffles, then shared memory across the warps of a block. Rows are read
// once per pass (mean, variance, output) from L1/L2 rather than cached in registers, so that one
// compiled variant serves every row length.
//
// Compile-time parameters (`-D`): `IN_DT` element code of x and y, `VEC`, `RT`, and one of
// `LAYER_NORM` (with `W_DT`, `B_DT`: weight / bias codes, -1 when absent), `SOFTMAX` (with
// `M_DT`: mask code, -1 when absent), `L2_NORMALIZE`.
#include "prelude.cuh"

#define NEG_INF __uint_as_float(0xff800000u)

/// Sum over the RT threads of a row, returned to all of them. `shared` holds one float per warp.
__device__ __forceinline__ float group_sum(float v, float* shared) {
    v = warp_sum(v);
#if RT > 32
    const int lane = threadIdx.x & 31;
    __syncthreads();  // the previous reduction's values have been read
    if (lane == 0) shared[threadIdx.x >> 5] = v;
    __syncthreads();
    v = warp_sum(lane < RT / 32 ? shared[lane] : 0.0f);
#endif
    return v;
}

__device__ __forceinline__ float group_max(float v, float* shared) {
    v = warp_max(v, 32);
#if RT > 32
    const int lane = threadIdx.x & 31;
    __syncthreads();
    if (lane == 0) shared[threadIdx.x >> 5] = v;
    __syncthreads();
    v = warp_max(lane < RT / 32 ? shared[lane] : NEG_INF, 32);
#endif
    return v;
}

/// Rows handled by this group: a grid-stride loop, uniform across a block when RT > 32.
#define FOR_EACH_ROW(row, rows) \
    for (i64 row = (i64)blockIdx.x * blockDim.y + threadIdx.y; row < (rows); row += (i64)gridDim.x * blockDim.y)

#ifdef LAYER_NORM
/// y = (x - mean) / sqrt(var + eps) * weight + bias, biased variance, two passes (mean, then the
/// squared deviations from it) so that a large mean does not cancel the variance away.
extern "C" __global__ void layer_norm(const void* x, const void* weight, const void* bias, void* y, i64 rows,
                                      int d, float eps) {
    __shared__ float shared[32];
    const int vectors = d / VEC;
    FOR_EACH_ROW(row, rows) {
        const i64 base = row * d;
        float sum = 0.0f;
        for (int v = threadIdx.x; v < vectors; v += RT) {
            float e[VEC];
            load_vec<IN_DT, VEC>(x, base + (i64)v * VEC, e);
            #pragma unroll
            for (int i = 0; i < VEC; ++i) sum += e[i];
        }
        const float mean = group_sum(sum, shared) / (float)d;
        float squares = 0.0f;
        for (int v = threadIdx.x; v < vectors; v += RT) {
            float e[VEC];
            load_vec<IN_DT, VEC>(x, base + (i64)v * VEC, e);
            #pragma unroll
            for (int i = 0; i < VEC; ++i) squares += (e[i] - mean) * (e[i] - mean);
        }
        const float rstd = 1.0f / sqrtf(group_sum(squares, shared) / (float)d + eps);
        for (int v = threadIdx.x; v < vectors; v += RT) {
            float e[VEC], w[VEC], b[VEC];
            load_vec<IN_DT, VEC>(x, base + (i64)v * VEC, e);
#if W_DT >= 0
            load_vec<W_DT, VEC>(weight, (i64)v * VEC, w);
#else
            #pragma unroll
            for (int i = 0; i < VEC; ++i) w[i] = 1.0f;
#endif
#if B_DT >= 0
            load_vec<B_DT, VEC>(bias, (i64)v * VEC, b);
#else
            #pragma unroll
            for (int i = 0; i < VEC; ++i) b[i] = 0.0f;
#endif
            #pragma unroll
            for (int i = 0; i < VEC; ++i) e[i] = (e[i] - mean) * rstd * w[i] + b[i];
            store_vec<IN_DT, VEC>(y, base + (i64)v * VEC, e);
        }
    }
}
#endif

#ifdef SOFTMAX
/// z = x[base + v VEC ...] + mask[mask_base + v VEC ...] for one vector.
__device__ __forceinline__ void load_z(const void* x, const void* mask, i64 base, i64 mask_base, int v, float* z) {
    load_vec<IN_DT, VEC>(x, base + (i64)v * VEC, z);
#if M_DT >= 0
    float m[VEC];
    load_vec<M_DT, VEC>(mask, mask_base + (i64)v * VEC, m);
    #pragma unroll
    for (int i = 0; i < VEC; ++i) z[i] += m[i];
#endif
}

/// y = exp(z - max z) / sum exp(z - max z) with z = x[row] + mask[row / rows_per_batch]; a row whose
/// z are all -inf gives zeros.
extern "C" __global__ void softmax(const void* x, const void* mask, void* y, i64 rows, int d, i64 rows_per_batch) {
    __shared__ float shared[32];
    const int vectors = d / VEC;
    FOR_EACH_ROW(row, rows) {
        const i64 base = row * d;
        const i64 mask_base = (row / rows_per_batch) * d;
        float z[VEC];
        float high = NEG_INF;
        for (int v = threadIdx.x; v < vectors; v += RT) {
            load_z(x, mask, base, mask_base, v, z);
            #pragma unroll
            for (int i = 0; i < VEC; ++i) high = fmaxf(high, z[i]);
        }
        high = group_max(high, shared);
        const bool empty = high == NEG_INF;
        float sum = 0.0f;
        if (!empty) {
            for (int v = threadIdx.x; v < vectors; v += RT) {
                load_z(x, mask, base, mask_base, v, z);
                #pragma unroll
                for (int i = 0; i < VEC; ++i) sum += expf(z[i] - high);
            }
        }
        sum = group_sum(sum, shared);
        for (int v = threadIdx.x; v < vectors; v += RT) {
            load_z(x, mask, base, mask_base, v, z);
            #pragma unroll
            for (int i = 0; i < VEC; ++i) z[i] = empty ? 0.0f : expf(z[i] - high) / sum;
            store_vec<IN_DT, VEC>(y, base + (i64)v * VEC, z);
        }
    }
}
#endif

#ifdef L2_NORMALIZE
/// y = x / max(sqrt(sum x^2), eps).
extern "C" __global__ void l2_normalize(const void* x, void* y, i64 rows, int d, float eps) {
    __shared__ float shared[32];
    const int vectors = d / VEC;
    FOR_EACH_ROW(row, rows) {
        const i64 base = row * d;
        float squares = 0.0f;
        for (int v = threadIdx.x; v < vectors; v += RT) {
            float e[VEC];
            load_vec<IN_DT, VEC>(x, base + (i64)v * VEC, e);
            #pragma unroll
            for (int i = 0; i < VEC; ++i) squares += e[i] * e[i];
        }
        const float denominator = fmaxf(sqrtf(group_sum(squares, shared)), eps);
        for (int v = threadIdx.x; v < vectors; v += RT) {
            float e[VEC];
            load_vec<IN_DT, VEC>(x, base + (i64)v * VEC, e);
            #pragma unroll
            for (int i = 0; i < VEC; ++i) e[i] = e[i] / denominator;
            store_vec<IN_DT, VEC>(y, base + (i64)v * VEC, e);
        }
    }
}
#endif
