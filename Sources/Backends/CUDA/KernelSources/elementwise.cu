// Elementwise products of contiguous tensors, `VEC` elements per access, float32 arithmetic and
// one rounding to the output dtype.
//
// Compile-time parameters (`-D`): `IN_DT` (input and output element code), `VEC`, and `SCALE`
// or `MULTIPLY` with `B_DT` (the second operand's code).
#include "prelude.cuh"

#ifdef SCALE
/// y = x * factor over `vectors` vectors of VEC elements.
extern "C" __global__ void scale(const void* x, void* y, i64 vectors, float factor) {
    for (i64 v = blockIdx.x * (i64)blockDim.x + threadIdx.x; v < vectors; v += (i64)gridDim.x * blockDim.x) {
        float e[VEC];
        load_vec<IN_DT, VEC>(x, v * VEC, e);
        #pragma unroll
        for (int i = 0; i < VEC; ++i) e[i] *= factor;
        store_vec<IN_DT, VEC>(y, v * VEC, e);
    }
}
#endif

#ifdef MULTIPLY
/// out[i] = a[i] * b[i mod nb]: b is a trailing block of a's shape, repeated over the leading
/// dimensions (`b_vectors` = nb / VEC).
extern "C" __global__ void multiply(const void* a, const void* b, void* out, i64 vectors, i64 b_vectors) {
    for (i64 v = blockIdx.x * (i64)blockDim.x + threadIdx.x; v < vectors; v += (i64)gridDim.x * blockDim.x) {
        float e[VEC], f[VEC];
        load_vec<IN_DT, VEC>(a, v * VEC, e);
        load_vec<B_DT, VEC>(b, (v % b_vectors) * VEC, f);
        #pragma unroll
        for (int i = 0; i < VEC; ++i) e[i] *= f[i];
        store_vec<IN_DT, VEC>(out, v * VEC, e);
    }
}
#endif
