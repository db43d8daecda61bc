// The two ends of an encoder: embedding lookup (token ids -> rows of a table) and masked mean
// pooling (token rows -> one row per sequence).
//
// Compile-time parameters (`-D`): `EMBEDDING` with `WB` (bytes per copied word: 1, 2, 4, 8 or 16,
// dividing the row's bytes); `MEAN_POOL` with `IN_DT`, `M_DT` (mask element code) and `VEC`.
#include "prelude.cuh"

#ifdef EMBEDDING
typedef Vec<WB>::T Word;

/// out[i, :] = table[indices[i], :], one warp per index, copying `row_words` words of WB bytes.
/// An index outside [0, vocab) writes a zero row and records the smallest such position in `bad`
/// (which the host set to all ones), so the host can report it.
extern "C" __global__ void embedding(const Word* table, const int* indices, Word* out, i64 count, i64 vocab,
                                     i64 row_words, unsigned long long* bad) {
    const int lane = threadIdx.x & 31;
    const i64 warps = ((i64)gridDim.x * blockDim.x) >> 5;
    for (i64 i = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5; i < count; i += warps) {
        const i64 index = indices[i];
        Word* row = out + i * row_words;
        if (index < 0 || index >= vocab) {
            if (lane == 0) atomicMin(bad, (unsigned long long)i);
            Pack<WB> zero;
            #pragma unroll
            for (int k = 0; k < WB; ++k) zero.b[k] = 0;
            for (i64 w = lane; w < row_words; w += 32) row[w] = zero.v;
            continue;
        }
        const Word* source = table + index * row_words;
        for (i64 w = lane; w < row_words; w += 32) row[w] = source[w];
    }
}
#endif

#ifdef MEAN_POOL
#define PX 32
#define PY 8
/// out[b, :] = sum_s mask[b, s] x[b, s, :] / max(sum_s mask[b, s], 1e-9), accumulated in float32.
///
/// Blocks of PX x PY threads: x runs along D in vectors of VEC, y splits the S positions; the PY
/// partial sums are added in shared memory in a fixed order. Positions whose mask is 0 are not read.
extern "C" __global__ void masked_mean_pool(const void* x, const void* mask, void* out, int s, int d) {
    __shared__ float partial[PY][VEC][PX];
    __shared__ float partial_mask[PY];
    const i64 b = blockIdx.x;
    const int vectors = d / VEC;
    for (int first = blockIdx.y * PX; first < vectors; first += gridDim.y * PX) {
        const int v = first + threadIdx.x;
        float acc[VEC];
        #pragma unroll
        for (int i = 0; i < VEC; ++i) acc[i] = 0.0f;
        float weight = 0.0f;
        for (int t = threadIdx.y; t < s; t += PY) {
            const float m = load_f<M_DT>(mask, b * s + t);
            weight += m;
            if (m != 0.0f && v < vectors) {
                float e[VEC];
                load_vec<IN_DT, VEC>(x, (b * s + t) * d + (i64)v * VEC, e);
                #pragma unroll
                for (int i = 0; i < VEC; ++i) acc[i] += m * e[i];
            }
        }
        #pragma unroll
        for (int i = 0; i < VEC; ++i) partial[threadIdx.y][i][threadIdx.x] = acc[i];
        if (threadIdx.x == 0) partial_mask[threadIdx.y] = weight;
        __syncthreads();
        if (threadIdx.y == 0 && v < vectors) {
            float total = 0.0f;
            for (int y = 0; y < PY; ++y) total += partial_mask[y];
            const float denominator = fmaxf(total, 1e-9f);
            float r[VEC];
            #pragma unroll
            for (int i = 0; i < VEC; ++i) {
                float sum = 0.0f;
                for (int y = 0; y < PY; ++y) sum += partial[y][i][threadIdx.x];
                r[i] = sum / denominator;
            }
            store_vec<IN_DT, VEC>(out, b * d + (i64)v * VEC, r);
        }
        __syncthreads();
    }
}
#endif
