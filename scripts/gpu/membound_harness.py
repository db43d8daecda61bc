#!/usr/bin/env python3
"""Correctness and speed of the memory-bound CUDA kernels (issue 10): the activation quantizer
(`quant_rows`, and `bw8_quantize_rows_vec16` beside it), `dequant`, `fp8_dequant`, the fused gelu
requantizer (`quant_rows` with OPK = 2) and the decode GEMV `gemv_stream` (modes 0-3).

Like gemm_harness.py (whose NVRTC / driver helpers it uses) it compiles the KernelSources files with
NVRTC through ctypes, with the backend's options (`--fmad=false` for our kernels), and launches them
through the driver API; PyTorch gives memory, events and references.

  python3 membound_harness.py --compile-only   # no GPU: every variant compiles for sm_90 (+ cuobjdump usage)
  python3 membound_harness.py --check          # every kernel against a torch reference, bit for bit
  python3 membound_harness.py --bench          # each kernel against a torch copy of the same bytes
  python3 membound_harness.py --profile        # one launch of each benchmarked kernel (run under ncu)
Options: --sources DIR (KernelSources), --baseline DIR (an older KernelSources, timed beside it).

Timing: CUDA graphs of `inner` calls, replayed `reps` times, median per call. The copy reference of
a kernel moving R bytes read + W bytes written is `dst.copy_(src)` of (R + W) / 2 bytes (the same bytes
moved), timed the same way; "of copy" = copy time / kernel time. Decode kernels rotate over weight
copies larger than the L2 so the weight streams from HBM, and are reported as weight bytes per
second against the 2 GB copy's bandwidth (read + write), as bench-cuda does.
"""
import argparse, glob, os, shutil, statistics, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gemm_harness as H  # noqa: E402

OPTS = H.BACKEND_OPTIONS + ['--fmad=false']
DTC = {'f32': 0, 'f16': 1, 'bf16': 2, 'f8': 3}


class Source:
    def __init__(self, folder, name):
        self.folder, self.name = folder, name
        self.prog = H.Program(folder, name)


def compile_variant(src, defines, arch='sm_90', fmad=False):
    """NVRTC, through the cubin cache in $MEMBOUND_CACHE when set (keyed by the program's text, its
    headers and the options), so a later device call can carry the cubins instead of compiling."""
    opts = ['--gpu-architecture=' + arch] + (OPTS if not fmad else H.BACKEND_OPTIONS)
    opts += ['-D%s=%d' % (k, v) for k, v in sorted(defines.items())]
    cache = os.environ.get('MEMBOUND_CACHE')
    if cache:
        import hashlib
        key = hashlib.sha1((src.prog.key() + '\0' + ' '.join(opts)).encode()).hexdigest()
        path = os.path.join(cache, key + '.cubin')
        if os.path.exists(path):
            return {'cubin': open(path, 'rb').read(), 'log': ''}
    o = H.nvrtc_compile(src.prog, opts)
    if cache:
        os.makedirs(cache, exist_ok=True)
        open(path, 'wb').write(o['cubin'])
    return o


def cuobjdump():
    c = shutil.which('cuobjdump')
    if c:
        return c
    try:
        import triton
        g = glob.glob(os.path.join(os.path.dirname(triton.__file__), 'backends', 'nvidia', 'bin', 'cuobjdump'))
        if g:
            return g[0]
    except Exception:
        pass
    return None


def usage(cubin):
    tool = cuobjdump()
    if not tool:
        return '(no cuobjdump)'
    with tempfile.TemporaryDirectory() as td:
        p = os.path.join(td, 'k.cubin')
        open(p, 'wb').write(cubin)
        r = subprocess.run([tool, '--dump-resource-usage', p], capture_output=True, text=True)
        return ' '.join(l.strip() for l in (r.stdout + r.stderr).splitlines() if 'REG' in l or 'rror' in l)


# ------------------------------------------------------------------------------------- variants
def quant_rows_defs(src, in_dt, B, ept, U, opk=0, rz=0):
    return {'ROWS': 1, 'SRC': src, 'IN_DT': DTC[in_dt], 'OPK': opk, 'ROUND_DT': DTC['bf16'] if opk else 0,
            'DELTA_DT': 0, 'TOWARD_ZERO': rz, 'BC': B, 'EPT': ept, 'G': B // ept, 'U': U}


def ept_for(in_dt, B, src):
    size = {'f32': 4, 'f16': 2, 'bf16': 2}[in_dt] if src == 0 else 1
    return min(16 // size, B)


def rows_u(ept, B):
    G = B // ept
    return max(2, G // 32) if G > 32 else 2


def backend_u(in_dt, src, opk, ept, B, M, C, sms):
    """CUDAQuantizedOps.rowPlan: U = 4 for a plain bf16 source with at least 64 warps of U = 4 work per SM."""
    packed = src == 0 and in_dt == 'bf16' and opk == 0 and ept % 2 == 0 and ept <= 8
    warps = M * ((C + 4 * 32 * ept - 1) // (4 * 32 * ept))
    return max(4, (B // ept) // 32) if packed and warps >= 64 * sms else rows_u(ept, B)


def decode_defs(mode, M, B, U, xs=1, out='bf16', x_dt='bf16', rz=0, br=None):
    return {'MODE': mode, 'MT': M, 'OUT_DT': DTC[out], 'BR': br if br else (B if mode < 3 else 1), 'BC': B,
            'BIAS_DT': 0, 'X_DT': DTC[x_dt], 'TOWARD_ZERO': rz, 'U': U, 'XS': xs}


def decode_u(mode, K):
    """CUDALinearOps.decodeChunksPerLane: W8A8 takes the U in 6...3 whose batch (32 U chunks) divides the
    row's K / 16 chunks, else 4; INT8 weight-only 4, FP8 weight-only 2 (the faster in the H200 runs)."""
    if mode >= 2:
        return 4 if mode == 2 else 2
    return next((u for u in (6, 5, 4, 3) if (K // 16) % (32 * u) == 0), 4)


def wo_mma_u(K, mode=3, M=16):
    """CUDALinearOps.weightOnlyMMASegments: segments per warp batch, 2 for INT8 weight-only (mode 2) at
    M <= 4, else 3 (the faster on the H200 at both decode shapes: session 4, and session 8's --wo-grid-sweep)."""
    return 2 if mode == 2 and M <= 4 else 3


def w8_mma_check_shapes():
    """(M, N, K, B, toward zero, output dtypes (a slice of f32, bf16)): every M with K % 64 != 0, then WAN rows."""
    shapes = [(M, 37, 400, 128, M % 2, (M % 2, M % 2 + 1)) for M in range(1, 17)]
    shapes += [(2, 18432, 3072, 128, 0, (0, 2)), (16, 999, 5120, 128, 1, (0, 2)), (4, 70, 5120, 64, 0, (0, 1)),
               (9, 24, 1024, 512, 0, (1, 2)), (3, 33, 336, 64, 1, (0, 1)), (16, 130, 5120, 256, 0, (1, 2)),
               (7, 61, 1088, 64, 0, (0, 1)), (1, 300, 3072, 128, 0, (1, 2))]
    return shapes


def w8_mma_variants():
    """The (entry, defines) the w8mma checks and --decode-sweep compile (to fill $MEMBOUND_CACHE beforehand)."""
    out = []
    for (M, N, Kc, B, rz, dts) in w8_mma_check_shapes():
        for name in ('f32', 'bf16')[dts[0]:dts[1]]:
            out.append(('gemv_stream', decode_defs(1, M, B, decode_u(1, Kc), 1, name, name, rz)))
            for U in ((2, 3, 4) if N > 900 or M in (1, 16) else (3,)):
                for mode in (1, 0):
                    out.append(('gemv_w8a8_mma', dict(decode_defs(mode, M, B, U, 1, name, name if mode else 'bf16',
                                                                  rz), TC=1)))
    for Kc in (3072, 5120):
        for M in (1, 2, 3, 4, 8, 16):
            out.append(('gemv_stream', decode_defs(1, M, 128, decode_u(1, Kc), 1, 'bf16', 'bf16', 0)))
            for U in (2, 3, 4):
                out.append(('gemv_w8a8_mma', dict(decode_defs(1, M, 128, U, 1, 'bf16', 'bf16', 0), TC=1)))
            out.append(('gemv_w8a8_mma', dict(decode_defs(0, M, 128, 3, 1, 'bf16', 'bf16', 0), TC=1)))
            if M in (1, 2, 16):
                out.append(('gemv_wo_mma', dict(decode_defs(2, M, 128, wo_mma_u(Kc), 1, 'bf16', 'bf16', 0), TC=1)))
                out.append(('gemv_wo_mma', dict(decode_defs(3, M, 16, wo_mma_u(Kc), 1, 'bf16', 'bf16', 0), TC=1)))
    for (M, N, Kc) in [(M, 37, 400) for M in (1, 2, 3, 5, 8, 9, 16)] + [(2, 18432, 3072), (16, 999, 5120)]:
        for name in ('f32', 'bf16'):
            out.append(('gemv_wo_mma', dict(decode_defs(4, M, 16, wo_mma_u(Kc), 1, name, name, 0), TC=1)))
    for M in (1, 2, 4, 8, 16):
        out.append(('gemv_wo_mma', dict(decode_defs(4, M, 16, wo_mma_u(3072), 1, 'bf16', 'bf16', 0), TC=1)))
    for Kc in (3072, 5120):
        for M in (1, 2, 4, 16):
            for U in (2, 3):
                out.append(('gemv_wo_mma', dict(decode_defs(2, M, 128, U, 1, 'bf16', 'bf16', 0), TC=1)))
                out.append(('gemv_wo_mma', dict(decode_defs(3, M, 16, U, 1, 'bf16', 'bf16', 0), TC=1)))
                out.append(('gemv_wo_mma', dict(decode_defs(4, M, 16, U, 1, 'bf16', 'bf16', 0), TC=1)))
    # the NaN / inf check
    out.append(('gemv_stream', decode_defs(1, 3, 128, decode_u(1, 640), 1, 'f32', 'f32', 0)))
    out.append(('gemv_w8a8_mma', dict(decode_defs(1, 3, 128, w8_mma_u(640, 3), 1, 'f32', 'f32', 0), TC=1)))
    return out


def precompile_w8_mma(sources, jobs):
    """Compiles w8_mma_variants() into $MEMBOUND_CACHE with `jobs` processes."""
    from concurrent.futures import ProcessPoolExecutor
    variants = list({tuple(sorted(d.items())): d for _, d in w8_mma_variants()}.values())
    with ProcessPoolExecutor(jobs) as pool:
        list(pool.map(_compile_decode, [(sources, d) for d in variants]))
    print('precompiled %d decode variants' % len(variants), flush=True)


def _compile_decode(arg):
    sources, d = arg
    compile_variant(Source(sources, 'decode'), d, 'sm_90')


def w8_mma_u(K, M=1):
    """CUDALinearOps.w8a8MMASegments(m:): 3, or 2 above 8 rows."""
    return 2 if M > 8 else 3


def w8_mma_shared(M, K, B):
    """CUDALinearOps.w8a8MMASharedBytes: codes (rows of w8_row_bytes), scales, two product buffers."""
    k64 = (K + 63) // 64 * 64
    rs = k64 if k64 % 128 else k64 + 64
    kb = (K + B - 1) // B
    return M * rs + 4 * ((M * kb + 3) & ~3) + 4 * 2 * kb * 16 * M


def wo_mma_shared(M, K, f32):
    """CUDALinearOps.weightOnlyMMASharedBytes."""
    rw = (K + 63) // 64 * 32 + 4
    nt = (M + 7) // 8
    return 4 * ((3 if f32 else 1) * M * rw + 8 + 2 * 8 * 4 * nt * 32 + 32)


def decode_shared(mode, M, K, B, U, xs, x_size=2):
    if mode >= 2:
        return ((M * K * x_size + 15) & ~15) if xs else 0
    KB = (K + B - 1) // B
    base = (((M * K + 15) & ~15) + 4 * M * KB + 15) & ~15 if xs else 0
    stage = M * 32 * U + M * (32 * U // (B // 16))
    return base + 8 * 4 * stage


# ------------------------------------------------------------------------------------- runtime
COPY_SRC = '''
extern "C" __global__ void __launch_bounds__(256) copy16(const uint4* __restrict__ a, uint4* __restrict__ b,
                                                         long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        b[i] = a[i];
}
'''


class Inline:
    def __init__(self, name, text):
        self.name, self.text, self.headers = name + '.cu', text, []

    def key(self):
        return self.text


class Runner:
    def __init__(self, sources, baseline=None):
        import torch
        self.torch = torch
        self.drv = H.Driver()
        import ctypes
        self.ctypes = ctypes
        self.drv.cu.cuOccupancyMaxActiveBlocksPerMultiprocessor.argtypes = [
            ctypes.POINTER(ctypes.c_int), ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
        self.sms = torch.cuda.get_device_properties(0).multi_processor_count
        cc = torch.cuda.get_device_capability()
        self.arch = 'sm_%d%d' % cc
        self.src = {n: Source(sources, n) for n in ('quantization', 'decode', 'bw8_portable')}
        self.old = {n: Source(baseline, n) for n in ('quantization', 'decode')} if baseline else {}
        self.cache = {}
        o = H.nvrtc_compile(Inline('copy', COPY_SRC), ['--gpu-architecture=' + self.arch] + OPTS)
        self.copy_fn = self.drv.func(self.drv.load(o['cubin']), 'copy16')

    def kernel_copy(self, a, b):
        import ctypes
        self.launch(self.copy_fn, self.sms * 8, [P(a), P(b), ctypes.c_int64(a.numel() * a.element_size() // 16)])

    def fn(self, which, name, defines, smem=0, old=False):
        key = (which, name, tuple(sorted(defines.items())), old)
        if key not in self.cache:
            src = (self.old if old else self.src)[which]
            o = compile_variant(src, defines, self.arch, fmad=(which == 'bw8_portable'))
            mod = self.drv.load(o['cubin'])
            self.cache[key] = self.drv.func(mod, name, smem)
        return self.cache[key]

    def occupancy(self, f, smem):
        n = self.ctypes.c_int()
        self.drv.ck(self.drv.cu.cuOccupancyMaxActiveBlocksPerMultiprocessor(self.ctypes.byref(n), f, 256, smem),
                    'occupancy')
        return n.value

    def stream(self):
        return self.torch.cuda.current_stream().cuda_stream

    def launch(self, f, grid, args, smem=0, threads=256):
        self.drv.launch(f, (grid,), (threads,), smem, self.stream(), args)


P = lambda t: ('ptr', t.data_ptr() if t is not None else 0)


def i64args(vals):
    import ctypes
    return [ctypes.c_int64(int(v)) for v in vals]


def f32arg(v):
    import ctypes
    return ctypes.c_float(v)


# The driver launch helper of gemm_harness passes ctypes scalars through unchanged.
def fix_launch(drv):
    import ctypes
    orig = drv.launch

    def launch(f, grid, block, smem, stream, args):
        keep, ptrs = [], []
        for a in args:
            if isinstance(a, tuple) and a[0] == 'ptr':
                v = ctypes.c_uint64(a[1])
            elif isinstance(a, (ctypes.c_int64, ctypes.c_float, ctypes.c_int32, ctypes.c_uint64)):
                v = a
            else:
                v = ctypes.c_int32(int(a))
            keep.append(v)
            ptrs.append(ctypes.cast(ctypes.pointer(v), ctypes.c_void_p))
        params = (ctypes.c_void_p * len(ptrs))(*ptrs)
        g = list(grid) + [1] * (3 - len(grid))
        b = list(block) + [1] * (3 - len(block))
        drv.ck(drv.cu.cuLaunchKernel(f, g[0], g[1], g[2], b[0], b[1], b[2], smem, ctypes.c_void_p(stream), params,
                                     None), 'cuLaunchKernel')
    drv.launch = launch
    return orig


# ------------------------------------------------------------------------------------- kernels
class K:
    """Launch wrappers, as the Swift backend launches them."""

    def __init__(self, R):
        self.R = R
        self.t = R.torch

    def grid(self, work_threads, per_sm=16):
        return max(1, min((work_threads + 255) // 256, self.R.sms * per_sm))

    def quant_rows(self, x, B, rz=0, src=0, sx=None, opk=0, U=None, q=None, s=None, old=False, flag=None,
                   threads=256, grid=None):
        """`old`: the same variant and launch compiled from the --baseline sources; `threads`, `grid`: a
        launch other than the backend's default (every warp one span, at most 8 blocks per SM)."""
        t = self.t
        M, C = x.shape
        CB = (C + B - 1) // B
        in_dt = {t.float32: 'f32', t.float16: 'f16', t.bfloat16: 'bf16', t.int8: 'bf16'}[x.dtype]
        ept = ept_for(in_dt, B, src)
        q = t.empty((M, C), dtype=t.int8, device=x.device) if q is None else q
        s = t.empty((M, CB), dtype=t.float32, device=x.device) if s is None else s
        if U is None:  # the launch rule of the sources being timed
            U = rows_u(ept, B) if old else backend_u(in_dt if src == 0 else 'i8', src, opk, ept, B, M, C, self.R.sms)
        f = self.R.fn('quantization', 'quant_rows', quant_rows_defs(src, in_dt, B, ept, U, opk, rz), old=old)
        spans = (C + U * 32 * ept - 1) // (U * 32 * ept)
        if grid is None:
            grid = max(1, min((M * spans * 32 + threads - 1) // threads, self.R.sms * 8 * 256 // threads))
        args = [P(x), P(sx), ('ptr', 0), f32arg(0.0), P(q), P(s)] + i64args([M, C, CB]) + [P(flag)]
        self.R.launch(f, grid, args, threads=threads)
        return q, s

    def vec16(self, x, B, rz=0, q=None, s=None):
        t = self.t
        M, K_ = x.shape
        KB = (K_ + B - 1) // B
        q = t.empty((M, K_), dtype=t.int8, device=x.device) if q is None else q
        s = t.empty((M, KB), dtype=t.float32, device=x.device) if s is None else s
        f = self.R.fn('bw8_portable', 'bw8_quantize_rows_vec16', {})
        dt = {t.float32: 0, t.float16: 1, t.bfloat16: 2}[x.dtype]
        self.R.launch(f, self.grid(M * KB * (B // 16)), [P(x), P(q), P(s), M, K_, B, dt, rz])
        return q, s

    def dequant(self, q, s, BR, BC, out_dtype, U=4, old=False, y=None):
        t = self.t
        R_, C = q.shape
        out = {t.float32: 'f32', t.float16: 'f16', t.bfloat16: 'bf16'}[out_dtype]
        size = {'f32': 4, 'f16': 2, 'bf16': 2}[out]
        ept = next(e for e in [16 // size, 4, 2, 1] if C % e == 0)
        d = {'DEQUANT': 1, 'OUT_DT': DTC[out], 'EPT': ept, 'BR': BR, 'BC': BC, 'SRC': 1, 'TOWARD_ZERO': 0}
        d['U'] = U
        f = self.R.fn('quantization', 'dequant', d, old=old)
        y = t.empty((R_, C), dtype=out_dtype, device=q.device) if y is None else y
        total = R_ * C
        grid = self.grid(total // ept // U, 8)
        self.R.launch(f, grid, [P(q), P(s), P(y)] + i64args([total, R_, C, (R_ + BR - 1) // BR, (C + BC - 1) // BC]))
        return y

    def fp8_dequant(self, q, s, out_dtype, U=4, old=False, y=None):
        t = self.t
        out = {t.float32: 'f32', t.float16: 'f16', t.bfloat16: 'bf16'}[out_dtype]
        size = {'f32': 4, 'f16': 2, 'bf16': 2}[out]
        count = q.numel()
        ept = next(e for e in [16 // size, 4, 2, 1] if count % e == 0)
        d = {'FP8': 1, 'SRC': 2, 'OUT_DT': DTC[out], 'EPT': ept, 'TOWARD_ZERO': 0}
        d['U'] = U
        f = self.R.fn('quantization', 'fp8_dequant', d, old=old)
        y = t.empty(q.shape, dtype=out_dtype, device=q.device) if y is None else y
        grid = self.grid(count // ept // U, 8)
        self.R.launch(f, grid, [P(q), P(s), P(y)] + i64args([count]))
        return y

    def gemv(self, mode, x, sx, wq, ws, bias, y, B, U=None, xs=1, rz=0, br=None, old=False, tc=False, full_grid=False):
        t = self.t
        M, K_ = x.shape
        N = wq.shape[0]
        out = {t.float32: 'f32', t.float16: 'f16', t.bfloat16: 'bf16'}[y.dtype]
        x_dt = {t.float32: 'f32', t.float16: 'f16', t.bfloat16: 'bf16', t.int8: 'bf16'}[x.dtype]
        if tc and mode <= 1:
            U = U or w8_mma_u(K_, M)
            d = decode_defs(mode, M, B, U, 1, out, x_dt, rz, br)
            d['TC'] = 1
            smem = w8_mma_shared(M, K_, B)
            f = self.R.fn('decode', 'gemv_w8a8_mma', d, smem)
            if smem > 48 * 1024:
                self.R.drv.ck(self.R.drv.cu.cuFuncSetAttribute(f, 8, smem), 'cuFuncSetAttribute')
            tiles = (N + 15) // 16
            grid = max(1, min(tiles, self.R.sms * self.R.occupancy(f, smem)))
            self.R.launch(f, grid, [P(x), P(sx), P(wq), P(ws), P(bias), P(y), N, K_], smem)
            return y
        if tc:
            U = U or wo_mma_u(K_, mode, M)
            d = decode_defs(mode, M, B, U, 1, out, x_dt, rz, br)
            d['TC'] = 1
            smem = wo_mma_shared(M, K_, x_dt == 'f32' and mode != 4)
            f = self.R.fn('decode', 'gemv_wo_mma', d, smem)
            if smem > 48 * 1024:
                self.R.drv.ck(self.R.drv.cu.cuFuncSetAttribute(f, 8, smem), 'cuFuncSetAttribute')
            tiles = (N + 15) // 16
            cap = self.R.sms * self.R.occupancy(f, smem)
            rounds = (tiles + cap - 1) // cap
            grid = min(tiles, cap) if full_grid else max(1, (tiles + rounds - 1) // rounds)
            self.R.launch(f, grid, [P(x), P(sx), P(wq), P(ws), P(bias), P(y), N, K_], smem)
            return y
        U = U or decode_u(mode, K_)
        d = decode_defs(mode, M, B, U, xs, out, x_dt, rz, br)
        smem = decode_shared(mode, M, K_, B, U, xs, x.element_size())
        f = self.R.fn('decode', 'gemv_stream', d, smem, old=old)
        if smem > 48 * 1024:
            self.R.drv.ck(self.R.drv.cu.cuFuncSetAttribute(f, 8, smem), 'cuFuncSetAttribute')
        per_sm = self.R.occupancy(f, smem)
        cap = self.R.sms * per_sm * 8  # resident warps
        rounds = (N + cap - 1) // cap
        grid = max(1, ((N + rounds - 1) // rounds + 7) // 8)
        self.R.launch(f, grid, [P(x), P(sx), P(wq), P(ws), P(bias), P(y), N, K_], smem)
        return y


# ------------------------------------------------------------------------------------- references
def ref_dequant(q, s, BR, BC, dtype):
    import torch
    R_, C = q.shape
    se = s.repeat_interleave(BR, 0)[:R_].repeat_interleave(BC, 1)[:, :C]
    return (q.float() * se).to(dtype)


def gelu_tanh_64(v):
    import torch
    v = v.double()
    return 0.5 * v * (1 + torch.tanh(0.7978845608028654 * (v + 0.044715 * v ** 3)))


def f32(v):
    return v.float()


def fma32(a, b, c):
    """float32 fma emulated in float64 (a*b exact in float64; one double rounding, rarely different)."""
    return (a.double() * b.double() + c.double()).float()


def cpu_gelu_tanh(x):
    """The CPU's ck_gelu_scalar (tanh form) in float32 operations, fma emulated."""
    import torch
    x = x.float()
    inner = f32(torch.tensor(0.7978845608028654, dtype=torch.float32, device=x.device) *
                fma32((torch.tensor(0.044715, dtype=torch.float32, device=x.device) * x) * x, x, x))
    z = inner + inner
    v = torch.clamp(z, max=88.3762626647949)
    n = torch.round(v * torch.tensor(1.44269504088896341, dtype=torch.float32, device=x.device))
    r = fma32(n, torch.full_like(n, -0.693359375), v)
    r = fma32(n, torch.full_like(n, 2.12194440e-4), r)
    p = fma32(torch.full_like(r, 1.9875691500e-4), r, torch.full_like(r, 1.3981999507e-3))
    for c in (8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1):
        p = fma32(p, r, torch.full_like(r, c))
    y = fma32(p, r * r, r) + 1.0
    scale = ((n.int() + 127) << 23).view(torch.float32)
    e = y * scale
    e = torch.where(z < -87.3, torch.zeros_like(e), e)
    e = torch.where(z != z, z, e)
    t = 1.0 - 2.0 / (e + 1.0)
    return (0.5 * x) * (1.0 + t)


def ref_quant_gpu(x, B, rz):
    q, s = H.ref_quant(x, B, rz)
    return q.to(x.device), s.to(x.device)


def ref_w8a8(qx, sx, qw, sw, bias, B, BR, out_dtype):
    """NOTES.md, "Numerics decisions": acc += float(S_j) * (sx * sw) over j in increasing order (float32), bias last."""
    import torch
    M, K_ = qx.shape
    N = qw.shape[0]
    KB = (K_ + B - 1) // B
    acc = torch.zeros(M, N, dtype=torch.float32, device=qx.device)
    swr = sw.repeat_interleave(BR, 0)[:N]
    for j in range(KB):
        a = qx[:, j * B:(j + 1) * B].double()
        w = qw[:, j * B:(j + 1) * B].double()
        S = (a @ w.t()).float()  # exact integers (|S| < 2^24 for these shapes)
        acc = acc + S * (sx[:, j:j + 1] * swr[:, j][None, :])
    if bias is not None:
        acc = acc + bias.float()[None, :]
    return acc.to(out_dtype)


def ref_weight_only(x, wq, ws, B, BR, bias, fp8):
    import torch
    N, K_ = wq.shape
    if fp8:
        w = wq.view(torch.float8_e4m3fn).float() * ws
    else:
        w = wq.float() * ws.repeat_interleave(BR, 0)[:N].repeat_interleave(B, 1)[:, :K_]
    y = x.double() @ w.double().t()
    return y + bias.double()[None, :] if bias is not None else y


# ------------------------------------------------------------------------------------- checks
def run_checks(R, k, args):
    """Every section, or those named in --sections (quant, gelu, dequant, w8a8, mode1, wo, wo_mma)."""
    torch = R.torch
    want = lambda name: not args.sections or name in args.sections.split(',')
    dev = 'cuda'
    fails, results = [], []

    def rec(name, ok, detail=''):
        results.append(name)
        print(('PASS ' if ok else 'FAIL ') + name + '  ' + detail, flush=True)
        if not ok:
            fails.append(name)

    def same(a, b):
        return int((a != b).sum()) if a.dtype != torch.float32 else int(((a != b) & ~(a.isnan() & b.isnan())).sum())

    # quantizer: bit-exact vs the CPU reference and vs vec16
    shapes = [(7, 48, 32), (33, 208, 64), (17, 1008, 256), (64, 1040, 128), (5, 3072, 128),
              (3, 400, 128), (1000, 3072, 128), (2, 13824, 128), (300, 5120, 256), (9, 96, 32)]
    for (M, Kc, B) in (shapes if want('quant') else []):
        for dt in (torch.bfloat16, torch.float16, torch.float32):
            for rz in (0, 1):
                x = torch.randn(M, Kc, device=dev) * torch.exp(torch.randn(M, 1, device=dev) * 2)
                if Kc > B:
                    x[0, :B] = 0
                x = x.to(dt)
                rq, rs = ref_quant_gpu(x, B, rz)
                vq, vs = k.vec16(x, B, rz)
                if True:
                    q, s = k.quant_rows(x, B, rz)
                    torch.cuda.synchronize()
                    rec('quant_rows M=%d K=%d B=%d %s rz=%d' % (M, Kc, B, str(dt)[6:], rz),
                        same(q, rq) == 0 and same(s, rs) == 0 and same(q, vq) == 0 and same(s, vs) == 0,
                        'code/scale mismatches vs CPU ref %d/%d, vs vec16 %d/%d' % (same(q, rq), same(s, rs),
                                                                                 same(q, vq), same(s, vs)))
    # NaN / inf propagation: scales exactly as vec16 (NaN for a NaN block, inf for an inf block)
    for B in (32, 128, 256) if want('quant') else ():
        x = torch.randn(6, 1024, device=dev)
        x[1, 5] = float('nan')
        x[2, 1023] = float('inf')
        x[3, 300] = float('-inf')
        for dt in (torch.float32, torch.bfloat16):
            xx = x.to(dt)
            flag = torch.zeros(1, dtype=torch.int32, device=dev)
            q, s = k.quant_rows(xx, B, flag=flag)
            vq, vs = k.vec16(xx, B)
            torch.cuda.synchronize()
            ok = same(s, vs) == 0 and bool(s[1, 0].isnan()) and float(s[2, -1]) == float('inf') and \
                float(s[3, 300 // B]) == float('inf') and int(flag.item()) == 1
            fin = torch.ones_like(s, dtype=torch.bool)
            fin[1, 0] = fin[2, -1] = fin[3, 300 // B] = False
            rec('quant_rows nan/inf B=%d %s' % (B, str(dt)[6:]), ok, 'flag %d' % int(flag.item()))

    # fused gelu (tanh form), int8 -> int8 and bf16 -> int8: within the GPU test's tolerance of the
    # float64 gelu (1e-2 on the dequantized values); code mismatches against the float64 gelu and
    # against the CPU's float operations (cpu_gelu_tanh) are reported
    for src in (1, 0) if want('gelu') else ():
        for B in (32, 128, 256):
            x = (torch.randn(257, 3072, device=dev) * 2).to(torch.bfloat16)
            qx, sx = ref_quant_gpu(x, B, 0)
            vin = (qx.float() * sx.repeat_interleave(B, 1)[:, :3072]) if src == 1 else x.float()
            inp = qx if src == 1 else x
            rq, rs = ref_quant_gpu(gelu_tanh_64(vin).to(torch.bfloat16), B, 0)
            cq, cs = ref_quant_gpu(cpu_gelu_tanh(vin).to(torch.bfloat16), B, 0)
            if True:
                q, s = k.quant_rows(inp, B, 0, src=src, sx=sx if src == 1 else None, opk=2)
                torch.cuda.synchronize()
                deq = q.float() * s.repeat_interleave(B, 1)[:, :3072]
                e = float((deq.double() - gelu_tanh_64(vin)).norm() / gelu_tanh_64(vin).norm())
                rec('gelu src=%d B=%d' % (src, B), e < 1e-2,
                    'rel err %.2e; code/scale mismatches vs float64 gelu %d/%d, vs CPU ops %d/%d of %d' % (
                        e, same(q, rq), same(s, rs), same(q, cq), same(s, cs), q.numel()))

    # dequant: bit-exact
    shapes = [(54, 3072, 1, 128), (300, 400, 128, 128), (7, 96, 1, 32), (129, 200, 128, 64),
                            (5, 72, 1, 48), (3, 10, 1, 5)]
    for (Rr, C, BR, BC) in (shapes if want('dequant') else []):
        q = torch.randint(-127, 128, (Rr, C), dtype=torch.int8, device=dev)
        s = torch.rand((Rr + BR - 1) // BR, (C + BC - 1) // BC, device=dev) * 0.1
        for dt in (torch.bfloat16, torch.float32, torch.float16):
            y = k.dequant(q, s, BR, BC, dt)
            torch.cuda.synchronize()
            rec('dequant %dx%d %dx%d %s' % (Rr, C, BR, BC, str(dt)[6:]), same(y, ref_dequant(q, s, BR, BC, dt)) == 0)
    for count_shape in [] if not want('dequant') else [(54, 3072), (7, 33), (1, 8)]:
        q = torch.randint(0, 256, count_shape, dtype=torch.uint8, device=dev)
        q[q == 0x7f] = 0
        q[q == 0xff] = 0
        sc = torch.tensor([0.37], device=dev)
        for dt in (torch.bfloat16, torch.float32, torch.float16):
            y = k.fp8_dequant(q, sc, dt)
            torch.cuda.synchronize()
            ref = (q.view(torch.float8_e4m3fn).float() * sc).to(dt)
            rec('fp8_dequant %s %s' % (count_shape, str(dt)[6:]), same(y, ref) == 0)

    # decode W8A8, modes 0 and 1: bit-exact with the contract arithmetic
    shapes = [(1, 37, 400, 128, 0), (2, 64, 1024, 128, 1), (5, 50, 512, 32, 0), (16, 33, 768, 256, 1),
                              (3, 20, 336, 16, 0), (9, 24, 1024, 512, 0), (2, 18432, 3072, 128, 0),
                              (2, 999, 5120, 128, 0), (4, 70, 256, 64, 1)]
    for (M, N, Kc, B, rz) in (shapes if want('w8a8') or want('mode1') else []):
        x = torch.randn(M, Kc, device=dev) * 2
        x[0, 3] = 0
        qw, sw = H.quant_weight(torch.randn(N, Kc, device=dev) * 0.05, B)
        bias = torch.randn(N, device=dev)
        for xdt, odt in ((torch.float32, torch.float32), (torch.bfloat16, torch.bfloat16)):
            xx = x.to(xdt)
            qx, sx = ref_quant_gpu(xx, B, rz)
            ref = ref_w8a8(qx, sx, qw, sw, bias, B, B, odt)
            full = want('w8a8')
            for U in ((3, 4, 5, 6) if N > 900 and full else (4, 2) if M == 16 and full else (decode_u(0, Kc),)):
                for mode, xs in ((1, 1), (0, 1), (0, 0)) if want('w8a8') else ((1, 1),):
                    y = torch.full((M, N), float('nan'), dtype=odt, device=dev)
                    k.gemv(mode, xx if mode == 1 else qx, sx, qw, sw, bias, y, B, U=U, xs=xs, rz=rz)
                    torch.cuda.synchronize()
                    rec('gemv mode=%d xs=%d U=%d M=%d N=%d K=%d B=%d %s' % (mode, xs, U, M, N, Kc, B, str(odt)[6:]),
                        same(y, ref) == 0, 'mismatches %d' % same(y, ref))
    # W8A8 on the tensor cores (gemv_w8a8_mma), modes 0 and 1: bit-exact with the contract and gemv_stream
    for (M, N, Kc, B, rz, dts) in (w8_mma_check_shapes() if want('w8mma') else []):
        x = torch.randn(M, Kc, device=dev) * 2
        x[0, 3] = 0
        qw, sw = H.quant_weight(torch.randn(N, Kc, device=dev) * 0.05, B)
        bias = torch.randn(N, device=dev)
        for xdt, odt in ((torch.float32, torch.float32), (torch.bfloat16, torch.bfloat16))[dts[0]:dts[1]]:
            xx = x.to(xdt)
            qx, sx = ref_quant_gpu(xx, B, rz)
            ref = ref_w8a8(qx, sx, qw, sw, bias, B, B, odt)
            ys = torch.full((M, N), float('nan'), dtype=odt, device=dev)
            k.gemv(1, xx, sx, qw, sw, bias, ys, B, rz=rz)
            for U in ((2, 3, 4) if N > 900 or M in (1, 16) else (3,)):
                for mode in (1, 0):
                    y = torch.full((M, N), float('nan'), dtype=odt, device=dev)
                    k.gemv(mode, xx if mode == 1 else qx, sx, qw, sw, bias, y, B, U=U, rz=rz, tc=True)
                    torch.cuda.synchronize()
                    rec('w8a8_mma mode=%d U=%d M=%d N=%d K=%d B=%d %s' % (mode, U, M, N, Kc, B, str(odt)[6:]),
                        same(y, ref) == 0 and same(y, ys) == 0,
                        'mismatches ref %d stream %d' % (same(y, ref), same(y, ys)))
    if want('w8mma'):
        x = torch.randn(3, 640, device=dev)
        x[1, 17] = float('nan')
        x[2, 100] = float('inf')
        qw, sw = H.quant_weight(torch.randn(40, 640, device=dev), 128)
        y = torch.zeros(3, 40, device=dev)
        k.gemv(1, x, None, qw, sw, None, y, 128, tc=True)
        ys = torch.zeros(3, 40, device=dev)
        k.gemv(1, x, None, qw, sw, None, ys, 128)
        torch.cuda.synchronize()
        rec('w8a8_mma mode=1 NaN / inf rows', bool(y[1].isnan().all()) and bool(y[0].isfinite().all())
            and same(y, ys) == 0, 'nan pattern %s' % str(y.isnan().sum(1).tolist()))
    # FP8 W8A8 on a float input (gemv_wo_mma mode 4): the input quantizer's codes, products summed in float32
    for (M, N, Kc) in ([(M, 37, 400) for M in (1, 2, 3, 5, 8, 9, 16)] + [(2, 18432, 3072), (16, 999, 5120)]
                       if want('fp8mma') else []):
        x = torch.randn(M, Kc, device=dev) * 2
        w = torch.randn(N, Kc, device=dev) * 0.05
        s8 = (w.abs().max() / 448).reshape(1)
        w8 = (w / s8).clamp(-448, 448).to(torch.float8_e4m3fn)
        bias = torch.randn(N, device=dev)
        for xdt in (torch.float32, torch.bfloat16):
            xx = x.to(xdt)
            sx = xx.float().abs().max() / 448
            qx = (xx.float() / sx).clamp(-448, 448).to(torch.float8_e4m3fn)
            ref = (qx.double() @ w8.double().t()) * float(sx * s8[0]) + bias.double()
            y = torch.full((M, N), float('nan'), dtype=xdt, device=dev)
            k.gemv(4, xx, None, w8.view(torch.uint8), s8, bias, y, 16, tc=True)
            torch.cuda.synchronize()
            e = H.relerr(y.double(), ref)
            rec('fp8 w8a8 mode=4 M=%d N=%d K=%d %s' % (M, N, Kc, str(xdt)[6:]),
                e < (1e-5 if xdt == torch.float32 else 4e-3), 'rel err %.1e' % e)
    # NaN row
    x = torch.randn(3, 256, device=dev)
    x[1, 17] = float('nan')
    qw, sw = H.quant_weight(torch.randn(40, 256, device=dev), 128)
    y = torch.zeros(3, 40, device=dev)
    k.gemv(1, x, None, qw, sw, None, y, 128)
    torch.cuda.synchronize()
    rec('gemv mode=1 NaN row', bool(y[1].isnan().all()) and bool(y[0].isfinite().all()) and bool(y[2].isfinite().all()))
    # weight-only, modes 2 (INT8, 128x128 and 1x64... blocks) and 3 (FP8)
    shapes = [(1, 45, 640, 64), (2, 45, 640, 64), (7, 100, 1024, 128), (16, 33, 640, 64),
                          (2, 18432, 3072, 128)]
    for (M, N, Kc, B) in (shapes if want('wo') else []):
        x = torch.randn(M, Kc, device=dev) * 3
        bias = torch.randn(N, device=dev)
        w = torch.randn(N, Kc, device=dev) * 0.05
        qw, sw = H.quant_weight(w, B)
        amax = w.abs().max()
        s8 = (amax / 448).reshape(1)
        w8 = (w / s8).clamp(-448, 448).to(torch.float8_e4m3fn).view(torch.uint8)
        for xdt in (torch.float32, torch.bfloat16):
            xx = x.to(xdt)
            for xs in (1, 0):
                for U in ((2, 4) if N > 9000 else (4,)):
                    y = torch.full((M, N), float('nan'), device=dev)
                    k.gemv(2, xx, None, qw, sw, bias, y, B, U=U, xs=xs)
                    torch.cuda.synchronize()
                    e = H.relerr(y, ref_weight_only(xx.float(), qw, sw, B, B, bias, False))
                    rec('gemv mode=2 xs=%d U=%d M=%d N=%d K=%d %s' % (xs, U, M, N, Kc, str(xdt)[6:]), e < 1e-6,
                        'rel err %.1e' % e)
                    y.fill_(float('nan'))
                    k.gemv(3, xx, None, w8, s8, bias, y, 16, U=U, xs=xs)
                    torch.cuda.synchronize()
                    e = H.relerr(y, ref_weight_only(xx.float(), w8, s8, 16, 1, bias, True))
                    rec('gemv mode=3 xs=%d U=%d M=%d N=%d K=%d %s' % (xs, U, M, N, Kc, str(xdt)[6:]), e < 1e-6,
                        'rel err %.1e' % e)
    # weight-only on the tensor cores (gemv_wo_mma): within 1e-6 of float64 (the GPU test's bound), the
    # error printed beside the SIMT kernel's; odd N, K % 64 != 0, M up to 16, every input dtype, U 2 / 3
    shapes = [(3, 45, 640, 64), (2, 45, 640, 64), (7, 45, 640, 64), (16, 45, 640, 64),
                          (7, 100, 1024, 128), (3, 37, 656, 64), (9, 70, 2048, 256), (2, 18432, 3072, 128),
                          (2, 999, 5120, 128), (1, 16, 64, 64)]
    for (M, N, Kc, B) in (shapes if want('wo_mma') else []):
        # rows of very different magnitudes (row m scaled by 10^(3 (m % 3) - 3)), one with a 1e4 outlier
        x = torch.randn(M, Kc, device=dev) * 3 * (10.0 ** (3 * (torch.arange(M, device=dev) % 3) - 3))[:, None]
        x[0, 5] = 1e4 * x[0].abs().max()
        bias = torch.randn(N, device=dev)
        w = torch.randn(N, Kc, device=dev) * 0.05
        qw, sw = H.quant_weight(w, B)
        amax = w.abs().max()
        s8 = (amax / 448).reshape(1)
        w8 = (w / s8).clamp(-448, 448).to(torch.float8_e4m3fn).view(torch.uint8)
        for xdt in (torch.float32, torch.bfloat16, torch.float16):
            if xdt == torch.float16:
                x = x.clamp(-6e4, 6e4)
            xx = x.to(xdt)
            for U in (3,):
                for mode in (2, 3):
                    wq_, ws_, B_ = (qw, sw, B) if mode == 2 else (w8, s8, 16)
                    if wo_mma_shared(M, Kc, xdt == torch.float32) > 227 * 1024:
                        continue  # the library runs gemv_stream there
                    ref = ref_weight_only(xx.float(), wq_, ws_, B_, B_ if mode == 2 else 1, bias, mode == 3)
                    y = torch.full((M, N), float('nan'), device=dev)
                    k.gemv(mode, xx, None, wq_, ws_, bias, y, B_, U=U, tc=True)
                    torch.cuda.synchronize()
                    e = max(H.relerr(y[m], ref[m]) for m in range(M))  # the worst row
                    e2 = float('nan')
                    if want('wo'):
                        y2 = torch.full((M, N), float('nan'), device=dev)
                        k.gemv(mode, xx, None, wq_, ws_, bias, y2, B_, xs=1)
                        torch.cuda.synchronize()
                        e2 = max(H.relerr(y2[m], ref[m]) for m in range(M))
                    rec('gemv_wo_mma mode=%d U=%d M=%d N=%d K=%d %s' % (mode, U, M, N, Kc, str(xdt)[6:]),
                        e < 1e-6 and bool(y.isfinite().all()), 'worst row rel err %.1e (SIMT %.1e)' % (e, e2))
    # non-finite: x q overflowing where x (q s) does not (recomputed, finite), inf and NaN inputs (the
    # contract's NaN / inf pattern), bf16 output
    for mode in (2, 3) if want('wo_mma') else ():
        M, N, Kc, B = 4, 40, 640, 64
        x = torch.randn(M, Kc, device=dev)
        x[0, 3] = 3e37
        x[1, 100] = float('inf')
        x[2, 7] = float('nan')
        w = torch.randn(N, Kc, device=dev) * 0.05
        w[5, 100] = 0.0
        qw, sw = H.quant_weight(w, B)
        s8 = (w.abs().max() / 448).reshape(1)
        w8 = (w / s8).clamp(-448, 448).to(torch.float8_e4m3fn).view(torch.uint8)
        wq_, ws_, B_ = (qw, sw, B) if mode == 2 else (w8, s8, 16)
        ref = ref_weight_only(x, wq_, ws_, B_, B_ if mode == 2 else 1, None, mode == 3).float()
        y = torch.full((M, N), 7.0, device=dev)
        k.gemv(mode, x, None, wq_, ws_, None, y, B_, tc=True)
        torch.cuda.synchronize()
        ok = bool((y.isnan() == ref.isnan()).all()) and bool((y.isinf() == ref.isinf()).all()) and \
            bool((y[y.isinf()] == ref[ref.isinf()]).all()) and H.relerr(y[0], ref[0]) < 1e-6 and \
            H.relerr(y[3], ref[3]) < 1e-6
        rec('gemv_wo_mma mode=%d non-finite (overflow of x q, inf, NaN)' % mode, ok,
            'row 0 finite %s, NaN %d/%d, inf %d/%d' % (bool(y[0].isfinite().all()), int(y.isnan().sum()),
                                                        int(ref.isnan().sum()), int(y.isinf().sum()),
                                                        int(ref.isinf().sum())))
        yb = torch.empty((M, N), dtype=torch.bfloat16, device=dev)
        xb = torch.randn(M, Kc, device=dev, dtype=torch.bfloat16)
        k.gemv(mode, xb, None, wq_, ws_, None, yb, B_, tc=True)
        torch.cuda.synchronize()
        refb = ref_weight_only(xb.float(), wq_, ws_, B_, B_ if mode == 2 else 1, None, mode == 3)
        rec('gemv_wo_mma mode=%d bf16 out' % mode, H.relerr(yb.float(), refb) < 4e-3,
            'rel err %.1e' % H.relerr(yb.float(), refb))
    print('\nchecks: %d passed, %d failed' % (len(results) - len(fails), len(fails)))
    for f in fails:
        print('  FAILED:', f)
    return not fails


# ------------------------------------------------------------------------------------- bench
def timed(fn, inner=10, reps=15):
    return H.bench_graph(fn, inner, reps)[0]


def run_bench(R, k, args):
    torch = R.torch
    dev = 'cuda'
    rows = []
    copy_cache = {}

    def copy_time(nbytes):
        n = int(nbytes // 2) // 16 * 16
        if n not in copy_cache:
            a = torch.empty(n, dtype=torch.uint8, device=dev)
            b = torch.empty_like(a)
            copy_cache[n] = timed(lambda i: R.kernel_copy(a, b))
            del a, b
        return copy_cache[n]

    def row(name, ms, nbytes):
        c = copy_time(nbytes)
        rate = nbytes / (ms * 1e-3) / 1e9
        rows.append((name, ms * 1e3, rate, rate / bw, c / ms))
        print('%-58s %9.1f us %7.0f GB/s  %.2f of copy (same-bytes kernel copy %.2f)' % rows[-1], flush=True)

    a = torch.empty(int(2e9) // 4, device=dev)
    b = torch.empty_like(a)
    tg = timed(lambda i: b.copy_(a), 5, 10)
    tk = timed(lambda i: R.kernel_copy(a, b), 5, 10)
    te = H.bench(lambda i: b.copy_(a), 20)[0]
    bw = 2 * a.numel() * 4 / (te * 1e-3) / 1e9
    print('2 GB device copy (read + write): eager memcpy %.0f GB/s (the reference), graph memcpy %.0f, '
          'graph copy kernel %.0f' % (bw, 2 * a.numel() * 4 / (tg * 1e-3) / 1e9, 2 * a.numel() * 4 / (tk * 1e-3) / 1e9))
    del a, b

    M, Kc, B = 54560, 3072, 128
    count = M * Kc
    sbytes = 4 * M * (Kc // B)
    x = torch.randn(M, Kc, device=dev, dtype=torch.bfloat16)
    q = torch.empty(M, Kc, dtype=torch.int8, device=dev)
    s = torch.empty(M, Kc // B, device=dev)
    q2 = torch.empty_like(q)
    s2 = torch.empty_like(s)
    base = args.baseline is not None
    row('quantize bf16->int8 1x128: vec16 (main)', timed(lambda i: k.vec16(x, B, 0, q, s)), 3 * count + sbytes)
    for U in (1, 2, 4):
        row('quantize bf16->int8 1x128: quant_rows U=%d' % U,
            timed(lambda i: k.quant_rows(x, B, U=U, q=q, s=s)), 3 * count + sbytes)
    if base:
        row('quantize bf16->int8 1x128: quant_rows (main)',
            timed(lambda i: k.quant_rows(x, B, old=True, q=q, s=s)), 3 * count + sbytes)
    xf = torch.randn(M // 2, Kc, device=dev)
    row('quantize f32->int8 1x128 (27280 rows): quant_rows U=2',
        timed(lambda i: k.quant_rows(xf, B, q=q[:M // 2], s=s[:M // 2])),
        5 * count // 2 + sbytes // 2)
    del xf
    k.vec16(x, B, 0, q, s)
    y = torch.empty(M, Kc, dtype=torch.bfloat16, device=dev)
    for U in (2, 4):
        row('dequant int8->bf16 1x128: U=%d' % U, timed(lambda i: k.dequant(q, s, 1, B, torch.bfloat16, U=U, y=y)),
            3 * count + sbytes)
    if base:
        row('dequant int8->bf16 1x128: main', timed(lambda i: k.dequant(q, s, 1, B, torch.bfloat16, old=True, y=y)),
            3 * count + sbytes)
    y32 = torch.empty(M // 2, Kc, dtype=torch.float32, device=dev)
    row('dequant int8->f32 1x128 (27280 rows): U=4',
        timed(lambda i: k.dequant(q[:M // 2], s[:M // 2], 1, B, torch.float32, y=y32)),
        5 * count // 2 + sbytes // 2)
    del y32
    f8 = torch.randint(0, 126, (M, Kc), dtype=torch.uint8, device=dev)
    sc = torch.tensor([0.01], device=dev)
    for U in (2, 4):
        row('fp8_dequant e4m3->bf16: U=%d' % U, timed(lambda i: k.fp8_dequant(f8, sc, torch.bfloat16, U=U, y=y)),
            3 * count)
    if base:
        row('fp8_dequant e4m3->bf16: main', timed(lambda i: k.fp8_dequant(f8, sc, torch.bfloat16, old=True, y=y)),
            3 * count)
    del f8
    row('gelu int8->int8 1x128 (tanh form)', timed(lambda i: k.quant_rows(q, B, src=1, sx=s, opk=2, q=q2, s=s2)),
        2 * count + 2 * sbytes)
    if base:
        row('gelu int8->int8 1x128 main',
            timed(lambda i: k.quant_rows(q, B, src=1, sx=s, opk=2, old=True, q=q2, s=s2)),
            2 * count + 2 * sbytes)
    row('gelu bf16->int8 1x128 (tanh form)', timed(lambda i: k.quant_rows(x, B, src=0, opk=2, q=q2, s=s2)),
        3 * count + sbytes)
    if base:
        row('gelu bf16->int8 1x128 main', timed(lambda i: k.quant_rows(x, B, src=0, opk=2, old=True, q=q2, s=s2)),
            3 * count + sbytes)
    del x, q, s, q2, s2, y
    torch.cuda.empty_cache()

    drows = []
    for (M, N, Kc) in [(2, 18432, 3072), (2, 30720, 5120)]:
        nrot = max(2, int(6e8 // (N * Kc)) + 1)
        ws_ = [H.quant_weight(torch.randn(N, Kc, device=dev) * 0.05, B) for _ in range(nrot)]
        f8s = [torch.randint(0, 126, (N, Kc), dtype=torch.uint8, device=dev) for _ in range(nrot)]
        x = torch.randn(M, Kc, device=dev, dtype=torch.bfloat16)
        qx, sx = ref_quant_gpu(x, B, 0)
        y = torch.empty(M, N, dtype=torch.bfloat16, device=dev)
        sc = torch.tensor([0.01], device=dev)
        wbytes = N * Kc + ws_[0][1].numel() * 4
        wbf = [(torch.randn(N, Kc, device=dev) * 0.02).to(torch.bfloat16)
                for _ in range(max(2, int(6e8 // (2 * N * Kc)) + 1))]
        t_bf = timed(lambda i: torch.nn.functional.linear(x, wbf[i % len(wbf)]), 40, 10)
        del wbf

        def drow(name, ms, nb):
            drows.append((name, M, N, Kc, ms * 1e3, nb / (ms * 1e-3) / 1e9 / bw, t_bf / ms))
            print('%-44s %dx%dx%d %7.1f us  %.2f of copy  %.2fx bf16' % drows[-1], flush=True)
        drow('bf16 torch linear', t_bf, 2 * N * Kc)
        for U in ((decode_u(1, Kc), 4) if decode_u(1, Kc) != 4 else (4,)):
            drow('W8A8 mode 1 (float input) U=%d' % U,
                 timed(lambda i: k.gemv(1, x, None, ws_[i % nrot][0], ws_[i % nrot][1], None, y, B, U=U), 40, 10),
                     wbytes)
            drow('W8A8 mode 0 (codes) U=%d' % U,
                 timed(lambda i: k.gemv(0, qx, sx, ws_[i % nrot][0], ws_[i % nrot][1], None, y, B, U=U), 40, 10),
                     wbytes)
        for U in (2, 4):
            drow('INT8 weight-only mode 2 U=%d' % U,
                 timed(lambda i: k.gemv(2, x, None, ws_[i % nrot][0], ws_[i % nrot][1], None, y, B, U=U), 40, 10),
                     wbytes)
            drow('FP8 weight-only mode 3 U=%d' % U,
                 timed(lambda i: k.gemv(3, x, None, f8s[i % nrot], sc, None, y, 16, U=U), 40, 10), N * Kc)
        for U in (2, 3):
            drow('INT8 weight-only mode 2 tensor cores U=%d' % U,
                 timed(lambda i: k.gemv(2, x, None, ws_[i % nrot][0], ws_[i % nrot][1], None, y, B, U=U, tc=True),
                       40, 10), wbytes)
            drow('FP8 weight-only mode 3 tensor cores U=%d' % U,
                 timed(lambda i: k.gemv(3, x, None, f8s[i % nrot], sc, None, y, 16, U=U, tc=True), 40, 10), N * Kc)
        x16 = torch.randn(16, Kc, device=dev, dtype=torch.bfloat16)
        y16 = torch.empty(16, N, dtype=torch.bfloat16, device=dev)
        drow('W8A8 mode 1 (float input) M=16',
             timed(lambda i: k.gemv(1, x16, None, ws_[i % nrot][0], ws_[i % nrot][1], None, y16, B), 40, 10), wbytes)
        if base:
            drow('W8A8 mode 1 main',
                 timed(lambda i: k.gemv(1, x, None, ws_[i % nrot][0], ws_[i % nrot][1], None, y, B, old=True), 40, 10),
                 wbytes)
            drow('INT8 weight-only mode 2 main',
                 timed(lambda i: k.gemv(2, x, None, ws_[i % nrot][0], ws_[i % nrot][1], None, y, B, old=True), 40, 10),
                 wbytes)
            drow('FP8 weight-only mode 3 main',
                 timed(lambda i: k.gemv(3, x, None, f8s[i % nrot], sc, None, y, 16, old=True), 40, 10), N * Kc)
        del ws_, f8s
        torch.cuda.empty_cache()
    print('\n=== memory-bound kernels, 54560 x 3072 (bf16 activation), graph-timed medians; '
          'of copy = GB/s / the eager 2 GB copy (%.0f GB/s) ===' % bw)
    for r in rows:
        print('%-58s %9.1f us %7.0f GB/s  %.2f of copy (same-bytes kernel copy %.2f)' % r)
    print('\n=== decode (weight bytes / s against the eager 2 GB copy, %.0f GB/s) ===' % bw)
    for r in drows:
        print('%-44s %dx%dx%d %7.1f us  %.2f of copy  %.2fx bf16' % r)


def run_decode_sweep(R, k, args):
    """W8A8 decode at M = 1, 2, 4, 8, 16 on both WAN decode shapes: gemv_stream against gemv_w8a8_mma (U = 2,
    3, 4), weight bytes / s over the eager 2 GB copy; bf16 torch linear and the weight-only kernels beside."""
    torch = R.torch
    dev = 'cuda'
    B = 128
    a = torch.empty(1 << 30, dtype=torch.uint8, device=dev)
    b = torch.empty_like(a)
    t_copy = H.bench_eager(lambda: b.copy_(a), 5) if hasattr(H, 'bench_eager') else None
    if t_copy is None:
        st, en = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        b.copy_(a)
        ts = []
        for _ in range(5):
            st.record(); b.copy_(a); en.record(); torch.cuda.synchronize(); ts.append(st.elapsed_time(en))
        t_copy = statistics.median(ts)
    bw = 2 * a.numel() / (t_copy * 1e-3) / 1e9
    del a, b
    torch.cuda.empty_cache()
    print('copy %.0f GB/s' % bw)
    for (N, Kc) in [(18432, 3072), (30720, 5120)]:
        nrot = max(2, int(6e8 // (N * Kc)) + 1)
        ws_ = [H.quant_weight(torch.randn(N, Kc, device=dev) * 0.05, B) for _ in range(nrot)]
        f8s = [torch.randint(0, 126, (N, Kc), dtype=torch.uint8, device=dev) for _ in range(nrot)]
        sc = torch.tensor([0.01], device=dev)
        wbytes = N * Kc + ws_[0][1].numel() * 4
        for M in (1, 2, 3, 4, 8, 16):
            x = torch.randn(M, Kc, device=dev, dtype=torch.bfloat16)
            qx, sx = ref_quant_gpu(x, B, 0)
            y = torch.empty(M, N, dtype=torch.bfloat16, device=dev)

            def drow(name, ms, nb):
                print('%-40s M=%2d %dx%d %7.1f us  %.2f of copy'
                      % (name, M, N, Kc, ms * 1e3, nb / (ms * 1e-3) / 1e9 / bw), flush=True)
            drow('W8A8 mode 1 gemv_stream', timed(lambda i: k.gemv(1, x, None, ws_[i % nrot][0], ws_[i % nrot][1],
                                                                  None, y, B), 40, 10), wbytes)
            for U in (2, 3, 4):
                drow('W8A8 mode 1 gemv_w8a8_mma U=%d' % U,
                     timed(lambda i: k.gemv(1, x, None, ws_[i % nrot][0], ws_[i % nrot][1], None, y, B, U=U, tc=True),
                           40, 10), wbytes)
            drow('W8A8 mode 0 (codes given) gemv_w8a8_mma U=3',
                 timed(lambda i: k.gemv(0, qx, sx, ws_[i % nrot][0], ws_[i % nrot][1], None, y, B, U=3, tc=True),
                       40, 10), wbytes)
            if M in (1, 2, 16):
                drow('INT8 weight-only gemv_wo_mma', timed(lambda i: k.gemv(2, x, None, ws_[i % nrot][0],
                     ws_[i % nrot][1], None, y, B, tc=True), 40, 10), wbytes)
                drow('FP8 weight-only gemv_wo_mma', timed(lambda i: k.gemv(3, x, None, f8s[i % nrot], sc, None, y, 16,
                                                                          tc=True), 40, 10), N * Kc)
            if M in (1, 2, 4, 8, 16):
                drow('FP8 W8A8 (input quantized) gemv_wo_mma mode 4',
                     timed(lambda i: k.gemv(4, x, None, f8s[i % nrot], sc, None, y, 16, tc=True), 40, 10), N * Kc)
        del ws_, f8s
        torch.cuda.empty_cache()


def run_wo_grid_sweep(R, k, args):
    """gemv_wo_mma (modes 2, 3, 4) with the library's trimmed grid (equal rounds per CTA) against every resident
    CTA with tiles strided over them, M = 1, 2, 4, 16, both WAN decode shapes; U = 2, 3."""
    torch = R.torch
    dev = 'cuda'
    a = torch.empty(1 << 30, dtype=torch.uint8, device=dev)
    b = torch.empty_like(a)
    st, en = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    b.copy_(a)
    ts = []
    for _ in range(5):
        st.record(); b.copy_(a); en.record(); torch.cuda.synchronize(); ts.append(st.elapsed_time(en))
    bw = 2 * a.numel() / (statistics.median(ts) * 1e-3) / 1e9
    del a, b
    print('copy %.0f GB/s' % bw)
    for (N, Kc) in [(18432, 3072), (30720, 5120)]:
        nrot = max(2, int(6e8 // (N * Kc)) + 1)
        ws_ = [H.quant_weight(torch.randn(N, Kc, device=dev) * 0.05, 128) for _ in range(nrot)]
        f8s = [torch.randint(0, 126, (N, Kc), dtype=torch.uint8, device=dev) for _ in range(nrot)]
        sc = torch.tensor([0.01], device=dev)
        wbytes = N * Kc + ws_[0][1].numel() * 4
        for M in (1, 2, 4, 16):
            x = torch.randn(M, Kc, device=dev, dtype=torch.bfloat16)
            y = torch.empty(M, N, dtype=torch.bfloat16, device=dev)
            for U in (2, 3):
                for full in (False, True):
                    for mode, name in ((2, 'INT8 weight-only'), (3, 'FP8 weight-only'), (4, 'FP8 W8A8')):
                        if mode == 2:
                            fn = lambda i: k.gemv(2, x, None, ws_[i % nrot][0], ws_[i % nrot][1], None, y, 128, U=U,
                                                  tc=True, full_grid=full)
                        else:
                            fn = lambda i: k.gemv(mode, x, None, f8s[i % nrot], sc, None, y, 16, U=U, tc=True,
                                                  full_grid=full)
                        ms = timed(fn, 40, 10)
                        nb = wbytes if mode == 2 else N * Kc
                        print('%-18s U=%d %-8s M=%2d %dx%d %7.1f us  %.2f of copy' % (
                            name, U, 'full' if full else 'trimmed', M, N, Kc, ms * 1e3, nb / (ms * 1e-3) / 1e9 / bw),
                            flush=True)
        del ws_, f8s
        torch.cuda.empty_cache()


def run_final(R, k, args):
    """The kernels this round changed, each beside main's (--baseline), in one run: the quantizer, the
    fused gelu, and the decode GEMVs at both WAN shapes (M = 2)."""
    torch = R.torch
    dev = 'cuda'
    a = torch.empty(int(2e9) // 4, device=dev)
    b = torch.empty_like(a)
    bw = 2 * a.numel() * 4 / (H.bench(lambda i: b.copy_(a), 20)[0] * 1e-3) / 1e9
    del a, b
    out = ['2 GB device copy (read + write, eager): %.0f GB/s; "of copy" = GB/s over it' % bw]
    M, Kc, B = 54560, 3072, 128
    count, sbytes = M * Kc, 4 * M * (Kc // B)
    x = torch.randn(M, Kc, device=dev, dtype=torch.bfloat16)
    q = torch.empty(M, Kc, dtype=torch.int8, device=dev)
    s_ = torch.empty(M, Kc // B, device=dev)
    q2, s2 = torch.empty_like(q), torch.empty_like(s_)
    k.quant_rows(x, B, q=q, s=s_)
    for name, fn, nb in [
            ('quantize bf16->int8 1x128', lambda old: k.quant_rows(x, B, q=q2, s=s2, old=old), 3 * count + sbytes),
            ('gelu int8->int8 1x128', lambda old: k.quant_rows(q, B, src=1, sx=s_, opk=2, q=q2, s=s2, old=old),
             2 * count + 2 * sbytes),
            ('gelu bf16->int8 1x128', lambda old: k.quant_rows(x, B, src=0, opk=2, q=q2, s=s2, old=old),
             3 * count + sbytes)]:
        t_new = timed(lambda i: fn(False))
        t_old = timed(lambda i: fn(True))
        out.append('%-34s main %7.1f us %.2f of copy | now %7.1f us %.2f of copy' % (
            name, t_old * 1e3, nb / (t_old * 1e-3) / 1e9 / bw, t_new * 1e3, nb / (t_new * 1e-3) / 1e9 / bw))
        print(out[-1], flush=True)
    del x, q, s_, q2, s2
    torch.cuda.empty_cache()
    for (M, N, Kc) in [(2, 18432, 3072), (2, 30720, 5120)]:
        nrot = max(2, int(6e8 // (N * Kc)) + 1)
        ws_ = [H.quant_weight(torch.randn(N, Kc, device=dev) * 0.05, B) for _ in range(nrot)]
        f8s = [torch.randint(0, 126, (N, Kc), dtype=torch.uint8, device=dev) for _ in range(nrot)]
        x = torch.randn(M, Kc, device=dev, dtype=torch.bfloat16)
        qx, sx = ref_quant_gpu(x, B, 0)
        y = torch.empty(M, N, dtype=torch.bfloat16, device=dev)
        sc = torch.tensor([0.01], device=dev)
        wb = N * Kc + ws_[0][1].numel() * 4
        wbf = [(torch.randn(N, Kc, device=dev) * 0.02).to(torch.bfloat16)
               for _ in range(max(2, int(6e8 // (2 * N * Kc)) + 1))]
        t_bf = timed(lambda i: torch.nn.functional.linear(x, wbf[i % len(wbf)]), 40, 10)
        del wbf
        W = lambda i: ws_[i % nrot]
        out.append('%dx%dx%d bf16 torch linear %.1f us (%.2f of copy)' % (M, N, Kc, t_bf * 1e3,
                                                                          2 * N * Kc / (t_bf * 1e-3) / 1e9 / bw))
        print(out[-1], flush=True)
        for name, new, old, nb in [
                ('W8A8 mode 1 (float input)', lambda i: k.gemv(1, x, None, W(i)[0], W(i)[1], None, y, B),
                 lambda i: k.gemv(1, x, None, W(i)[0], W(i)[1], None, y, B, old=True), wb),
                ('W8A8 mode 0 (codes)', lambda i: k.gemv(0, qx, sx, W(i)[0], W(i)[1], None, y, B),
                 lambda i: k.gemv(0, qx, sx, W(i)[0], W(i)[1], None, y, B, old=True), wb),
                ('INT8 weight-only (mode 2)', lambda i: k.gemv(2, x, None, W(i)[0], W(i)[1], None, y, B, tc=True),
                 lambda i: k.gemv(2, x, None, W(i)[0], W(i)[1], None, y, B, old=True), wb),
                ('FP8 weight-only (mode 3)', lambda i: k.gemv(3, x, None, f8s[i % nrot], sc, None, y, 16, tc=True),
                 lambda i: k.gemv(3, x, None, f8s[i % nrot], sc, None, y, 16, old=True), N * Kc)]:
            t_new = timed(new, 40, 10)
            t_old = timed(old, 40, 10)
            out.append('%dx%dx%d %-27s main %6.1f us %.2f of copy | now %6.1f us %.2f of copy %.2fx bf16' % (
                M, N, Kc, name, t_old * 1e3, nb / (t_old * 1e-3) / 1e9 / bw, t_new * 1e3,
                nb / (t_new * 1e-3) / 1e9 / bw, t_bf / t_new))
            print(out[-1], flush=True)
        del ws_, f8s
        torch.cuda.empty_cache()
    print('\n=== final: main beside this branch, one run ===\n' + '\n'.join(out))


def run_rows_sweep(R, k, args):
    """`quant_rows` launches (U chunks per lane, threads per block) on bf16 activations of a small M
    (1024, the medium attention layers) and the long M = 54560, beside main's kernel and launch
    (--baseline), with a bit-exactness check of every configuration at the small shapes."""
    torch = R.torch
    dev = 'cuda'
    a = torch.empty(int(2e9) // 4, device=dev)
    b = torch.empty_like(a)
    bw = 2 * a.numel() * 4 / (H.bench(lambda i: b.copy_(a), 20)[0] * 1e-3) / 1e9
    del a, b
    out = ['2 GB device copy (read + write, eager): %.0f GB/s; "of copy" = GB/s over it' % bw]
    B = 128
    configs = [(U, t) for U in (1, 2, 4) for t in (256, 128, 64)]
    for (M, Kc) in [(1024, 3072), (1024, 5120), (4096, 3072), (54560, 3072)]:
        nrot = max(1, int(4e8 // (M * Kc * 3)))
        xs = [(torch.randn(M, Kc, device=dev) * torch.exp(torch.randn(M, 1, device=dev) * 2)).to(torch.bfloat16)
              for _ in range(nrot)]
        q = torch.empty(M, Kc, dtype=torch.int8, device=dev)
        s = torch.empty(M, Kc // B, device=dev)
        nb = 3 * M * Kc + 4 * M * (Kc // B)
        if M <= 4096:
            rq, rs = ref_quant_gpu(xs[0], B, 0)
        t_old = timed(lambda i: k.quant_rows(xs[i % nrot], B, q=q, s=s, old=True), 20, 15) \
            if args.baseline else float('nan')
        line = '%5d x %5d main U=2/256 %6.2f us %.2f of copy |' % (M, Kc, t_old * 1e3, nb / (t_old * 1e-3) / 1e9 / bw)
        for (U, t) in configs:
            if M > 4096 and t != 256:
                continue
            if M <= 4096:
                q.fill_(99)
                s.fill_(float('nan'))
                k.quant_rows(xs[0], B, U=U, threads=t, q=q, s=s)
                torch.cuda.synchronize()
                bad = int((q != rq).sum()) + int((s != rs).sum())
                if bad:
                    out.append('FAIL quant_rows U=%d threads=%d M=%d K=%d: %d mismatches' % (U, t, M, Kc, bad))
            tn = timed(lambda i: k.quant_rows(xs[i % nrot], B, U=U, threads=t, q=q, s=s), 20, 15)
            line += ' U=%d/%d %.2f us %.2f' % (U, t, tn * 1e3, nb / (tn * 1e-3) / 1e9 / bw)
        out.append(line)
        print(line, flush=True)
        del xs, q, s
        torch.cuda.empty_cache()
    print('\n=== quant_rows launches (bf16, 1 x 128), graph-timed medians ===\n' + '\n'.join(out))


def run_profile(R, k, args):
    """One launch of each new kernel (for ncu -k)."""
    torch = R.torch
    dev = 'cuda'
    M, Kc, B = 54560, 3072, 128
    x = torch.randn(M, Kc, device=dev, dtype=torch.bfloat16)
    q, s = k.quant_rows(x, B)
    k.vec16(x, B)
    k.dequant(q, s, 1, B, torch.bfloat16)
    k.fp8_dequant(q.view(torch.uint8), torch.tensor([0.01], device=dev), torch.bfloat16)
    k.quant_rows(q, B, src=1, sx=s, opk=2)
    k.quant_rows(x, B, src=0, opk=2)
    del x
    N, Kc = 30720, 5120
    qw, sw = H.quant_weight(torch.randn(N, Kc, device=dev) * 0.05, B)
    xd = torch.randn(2, Kc, device=dev, dtype=torch.bfloat16)
    y = torch.empty(2, N, dtype=torch.bfloat16, device=dev)
    k.gemv(1, xd, None, qw, sw, None, y, B)
    k.gemv(2, xd, None, qw, sw, None, y, B)
    f8 = torch.randint(0, 126, (N, Kc), dtype=torch.uint8, device=dev)
    k.gemv(3, xd, None, f8, torch.tensor([0.01], device=dev), None, y, 16)
    k.gemv(2, xd, None, qw, sw, None, y, B, tc=True)
    k.gemv(3, xd, None, f8, torch.tensor([0.01], device=dev), None, y, 16, tc=True)
    del qw, sw, f8
    N, Kc = 18432, 3072
    qw, sw = H.quant_weight(torch.randn(N, Kc, device=dev) * 0.05, B)
    f8 = torch.randint(0, 126, (N, Kc), dtype=torch.uint8, device=dev)
    xd = torch.randn(2, Kc, device=dev, dtype=torch.bfloat16)
    y = torch.empty(2, N, dtype=torch.bfloat16, device=dev)
    k.gemv(1, xd, None, qw, sw, None, y, B)
    k.gemv(2, xd, None, qw, sw, None, y, B, tc=True)
    k.gemv(3, xd, None, f8, torch.tensor([0.01], device=dev), None, y, 16, tc=True)
    torch.cuda.synchronize()
    print('profiled launches done')


def compile_all(sources):
    srcs = {n: Source(sources, n) for n in ('quantization', 'decode')}
    variants = []
    for in_dt in ('bf16', 'f16', 'f32'):
        for B in (32, 64, 128, 256):
            ept = ept_for(in_dt, B, 0)
            variants.append(('quantization', quant_rows_defs(0, in_dt, B, ept, rows_u(ept, B))))
    for B in (32, 128, 256):
        variants.append(('quantization', quant_rows_defs(1, 'bf16', B, 16, rows_u(16, B), 2, 0)))
        variants.append(('quantization', quant_rows_defs(0, 'bf16', B, 8, rows_u(8, B), 2, 0)))
    for out in ('bf16', 'f32', 'f16'):
        for U in (2, 4, 8):
            variants.append(('quantization', {'DEQUANT': 1, 'OUT_DT': DTC[out], 'EPT': 16 // (4 if out == 'f32' else 2),
                                              'BR': 1, 'BC': 128, 'SRC': 1, 'TOWARD_ZERO': 0, 'U': U}))
            variants.append(('quantization', {'FP8': 1, 'SRC': 2, 'OUT_DT': DTC[out], 
                                                  'EPT': 16 // (4 if out == 'f32' else 2),
                                              'TOWARD_ZERO': 0, 'U': U}))
    for mode in (0, 1, 2, 3):
        for M in (1, 2, 16):
            for U in (2, 3, 4, 5, 6):
                for B in ((16, 128, 512) if mode < 2 else (64,)):
                    variants.append(('decode', decode_defs(mode, M, B, U, 1, 'bf16', 'bf16', 1)))
            variants.append(('decode', decode_defs(mode, M, 128, 4, 0, 'f32', 'f32', 0)))
    for mode in (2, 3):
        for M in (1, 2, 7, 16):
            for x_dt in ('bf16', 'f16', 'f32'):
                d = decode_defs(mode, M, 128 if mode == 2 else 16, 2 if M > 2 else 3, 1, 'bf16', x_dt, 0)
                d['TC'] = 1
                variants.append(('decode', d))
    for which, d in variants:
        o = compile_variant(srcs[which], d)
        log = o['log'].strip()
        name = {'ROWS': 'quant_rows', 'DEQUANT': 'dequant', 'FP8': 'fp8_dequant'}
        kind = next((v for kk, v in name.items() if kk in d), 'gemv_wo_mma' if 'TC' in d else 'gemv_stream')
        print('%-12s %-70s %s %s' % (kind, ' '.join('%s=%d' % kv for kv in sorted(d.items())), usage(o['cubin']),
                                     ('LOG: ' + log[:300]) if log else ''), flush=True)
    print('%d variants compiled' % len(variants))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--sources', default=None)
    ap.add_argument('--baseline', default=None)
    ap.add_argument('--compile-only', action='store_true')
    ap.add_argument('--check', action='store_true')
    ap.add_argument('--bench', action='store_true')
    ap.add_argument('--profile', action='store_true')
    ap.add_argument('--sections', default=None, help='checks to run, comma-separated (default all)')
    ap.add_argument('--final', action='store_true', help='bench only the kernels this round changed, beside main')
    ap.add_argument('--precompile', type=int, default=0,
                    help='compile the w8mma / decode-sweep variants with N processes')
    ap.add_argument('--wo-grid-sweep', action='store_true', help='gemv_wo_mma: trimmed grid vs every resident CTA')
    ap.add_argument('--decode-sweep', action='store_true', help='W8A8 decode at M = 1...16, stream vs tensor cores')
    ap.add_argument('--rows-sweep', action='store_true', help='quant_rows launches at small and long M, beside main')
    args = ap.parse_args()
    sp = H.find_sources(args.sources)
    if args.compile_only:
        compile_all(sp)
        return
    if args.precompile:
        precompile_w8_mma(sp, args.precompile)
        if not (args.check or args.bench or args.decode_sweep or args.wo_grid_sweep):
            return
    import torch
    torch.zeros(1, device='cuda')
    R = Runner(sp, args.baseline)
    fix_launch(R.drv)
    k = K(R)
    ok = True
    if args.check:
        ok = run_checks(R, k, args)
    if args.bench:
        run_bench(R, k, args)
    if args.final:
        run_final(R, k, args)
    if args.rows_sweep:
        run_rows_sweep(R, k, args)
    if args.decode_sweep:
        run_decode_sweep(R, k, args)
    if args.wo_grid_sweep:
        run_wo_grid_sweep(R, k, args)
    if args.profile:
        run_profile(R, k, args)
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
