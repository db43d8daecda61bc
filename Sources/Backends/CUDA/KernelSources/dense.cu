//
// Compile-time parameters (`-D`): `IN_DT`, `OUT_DT`, `B_DT` element codes, `ES` bytes per gathered word
// (1, 2, 4, 8 or 16), `APPROX` (0 erf, 1 tanh) for GELU. Shapes travel in a `Dims` struct of
// up to 8 dimensions.
#include "prelude.cuh"
struct Dims { i64 shape[8]; i64 a[8]; i64 b[8]; int rank; };

/// Offsets of flat index i (row-major over shape) in two strided operands.
__device__ __forceinline__ void offsets(const Dims& d, i64 i, i64& oa, i64& ob) {
    oa = 0; ob = 0;
    for (int axis = d.rank - 1; axis >= 0; --axis) {
        i64 n = d.shape[axis];
        i64 c = i % n;
        i /= n;
        oa += c * d.a[axis];
        ob += c * d.b[axis];
    }
}

#ifdef ES
typedef Vec<ES>::T Word;
/// out[i] = in[strided offset of i]: makes a strided view contiguous.
extern "C" __global__ void gather(const Word* in, Word* out, i64 count, Dims d) {
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < count; i += (i64)gridDim.x * blockDim.x) {
        i64 oa, ob;
        offsets(d, i, oa, ob);
        out[i] = in[oa];
    }
}
#endif

#if defined(IN_DT) && defined(OUT_DT)
extern "C" __global__ void convert(const void* in, void* out, i64 count) {
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < count; i += (i64)gridDim.x * blockDim.x)
        store_f<OUT_DT>(out, i, load_f<IN_DT>(in, i));
}
#endif

#if defined(OUT_DT) && !defined(IN_DT)
__device__ __forceinline__ u32 mix(u64 z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (u32)((z ^ (z >> 31)) >> 32);
}
/// Normal samples: Box-Muller on two hashed uniforms per element.
extern "C" __global__ void random_normal(void* out, i64 count, u64 seed, float sd) {
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < count; i += (i64)gridDim.x * blockDim.x) {
        const u64 base = seed * 0x9e3779b97f4a7c15ull + 2 * (u64)i;
        const float u1 = ((float)(mix(base) >> 8) + 1.0f) * 5.9604645e-8f;
        const float u2 = (float)(mix(base + 1) >> 8) * 5.9604645e-8f;
        store_f<OUT_DT>(out, i, sd * sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2));
    }
}
#endif

#if defined(IN_DT) && defined(APPROX)
extern "C" __global__ void gelu(const void* in, void* out, i64 count) {
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < count; i += (i64)gridDim.x * blockDim.x) {
        float x = load_f<IN_DT>(in, i);
        store_f<IN_DT>(out, i, APPROX ? gelu_tanh(x) : gelu_erf(x));
    }
}
#endif

#if defined(IN_DT) && defined(B_DT)
/// out = a + b with broadcasting (d.a, d.b: strides, 0 on broadcast axes); out has a's dtype.
extern "C" __global__ void add(const void* a, const void* b, void* out, i64 count, Dims d) {
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < count; i += (i64)gridDim.x * blockDim.x) {
        i64 oa, ob;
        offsets(d, i, oa, ob);
        store_f<IN_DT>(out, i, load_f<IN_DT>(a, oa) + load_f<B_DT>(b, ob));
    }
}

/// y[m, n] += bias[n] over a row-major (rows, n) matrix of dtype IN_DT.
extern "C" __global__ void add_bias(void* y, const void* bias, i64 count, i64 n) {
    for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < count; i += (i64)gridDim.x * blockDim.x)
        store_f<IN_DT>(y, i, load_f<IN_DT>(y, i) + load_f<B_DT>(bias, i % n));
}
#endif
