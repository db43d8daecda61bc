// Linear kernel of our own: the general block-wise INT8 W8A8 GEMM (SIMT, `dp4a`) that serves every
// block size and shape the tensor-core and decode kernels do not (decode shapes: `decode.cu`).
//
// `w8a8_simt` computes exactly the CPU reference's arithmetic:
// `y[m,n] = sum_j float(sum_{k in block j} qx[m,k] qw[n,k]) * (sx[m,j] * sw[n/BRW, j]) + b[n]`, the inner
// sum in int32, the outer in float32 in block order with the same rounding (`__fmul_rn`,
// `__fadd_rn`), written straight to `OUT_DT`. Grid (ceil(N/64), ceil(M/64)), 256 threads, each
// computing 4 x 4 outputs; no dynamic shared memory; any compute capability >= 6.1.
#include "prelude.cuh"
#if defined(W8A8)
#define TM 64
#define TN 64
#define TK 32
extern "C" __global__ void __launch_bounds__(256) w8a8_simt(
    const i8* x, const float* sx, const i8* w, const float* sw, const void* bias, void* y,
    int M, int N, int K, int KB, int BRW, int BCK) {
    __shared__ int xs[TM][TK / 4 + 1];
    __shared__ int ws[TN][TK / 4 + 1];
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const int m0 = blockIdx.y * TM, n0 = blockIdx.x * TN;
    float acc[4][4];
    #pragma unroll
    for (int i = 0; i < 4; ++i)
        #pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
    for (int j = 0; j < KB; ++j) {
        const int kb0 = j * BCK, kb1 = min(K, kb0 + BCK);
        int part[4][4];
        #pragma unroll
        for (int a = 0; a < 4; ++a)
            #pragma unroll
            for (int b = 0; b < 4; ++b) part[a][b] = 0;
        for (int k0 = kb0; k0 < kb1; k0 += TK) {
            for (int t = threadIdx.x; t < TM * (TK / 4); t += blockDim.x) {
                const int r = t / (TK / 4), c4 = t % (TK / 4);
                int px = 0, pw = 0;
                #pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int k = k0 + c4 * 4 + e;
                    const int vx = (m0 + r < M && k < kb1) ? (int)x[(i64)(m0 + r) * K + k] : 0;
                    const int vw = (n0 + r < N && k < kb1) ? (int)w[(i64)(n0 + r) * K + k] : 0;
                    px |= (vx & 0xff) << (8 * e);
                    pw |= (vw & 0xff) << (8 * e);
                }
                xs[r][c4] = px;
                ws[r][c4] = pw;
            }
            __syncthreads();
            #pragma unroll
            for (int c4 = 0; c4 < TK / 4; ++c4) {
                int a[4], b[4];
                #pragma unroll
                for (int i = 0; i < 4; ++i) { a[i] = xs[ty * 4 + i][c4]; b[i] = ws[tx * 4 + i][c4]; }
                #pragma unroll
                for (int i = 0; i < 4; ++i)
                    #pragma unroll
                    for (int q = 0; q < 4; ++q) part[i][q] = __dp4a(a[i], b[q], part[i][q]);
            }
            __syncthreads();
        }
        #pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int m = m0 + ty * 4 + i;
            if (m >= M) continue;
            const float sxv = sx[(i64)m * KB + j];
            #pragma unroll
            for (int q = 0; q < 4; ++q) {
                const int n = n0 + tx * 4 + q;
                if (n < N)
                    acc[i][q] = __fadd_rn(acc[i][q], __fmul_rn((float)part[i][q], __fmul_rn(sxv, sw[(i64)(n / BRW) * KB + j])));
            }
        }
    }
    #pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int m = m0 + ty * 4 + i;
        #pragma unroll
        for (int q = 0; q < 4; ++q) {
            const int n = n0 + tx * 4 + q;
            if (m < M && n < N)
                store_f<OUT_DT>(y, (i64)m * N + n, __fadd_rn(acc[i][q], bias ? load_f<BIAS_DT>(bias, n) : 0.0f));
        }
    }
}
#endif
