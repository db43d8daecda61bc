#!/usr/bin/env python3
"""Correctness and speed harness for the block-wise INT8 kernels in
Sources/Backends/CUDA/KernelSources (bw8_portable.cu, bw8_hopper.cu and their headers bw8_common.cuh,
prelude.cuh).

It reads the same files the Swift backend embeds as resources, compiles them with NVRTC through ctypes
(the .cuh files passed as named headers, with the backend's options) and launches through the driver
API (cuModuleLoadData / cuLaunchKernel / cuTensorMapEncodeTiled), exactly like the Swift backend.
PyTorch provides memory, streams, events and the references.

  python3 gemm_harness.py --compile-only      # no GPU needed: compile + ptxas report if ptxas is found
  python3 gemm_harness.py --fill-cache        # no GPU needed: NVRTC cubins for sm_90 / sm_90a into cubin_cache/
  python3 gemm_harness.py --check             # correctness (quantizer, mma, gemv, wgmma)
  python3 gemm_harness.py --bench             # WAN shapes vs torch bf16 linear and torch._scaled_mm
  python3 gemm_harness.py --tiles             # 128 x 128 against mixed 128 x 64 tiles (M = 1024 ... 54560)
Options: --sources DIR (the KernelSources folder), --skip-wgmma, --only-wgmma, --quick

On the lent GPU: copy this file, the KernelSources folder and cubin_cache/ into /work/main/.gpu/gemm, carry
".gpu/gemm", and run e.g.
  cd .gpu/gemm && python3 gemm_harness.py --check --skip-wgmma && python3 gemm_harness.py --check --only-wgmma \
    && python3 gemm_harness.py --bench
(the wgmma checks run in their own process so that a hang cannot take the portable results with it; wrap each
in `timeout`). gemm_prof.py / quant_prof.py launch one kernel each for ncu.
"""
import argparse, ctypes, glob, os, re, sys, time, statistics

HERE = os.path.dirname(os.path.abspath(__file__))


def find_sources(path):
    for p in [path, os.path.join(HERE, 'KernelSources'),
              os.path.join(HERE, '..', '..', 'Sources', 'Backends', 'CUDA', 'KernelSources')]:
        if p and os.path.exists(os.path.join(p, 'bw8_portable.cu')):
            return p
    raise SystemExit('KernelSources (bw8_portable.cu) not found; pass --sources DIR')


class Program:
    """A .cu file of KernelSources with every .cuh header beside it, as the backend passes them to NVRTC."""

    def __init__(self, folder, name):
        self.name = name + '.cu'
        self.text = open(os.path.join(folder, self.name)).read()
        self.headers = [(h, open(os.path.join(folder, h)).read())
                        for h in sorted(os.listdir(folder)) if h.endswith('.cuh')]

    def key(self):
        return self.text + ''.join('\0' + n + '\n' + t for n, t in self.headers)


def programs(folder):
    return Program(folder, 'bw8_portable'), Program(folder, 'bw8_hopper')


# The backend's NVRTC options (NVRTC.compile); the GEMM programs allow multiply-add contraction.
BACKEND_OPTIONS = ['-std=c++17', '--device-as-default-execution-space']


# ------------------------------------------------------------------------------------------ NVRTC
def load_nvrtc():
    cands = []
    try:
        import nvidia  # pip nvidia-cuda-nvrtc (torch dependency)
        for d in nvidia.__path__:
            cands += glob.glob(os.path.join(d, '*', 'lib', 'libnvrtc.so*'))
            cands += glob.glob(os.path.join(d, 'cuda_nvrtc', 'lib', 'libnvrtc.so*'))
    except Exception:
        pass
    cands += glob.glob('/usr/local/cuda/lib64/libnvrtc.so*') + glob.glob('/usr/local/cuda*/lib64/libnvrtc.so*')
    cands += glob.glob('/root/.local/lib/python3*/site-packages/nvidia/*/lib/libnvrtc.so*')
    cands = [c for c in cands if 'builtins' not in c and 'alt' not in os.path.basename(c)]
    for c in cands:
        try:
            d = os.path.dirname(c)
            # make the builtins library findable
            for b in glob.glob(os.path.join(d, 'libnvrtc-builtins.so*')):
                try:
                    ctypes.CDLL(b)
                except OSError:
                    pass
            return ctypes.CDLL(c), c
        except OSError:
            continue
    raise SystemExit('libnvrtc not found: %s' % cands)


def nvrtc_compile(src, opts, want_cubin=True):
    lib, path = load_nvrtc()
    prog = ctypes.c_void_p()
    n_headers = len(src.headers)
    texts = (ctypes.c_char_p * max(n_headers, 1))(*[t.encode() for _, t in src.headers])
    names = (ctypes.c_char_p * max(n_headers, 1))(*[n.encode() for n, _ in src.headers])
    r = lib.nvrtcCreateProgram(ctypes.byref(prog), src.text.encode(), src.name.encode(), n_headers, texts, names)
    assert r == 0, 'nvrtcCreateProgram %d' % r
    arr = (ctypes.c_char_p * len(opts))(*[o.encode() for o in opts])
    t0 = time.time()
    r = lib.nvrtcCompileProgram(prog, len(opts), arr)
    n = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
    log = ctypes.create_string_buffer(n.value)
    lib.nvrtcGetProgramLog(prog, log)
    if r != 0:
        raise SystemExit('NVRTC compile failed (%d):\n%s' % (r, log.value.decode()))
    out = {'log': log.value.decode(), 'secs': time.time() - t0, 'lib': path}
    lib.nvrtcGetPTXSize(prog, ctypes.byref(n))
    b = ctypes.create_string_buffer(n.value)
    lib.nvrtcGetPTX(prog, b)
    out['ptx'] = b.raw.rstrip(b'\0')
    if want_cubin:
        n = ctypes.c_size_t()
        if lib.nvrtcGetCUBINSize(prog, ctypes.byref(n)) == 0 and n.value:
            b = ctypes.create_string_buffer(n.value)
            lib.nvrtcGetCUBIN(prog, b)
            out['cubin'] = b.raw
    return out


def cached_cubin(src, opts):
    """Compile with NVRTC, or load a cubin compiled earlier by this same function (cache keyed by source+options;
    `--compile-only --arch-cache sm_90` fills it on a machine without a GPU)."""
    import hashlib
    key = hashlib.sha1((src.key() + '|' + ' '.join(opts)).encode()).hexdigest()[:16]
    d = os.path.join(HERE, 'cubin_cache')
    f = os.path.join(d, key + '.cubin')
    if os.path.exists(f):
        return {'cubin': open(f, 'rb').read(), 'secs': 0.0, 'lib': 'cache ' + f, 'log': ''}
    o = nvrtc_compile(src, opts)
    if 'cubin' in o:
        os.makedirs(d, exist_ok=True)
        open(f, 'wb').write(o['cubin'])
    return o


def ptxas_report(ptx, arch='sm_90a'):
    import shutil, subprocess, tempfile
    ptxas = shutil.which('ptxas') or next(iter(glob.glob('/usr/local/cuda/bin/ptxas')), None)
    if not ptxas:
        try:
            import nvidia
            for d in nvidia.__path__:
                g = glob.glob(os.path.join(d, '*', 'bin', 'ptxas'))
                if g:
                    ptxas = g[0]
                    break
        except Exception:
            pass
    if not ptxas:
        return '(no ptxas)'
    with tempfile.TemporaryDirectory() as td:
        p = os.path.join(td, 'k.ptx')
        open(p, 'wb').write(ptx)
        r = subprocess.run([ptxas, '-arch=' + arch, '-v', p, '-o', os.path.join(td, 'k.cubin')],
                           capture_output=True, text=True)
        lines = [l for l in (r.stdout + r.stderr).splitlines()
                 if 'Compiling' in l or 'registers' in l or 'spill' in l or 'error' in l or 'arning' in l]
        return '\n'.join(lines)


# ------------------------------------------------------------------------------------------ driver
class Driver:
    def __init__(self):
        self.cu = ctypes.CDLL('libcuda.so.1')
        cu = self.cu
        cu.cuLaunchKernel.argtypes = [ctypes.c_void_p] + [ctypes.c_uint] * 7 + [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
        cu.cuModuleLoadData.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p]
        cu.cuModuleGetFunction.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p, ctypes.c_char_p]
        cu.cuFuncSetAttribute.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        cu.cuTensorMapEncodeTiled.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p,
                                              ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_uint64),
                                              ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint32),
                                              ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        cu.cuGetErrorString.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]

    def ck(self, r, what):
        if r != 0:
            s = ctypes.c_char_p()
            self.cu.cuGetErrorString(r, ctypes.byref(s))
            raise RuntimeError('%s failed: %d %s' % (what, r, s.value))

    def load(self, cubin):
        mod = ctypes.c_void_p()
        self.ck(self.cu.cuModuleLoadData(ctypes.byref(mod), cubin), 'cuModuleLoadData')
        return mod

    def func(self, mod, name, smem=0):
        f = ctypes.c_void_p()
        self.ck(self.cu.cuModuleGetFunction(ctypes.byref(f), mod, name.encode()), 'cuModuleGetFunction ' + name)
        if smem > 48 * 1024:
            self.ck(self.cu.cuFuncSetAttribute(f, 8, smem), 'cuFuncSetAttribute')
        return f

    def launch(self, f, grid, block, smem, stream, args):
        keep = []
        ptrs = []
        for a in args:
            if isinstance(a, tuple) and a[0] == 'ptr':
                v = ctypes.c_uint64(a[1])
            elif isinstance(a, ctypes.Array) or isinstance(a, ctypes.Structure):
                v = a
            else:
                v = ctypes.c_int32(int(a))
            keep.append(v)
            ptrs.append(ctypes.cast(ctypes.pointer(v), ctypes.c_void_p))
        params = (ctypes.c_void_p * len(ptrs))(*ptrs)
        g = list(grid) + [1] * (3 - len(grid))
        b = list(block) + [1] * (3 - len(block))
        self.ck(self.cu.cuLaunchKernel(f, g[0], g[1], g[2], b[0], b[1], b[2], smem, ctypes.c_void_p(stream), params, None),
                'cuLaunchKernel')

    def tmap_2d_u8(self, ptr, rows, cols, box_rows=128, box_cols=128):
        tm = (ctypes.c_uint64 * 16)()
        dims = (ctypes.c_uint64 * 2)(cols, rows)
        strides = (ctypes.c_uint64 * 1)(cols)
        box = (ctypes.c_uint32 * 2)(box_cols, box_rows)
        es = (ctypes.c_uint32 * 2)(1, 1)
        self.ck(self.cu.cuTensorMapEncodeTiled(ctypes.byref(tm), 0, 2, ctypes.c_void_p(ptr), dims, strides, box, es,
                                               0, 3, 3, 0), 'cuTensorMapEncodeTiled')
        return tm


# ------------------------------------------------------------------------------------------ kernels
DT = {'f32': 0, 'f16': 1, 'bf16': 2}
WG_SMEM = 197728
C3_SMEM = 1024 + 5 * (192 * 128 + 128 * 128) + 2 * 5 * 8
MMA_SMEM = 131072


class Kernels:
    def __init__(self, sources, want_hopper=True, probes=False):
        import torch
        self.torch = torch
        portable, hopper = programs(sources)
        cc = torch.cuda.get_device_capability()
        self.sms = torch.cuda.get_device_properties(0).multi_processor_count
        self.drv = Driver()
        arch = 'sm_%d%d' % cc
        t0 = time.time()
        p = cached_cubin(portable, ['--gpu-architecture=' + arch] + BACKEND_OPTIONS)
        print('NVRTC portable (%s): %.1fs lib=%s %s' % (arch, p['secs'], p['lib'], p['log'].strip()[:500]))
        mp = self.drv.load(p['cubin'])
        self.f_qvec = self.drv.func(mp, 'bw8_quantize_rows_vec16')
        self.f_qgen = self.drv.func(mp, 'bw8_quantize_rows_generic')
        self.f_mma = self.drv.func(mp, 'bw8_gemm_mma', MMA_SMEM)
        self.f_gemv = self.drv.func(mp, 'bw8_gemv')
        self.hopper = want_hopper and cc == (9, 0)
        if self.hopper:
            h = cached_cubin(hopper, ['--gpu-architecture=sm_90a'] + BACKEND_OPTIONS)
            print('NVRTC hopper (sm_90a): %.1fs %s' % (h['secs'], h['log'].strip()[:500]))
            mh = self.drv.load(h['cubin'])
            self.f_wg = {128: self.drv.func(mh, 'bw8_gemm_wgmma_b128', WG_SMEM),
                         64: self.drv.func(mh, 'bw8_gemm_wgmma_b64', WG_SMEM),
                         32: self.drv.func(mh, 'bw8_gemm_wgmma_b32', WG_SMEM),
                         'pp': self.drv.func(mh, 'bw8_gemm_wgmma_pp_b128', WG_SMEM),
                         'mixed': self.drv.func(mh, 'bw8_gemm_wgmma_pp_b128_mixed', WG_SMEM)}
            # bw8_hopper_c3.cu: 3 consumer warpgroups, 192 x 128 tiles (its own program); with probes, the
            # timing probe that promotes only the last K block is compiled in too (harness only).
            if os.path.exists(os.path.join(sources, 'bw8_hopper_c3.cu')):
                c3 = Program(sources, 'bw8_hopper_c3')
                if probes:
                    c3.text = '#define C3_PROBES\n' + c3.text
                h3 = cached_cubin(c3, ['--gpu-architecture=sm_90a'] + BACKEND_OPTIONS)
                print('NVRTC hopper c3 (sm_90a): %.1fs %s' % (h3['secs'], h3['log'].strip()[:500]))
                m3 = self.drv.load(h3['cubin'])
                self.f_wg['c3'] = self.drv.func(m3, 'bw8_gemm_wgmma_c3_b128', C3_SMEM)
                self.f_wg['c3mc'] = self.drv.func(m3, 'bw8_gemm_wgmma_c3mc_b128', C3_SMEM)
                if probes:
                    self.f_wg['c3np'] = self.drv.func(m3, 'bw8_gemm_wgmma_c3_b128_nopromote', C3_SMEM)
                    self.f_wg['c3mcnp'] = self.drv.func(m3, 'bw8_gemm_wgmma_c3mc_b128_nopromote', C3_SMEM)
            if probes:
                # BW8_I2F_MAGIC: the promotion's int32 -> float32 by the exact 1.5 * 2^23 add instead of I2FP
                hm = Program(sources, 'bw8_hopper')
                hm.text = '#define BW8_I2F_MAGIC\n' + hm.text
                o = cached_cubin(hm, ['--gpu-architecture=sm_90a'] + BACKEND_OPTIONS)
                mm = self.drv.load(o['cubin'])
                self.f_wg['ppm'] = self.drv.func(mm, 'bw8_gemm_wgmma_pp_b128', WG_SMEM)
                self.f_wg['mixedm'] = self.drv.func(mm, 'bw8_gemm_wgmma_pp_b128_mixed', WG_SMEM)
                if os.path.exists(os.path.join(sources, 'bw8_hopper_c3.cu')):
                    cm = Program(sources, 'bw8_hopper_c3')
                    cm.text = '#define C3_PROBES\n#define BW8_I2F_MAGIC\n' + cm.text
                    o = cached_cubin(cm, ['--gpu-architecture=sm_90a'] + BACKEND_OPTIONS)
                    m3m = self.drv.load(o['cubin'])
                    self.f_wg['c3m'] = self.drv.func(m3m, 'bw8_gemm_wgmma_c3_b128', C3_SMEM)
                    self.f_wg['c3mcm'] = self.drv.func(m3m, 'bw8_gemm_wgmma_c3mc_b128', C3_SMEM)

    def stream(self):
        return self.torch.cuda.current_stream().cuda_stream

    # activation quantizer
    def quantize(self, x, B, round_mode=0, q=None, s=None, force_generic=False):
        torch = self.torch
        M, K = x.shape
        KB = (K + B - 1) // B
        if q is None:
            q = torch.empty((M, K), dtype=torch.int8, device=x.device)
        if s is None:
            s = torch.empty((M, KB), dtype=torch.float32, device=x.device)
        dt = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}[x.dtype]
        args = [('ptr', x.data_ptr()), ('ptr', q.data_ptr()), ('ptr', s.data_ptr()), M, K, B, dt, round_mode]
        if not force_generic and B in (32, 64, 128, 256) and K % 16 == 0:
            total = M * KB * (B // 16)
            grid = max(1, min((total + 255) // 256, 16 * self.sms))
            self.drv.launch(self.f_qvec, (grid,), (256,), 0, self.stream(), args)
        else:
            self.drv.launch(self.f_qgen, ((M * KB + 7) // 8,), (256,), 0, self.stream(), args)
        return q, s

    def _common(self, qx, sx, qw, sw, bias, y):
        M, K = qx.shape
        N = qw.shape[0]
        bdt = -1 if bias is None else {self.torch.float32: 0, self.torch.float16: 1, self.torch.bfloat16: 2}[bias.dtype]
        odt = {self.torch.float32: 0, self.torch.float16: 1, self.torch.bfloat16: 2}[y.dtype]
        return M, N, K, bdt, odt, (bias.data_ptr() if bias is not None else 0)

    def gemm_mma(self, qx, sx, qw, sw, bias, y, B, Bn):
        M, N, K, bdt, odt, bp = self._common(qx, sx, qw, sw, bias, y)
        self.drv.launch(self.f_mma, ((N + 127) // 128, (M + 127) // 128), (256,), MMA_SMEM, self.stream(),
                        [('ptr', qx.data_ptr()), ('ptr', sx.data_ptr()), ('ptr', qw.data_ptr()), ('ptr', sw.data_ptr()),
                         ('ptr', bp), ('ptr', y.data_ptr()), M, N, K, B, Bn, bdt, odt])

    def gemv(self, qx, sx, qw, sw, bias, y, B, Bn):
        M, N, K, bdt, odt, bp = self._common(qx, sx, qw, sw, bias, y)
        assert M <= 16
        self.drv.launch(self.f_gemv, ((N + 7) // 8,), (256,), 0, self.stream(),
                        [('ptr', qx.data_ptr()), ('ptr', sx.data_ptr()), ('ptr', qw.data_ptr()), ('ptr', sw.data_ptr()),
                         ('ptr', bp), ('ptr', y.data_ptr()), M, N, K, B, Bn, bdt, odt])

    def wgmma_maps(self, qx, qw, narrow=False):
        """A's and W's tensor maps (and W's with 64-row boxes, for the mixed kernel)."""
        M, K = qx.shape
        N = qw.shape[0]
        maps = [self.drv.tmap_2d_u8(qx.data_ptr(), M, K), self.drv.tmap_2d_u8(qw.data_ptr(), N, K)]
        if narrow:
            maps.append(self.drv.tmap_2d_u8(qw.data_ptr(), N, K, box_rows=64))
        return maps

    def c3_maps(self, qx, qw, mc=False):
        """The c3 kernels' tensor maps: A with 192-row boxes (96 for the cluster kernel, each CTA loading
        half), W with 128-row boxes."""
        M, K = qx.shape
        N = qw.shape[0]
        return [self.drv.tmap_2d_u8(qx.data_ptr(), M, K, box_rows=96 if mc else 192),
                self.drv.tmap_2d_u8(qw.data_ptr(), N, K)]

    def gemm_wgmma(self, qx, sx, qw, sw, bias, y, B, maps=None, variant='pp', wide=None):
        """variant: 'pp' (128 x 128 tiles), 'mixed' (`wide` 128-column tiles, then 128 x 64 ones; B == 128)
        or 'v1'."""
        M, N, K, bdt, odt, bp = self._common(qx, sx, qw, sw, bias, y)
        if variant.startswith('c3'):
            assert B == 128
            mc = variant.startswith('c3mc')
            maps = maps if maps is not None else self.c3_maps(qx, qw, mc)
            if mc:  # clusters of 2 CTAs, one pair of column tiles each
                grid = 2 * min(((M + 191) // 192) * (((N + 127) // 128 + 1) // 2), self.sms // 2)
            else:
                grid = min(((M + 191) // 192) * ((N + 127) // 128), self.sms)
            self.drv.launch(self.f_wg[variant], (grid,), (512,), C3_SMEM, self.stream(),
                            list(maps) + [('ptr', sx.data_ptr()), ('ptr', sw.data_ptr()), ('ptr', bp),
                                          ('ptr', y.data_ptr()), M, N, K, B, bdt, odt])
            return
        if B == 128 and variant in ('pp', 'mixed', 'ppm', 'mixedm'):
            f = self.f_wg[variant]
        else:
            f = self.f_wg[128 if B % 128 == 0 else B]
        mixed = variant in ('mixed', 'mixedm')
        maps = maps if maps is not None else self.wgmma_maps(qx, qw, mixed)
        wide = (N + 127) // 128 if not mixed else wide
        rest = N - 128 * wide
        tiles = ((M + 127) // 128) * (wide + ((rest + 63) // 64 if rest > 0 else 0))
        extra = [wide] if mixed else []
        self.drv.launch(f, (min(tiles, self.sms),), (384,), WG_SMEM, self.stream(),
                        list(maps) + [('ptr', sx.data_ptr()), ('ptr', sw.data_ptr()), ('ptr', bp),
                                      ('ptr', y.data_ptr()), M, N, K, B, bdt, odt] + extra)


# ------------------------------------------------------------------------------------------ references
def ref_quant(x, B, round_mode):
    """Exact reference on the CPU (IEEE float32 division)."""
    import torch
    x = x.float().cpu()
    M, K = x.shape
    KB = (K + B - 1) // B
    xp = torch.zeros((M, KB * B), dtype=torch.float32)
    xp[:, :K] = x
    xb = xp.view(M, KB, B)
    amax = xb.abs().amax(dim=2)
    scale = amax / 127.0
    sc = scale.unsqueeze(2)
    safe = torch.where(sc == 0, torch.ones_like(sc), sc)
    t = xb / safe
    t = torch.round(t) if round_mode == 0 else torch.trunc(t)
    t = t.clamp(-127, 127)
    t = torch.where(sc == 0, torch.zeros_like(t), t)
    return t.view(M, KB * B)[:, :K].to(torch.int8), scale


def quant_weight(w, B):
    """B x B block weight quantization (nearest even), on the GPU; used to make test/bench weights."""
    import torch
    N, K = w.shape
    NB, KB = (N + B - 1) // B, (K + B - 1) // B
    wp = torch.zeros((NB * B, KB * B), dtype=torch.float32, device=w.device)
    wp[:N, :K] = w.float()
    wb = wp.view(NB, B, KB, B)
    amax = wb.abs().amax(dim=(1, 3))
    scale = amax / 127.0
    sc = scale[:, None, :, None]
    safe = torch.where(sc == 0, torch.ones_like(sc), sc)
    q = torch.round(wb / safe).clamp(-127, 127)
    return q.view(NB * B, KB * B)[:N, :K].to(torch.int8).contiguous(), scale.contiguous()


def ref_gemm(qx, sx, qw, sw, bias, B, Bn, rows=None):
    import torch
    M, K = qx.shape
    N = qw.shape[0]
    if rows is not None:
        qx, sx = qx[rows], sx[rows]
    xd = qx.double() * sx.double().repeat_interleave(B, dim=1)[:, :K]
    swe = sw.double().repeat_interleave(Bn, dim=0)[:N].repeat_interleave(B, dim=1)[:, :K]
    wd = qw.double() * swe
    y = xd @ wd.t()
    if bias is not None:
        y = y + bias.double()[None, :]
    return y


def relerr(out, ref):
    o = out.double()
    if not bool(o.isfinite().all()):
        return float('inf')
    return float((o - ref).norm() / ref.norm().clamp_min(1e-30))


TOL = {'f32': 2e-6, 'f16': 1e-3, 'bf16': 6e-3}


NARROW_TILE_COST = 0.62


def wide_column_tiles(M, N, sms, c=NARROW_TILE_COST):
    """BlockwiseINT8GEMM.wgmmaWideColumnTiles (the Swift launch rule), for the harness."""
    rt, allw = (M + 127) // 128, (N + 127) // 128
    if rt * allw >= 4 * sms:
        return allw

    def time(w):  # CTA 0 finishes last: (1 - c) ceil(Tw / G) + c ceil(T / G)
        rest = N - 128 * w
        tw = rt * w
        t = tw + rt * ((rest + 63) // 64 if rest > 0 else 0)
        g = min(sms, t)
        return (1 - c) * ((tw + g - 1) // g) + c * ((t + g - 1) // g)
    best = (allw, time(allw))
    for k in range((rt * allw + sms - 1) // sms):
        w = min(allw - 1, k * sms // rt)
        tk = time(w)
        if tk < best[1]:
            best = (w, tk)
    return best[0]


def run_checks(K_, args):
    torch = K_.torch
    dev = 'cuda'
    fails = []
    results = []

    def rec(name, ok, detail):
        results.append((name, ok, detail))
        print(('PASS ' if ok else 'FAIL ') + name + '  ' + detail, flush=True)
        if not ok:
            fails.append(name)

    # --- quantizer: bit exact
    qcases = [(7, 40, 32), (7, 48, 32), (33, 200, 64), (33, 208, 64), (17, 1008, 256), (64, 1040, 128), (5, 3072, 128), (17, 1000, 256), (3, 100, 48), (9, 77, 128),
              (4096, 3072, 128), (2, 13824, 128), (16384, 4096, 32)]
    for (M, K, B) in qcases:
        for dt in (torch.bfloat16, torch.float16, torch.float32):
            for rm in (0, 1):
                if M * K > 2e7 and dt != torch.float32:
                    continue
                x = torch.randn(M, K, device=dev) * torch.exp(torch.randn(M, 1, device=dev) * 2)
                if M * K > 2e7:  # many distinct block scales: stress the exact-division path
                    x = x * torch.exp(torch.randn(M, K // B, 1, device=dev).repeat_interleave(B, 2).view(M, K) * 8)
                if K > B:
                    x[0, :B] = 0  # an all-zero block
                x = x.to(dt)
                q = torch.full((M, K), 99, dtype=torch.int8, device=dev)
                s = torch.full((M, (K + B - 1) // B), float('nan'), device=dev)
                for gen in ((False, True) if M * K < 10 ** 6 else (False,)):
                    q.fill_(99); s.fill_(float('nan'))
                    K_.quantize(x, B, rm, q, s, force_generic=gen)
                    torch.cuda.synchronize()
                    rq, rs = ref_quant(x, B, rm)
                    dq = int((q.cpu() != rq).sum())
                    ds = int((s.cpu() != rs).sum()) if not bool(torch.isnan(s).any()) else -1
                    path = 'generic' if gen or not (B in (32, 64, 128, 256) and K % 16 == 0) else 'vec16'
                    rec('quant %s M=%d K=%d B=%d %s rm=%d' % (path, M, K, B, str(dt)[6:], rm), dq == 0 and ds == 0,
                        'q mismatches %d, scale mismatches %d' % (dq, ds))

    # --- GEMMs
    def make(M, N, K, B, Bn):
        KB = (K + B - 1) // B
        qx = torch.randint(-127, 128, (M, K), dtype=torch.int8, device=dev)
        qw = torch.randint(-127, 128, (N, K), dtype=torch.int8, device=dev)
        sx = torch.rand(M, KB, device=dev) * 0.02 + 0.001
        sw = torch.rand((N + Bn - 1) // Bn, KB, device=dev) * 0.02 + 0.001
        return qx, sx, qw, sw

    gcases = [(1, 7, 32, 128), (200, 300, 256, 128), (1, 7, 32, 32), (37, 200, 336, 32), (37, 200, 336, 64), (300, 389, 1040, 128), (129, 130, 4112, 256),
              (256, 512, 1024, 64), (1000, 1000, 2000, 32), (777, 1290, 3072, 128), (2048, 3072, 3072, 128),
              (130, 260, 640, 128), (512, 384, 5120, 256)]
    outs = [('bf16', torch.bfloat16), ('f32', torch.float32), ('f16', torch.float16)]
    kinds = []
    if not args.only_wgmma:
        kinds.append('mma')
    if K_.hopper and not args.skip_wgmma:
        kinds.append('wgmma')
    for kind in kinds:
        for ci, (M, N, K, B) in enumerate(gcases):
            Bn = B
            qx, sx, qw, sw = make(M, N, K, B, Bn)
            ref0 = ref_gemm(qx, sx, qw, sw, None, B, Bn)
            for oi, (on, odt) in enumerate(outs):
                if oi > 0 and ci % 2 == 1 and on == 'f16':
                    continue
                bias = None
                if oi == 1:
                    bias = torch.randn(N, device=dev)
                elif oi == 2:
                    bias = torch.randn(N, device=dev).to(torch.bfloat16)
                ref = ref0 if bias is None else ref0 + bias.double()[None, :]
                y = torch.full((M, N), float('nan'), dtype=odt, device=dev)
                if kind == 'mma':
                    K_.gemm_mma(qx, sx, qw, sw, bias, y, B, Bn)
                else:
                    K_.gemm_wgmma(qx, sx, qw, sw, bias, y, B, variant=['pp', 'pp', 'v1'][oi])
                torch.cuda.synchronize()
                e = relerr(y, ref)
                rec('%s M=%d N=%d K=%d B=%d out=%s bias=%s' % (kind + (['', '', '-v1'][oi] if kind == 'wgmma' and B == 128 else ''), M, N, K, B, on, None if bias is None else str(bias.dtype)[6:]),
                    e < TOL[on], 'rel err %.2e' % e)
                if kind == 'wgmma' and B == 128:
                    # 128 x 64 tiles after `wide` 128 x 128 ones: the pp kernel's operations per element, its bits
                    if oi == 2:
                        y = torch.full((M, N), float('nan'), dtype=odt, device=dev)
                        K_.gemm_wgmma(qx, sx, qw, sw, bias, y, B, variant='pp')
                    for v in [v for v in ('c3', 'c3mc', 'c3m', 'c3mcm', 'ppm') if v in K_.f_wg]:
                        y2 = torch.full((M, N), float('nan'), dtype=odt, device=dev)
                        K_.gemm_wgmma(qx, sx, qw, sw, bias, y2, B, variant=v)
                        torch.cuda.synchronize()
                        e2 = relerr(y2, ref)
                        same = bool(torch.equal(y, y2))
                        rec('wgmma-%s M=%d N=%d K=%d out=%s bias=%s' % (
                            v, M, N, K, on, None if bias is None else str(bias.dtype)[6:]),
                            e2 < TOL[on] and same, 'rel err %.2e, bit-identical to pp: %s' % (e2, same))
                    for wide in sorted({0, ((N + 127) // 128) // 2, wide_column_tiles(M, N, K_.sms)}):
                        y2 = torch.full((M, N), float('nan'), dtype=odt, device=dev)
                        K_.gemm_wgmma(qx, sx, qw, sw, bias, y2, B, variant='mixed', wide=wide)
                        torch.cuda.synchronize()
                        e2 = relerr(y2, ref)
                        same = bool(torch.equal(y, y2))
                        rec('wgmma-mixed wide=%d M=%d N=%d K=%d out=%s bias=%s' % (
                            wide, M, N, K, on, None if bias is None else str(bias.dtype)[6:]),
                            e2 < TOL[on] and same, 'rel err %.2e, bit-identical to pp: %s' % (e2, same))
        if kind == 'mma':
            # Bn != B (only the mma kernel supports it)
            M, N, K, B, Bn = 200, 300, 1024, 128, 64
            qx, sx, qw, sw = make(M, N, K, B, Bn)
            y = torch.full((M, N), float('nan'), dtype=torch.float32, device=dev)
            K_.gemm_mma(qx, sx, qw, sw, None, y, B, Bn)
            torch.cuda.synchronize()
            e = relerr(y, ref_gemm(qx, sx, qw, sw, None, B, Bn))
            rec('mma Bn=64 B=128 M=%d N=%d K=%d out=f32' % (M, N, K), e < TOL['f32'], 'rel err %.2e' % e)
        # run twice on the same inputs: must be bit identical (race detector)
        M, N, K, B = 1000, 1000, 2000, 128
        qx, sx, qw, sw = make(M, N, K, B, B)
        ys = []
        for _ in range(3):
            y = torch.full((M, N), float('nan'), dtype=torch.float32, device=dev)
            (K_.gemm_mma if kind == 'mma' else (lambda *a: K_.gemm_wgmma(*a[:-1])))(qx, sx, qw, sw, None, y, B, B)
            torch.cuda.synchronize()
            ys.append(y)
        rec('%s repeatability' % kind, bool(torch.equal(ys[0], ys[1]) and torch.equal(ys[1], ys[2])), '')

    if not args.only_wgmma:
        for (M, N, K, B) in [(1, 7, 32, 32), (2, 300, 1040, 128), (5, 257, 4096, 64), (16, 1000, 2000, 16 * 5),
                             (2, 18432, 3072, 128), (3, 100, 512, 256)]:
            if B % 16:
                continue
            qx, sx, qw, sw = make(M, N, K, B, B)
            for (on, odt) in outs:
                bias = torch.randn(N, device=dev).to(torch.bfloat16) if on == 'bf16' else None
                y = torch.full((M, N), float('nan'), dtype=odt, device=dev)
                K_.gemv(qx, sx, qw, sw, bias, y, B, B)
                torch.cuda.synchronize()
                e = relerr(y, ref_gemm(qx, sx, qw, sw, bias, B, B))
                rec('gemv M=%d N=%d K=%d B=%d out=%s' % (M, N, K, B, on), e < TOL[on], 'rel err %.2e' % e)

    # end-to-end with quantized bf16 input, wgmma vs mma agree
    print('\nchecks: %d passed, %d failed' % (len(results) - len(fails), len(fails)))
    for f in fails:
        print('  FAILED:', f)
    return len(fails) == 0


# ------------------------------------------------------------------------------------------ bench
def bench(fn, reps, warmup=3):
    import torch
    for i in range(warmup):
        fn(i)
    torch.cuda.synchronize()
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for i in range(reps):
        ev[i][0].record()
        fn(i)
        ev[i][1].record()
    torch.cuda.synchronize()
    ts = [a.elapsed_time(b) for a, b in ev]
    return statistics.median(ts), min(ts), max(ts)


def bench_graph(fn, inner, reps=10):
    """Capture `inner` calls fn(0..inner-1) in a CUDA graph and time its replays (no host launch gaps);
    returns the median time of one call in ms. Falls back to bench() if capture fails."""
    import torch
    for i in range(min(inner, 3)):
        fn(i)
    torch.cuda.synchronize()
    try:
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for i in range(inner):
                fn(i)
        g.replay()
        torch.cuda.synchronize()
    except Exception as e:
        print('graph capture failed (%s); timing eagerly' % str(e)[:200])
        torch.cuda.synchronize()
        return bench(fn, reps * inner)
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for r in range(reps):
        ev[r][0].record()
        g.replay()
        ev[r][1].record()
    torch.cuda.synchronize()
    ts = [a.elapsed_time(b) / inner for a, b in ev]
    del g
    return statistics.median(ts), min(ts), max(ts)


WAN = [(54560, 3072, 3072), (54560, 14336, 3072), (54560, 3072, 14336), (54560, 5120, 5120), (54560, 13824, 5120),
       (54560, 5120, 13824), (1024, 3072, 3072), (1024, 5120, 5120)]
DECODE = [(2, 18432, 3072), (2, 30720, 5120)]


def run_bench(K_, args):
    torch = K_.torch
    F = torch.nn.functional
    dev = 'cuda'
    B = 128
    use_wg = K_.hopper and not args.skip_wgmma
    rows = []
    shapes = WAN[:1] + WAN[6:7] if args.quick else WAN
    for (M, N, K) in shapes:
        nrot = 1 if M * K * 2 > 2e8 else 4
        xs = [torch.randn(M, K, device=dev, dtype=torch.bfloat16) for _ in range(nrot)]
        ws = [(torch.randn(N, K, device=dev) * 0.02).to(torch.bfloat16) for _ in range(nrot)]
        flop = 2.0 * M * N * K
        inner = 2 if M > 4096 else 20
        reps = 8 if M > 4096 else 10
        t_bf16 = bench_graph(lambda i: F.linear(xs[i % nrot], ws[i % nrot]), inner, reps)[0]
        # fp8 context: torch._scaled_mm on pre-quantized operands (per-tensor scale 1), no quant pass timed
        t_fp8 = float('nan')
        try:
            x8 = [x.to(torch.float8_e4m3fn) for x in xs]
            w8 = [w.to(torch.float8_e4m3fn) for w in ws]
            one = torch.ones((), device=dev)
            t_fp8 = bench_graph(lambda i: torch._scaled_mm(x8[i % nrot], w8[i % nrot].t(), scale_a=one, scale_b=one,
                                                     out_dtype=torch.bfloat16), inner, reps)[0]
            del x8, w8
        except Exception as e:
            print('scaled_mm failed:', e)
        qws = [quant_weight(w, B) for w in ws]
        qxs = [K_.quantize(x, B) for x in xs]
        y = torch.empty(M, N, device=dev, dtype=torch.bfloat16)
        t_q = bench_graph(lambda i: K_.quantize(xs[i % nrot], B, 0, qxs[i % nrot][0], qxs[i % nrot][1]), inner, reps)[0]
        t_mma = float('nan') if use_wg else bench_graph(lambda i: K_.gemm_mma(qxs[i % nrot][0], qxs[i % nrot][1], qws[i % nrot][0], qws[i % nrot][1], None, y, B, B), inner, 3)[0]
        t_wg = float('nan')
        err = float('nan')
        if use_wg:
            maps = [K_.wgmma_maps(qxs[i][0], qws[i][0]) for i in range(nrot)]
            t_wg = bench_graph(lambda i: K_.gemm_wgmma(qxs[i % nrot][0], qxs[i % nrot][1], qws[i % nrot][0], qws[i % nrot][1], None, y, B,
                                                 maps[i % nrot]), inner, reps)[0]
            t_mma = bench_graph(lambda i: K_.gemm_wgmma(qxs[i % nrot][0], qxs[i % nrot][1], qws[i % nrot][0], qws[i % nrot][1], None, y, B,
                                                 maps[i % nrot], 'v1'), inner, reps)[0]

            def full(i):
                j = i % nrot
                K_.quantize(xs[j], B, 0, qxs[j][0], qxs[j][1])
                K_.gemm_wgmma(qxs[j][0], qxs[j][1], qws[j][0], qws[j][1], None, y, B, maps[j])
            t_full = bench_graph(full, inner, reps)[0]
        else:
            def full(i):
                j = i % nrot
                K_.quantize(xs[j], B, 0, qxs[j][0], qxs[j][1])
                K_.gemm_mma(qxs[j][0], qxs[j][1], qws[j][0], qws[j][1], None, y, B, B)
            t_full = bench_graph(full, inner, 3)[0]
        # correctness of the timed output on sampled rows (last call used set (reps-1) % nrot; recompute)
        j = 0
        K_.quantize(xs[j], B, 0, qxs[j][0], qxs[j][1])
        (K_.gemm_wgmma(qxs[j][0], qxs[j][1], qws[j][0], qws[j][1], None, y, B) if use_wg else
         K_.gemm_mma(qxs[j][0], qxs[j][1], qws[j][0], qws[j][1], None, y, B, B))
        torch.cuda.synchronize()
        ridx = torch.randperm(M, device=dev)[:256].sort().values
        ridx[-1] = M - 1
        ref = ref_gemm(qxs[j][0], qxs[j][1], qws[j][0], qws[j][1], None, B, B, rows=ridx)
        err = relerr(y[ridx], ref)
        tf = lambda t: flop / (t * 1e-3) / 1e12
        rows.append((M, N, K, tf(t_bf16), tf(t_fp8), tf(t_mma), tf(t_wg), tf(t_full), t_q * 1e3, tf(t_full) / tf(t_bf16), err))
        print('M=%d N=%d K=%d: bf16 %.3f ms  fp8 %.3f  quant %.3f  mma %.3f  wgmma %.3f  full %.3f ms  err %.1e' %
              (M, N, K, t_bf16, t_fp8, t_q, t_mma, t_wg, t_full, err), flush=True)
        del xs, ws, qws, qxs, y
        torch.cuda.empty_cache()

    drows = []
    for (M, N, K) in DECODE:
        nrot = max(2, int(6e8 // (N * K)) + 1)
        qws = [quant_weight(torch.randn(N, K, device=dev), B) for _ in range(nrot)]
        wbf = [(torch.randn(N, K, device=dev) * 0.02).to(torch.bfloat16) for _ in range(max(2, int(6e8 // (2 * N * K)) + 1))]
        x = torch.randn(M, K, device=dev, dtype=torch.bfloat16)
        qx, sx = K_.quantize(x, B)
        y = torch.empty(M, N, device=dev, dtype=torch.bfloat16)
        t_bf = bench_graph(lambda i: F.linear(x, wbf[i % len(wbf)]), 40)[0]
        t_gv = bench_graph(lambda i: K_.gemv(qx, sx, qws[i % nrot][0], qws[i % nrot][1], None, y, B, B), 40)[0]

        def full(i):
            K_.quantize(x, B, 0, qx, sx)
            K_.gemv(qx, sx, qws[i % nrot][0], qws[i % nrot][1], None, y, B, B)
        t_full = bench_graph(full, 40)[0]
        K_.gemv(qx, sx, qws[0][0], qws[0][1], None, y, B, B)
        torch.cuda.synchronize()
        err = relerr(y, ref_gemm(qx, sx, qws[0][0], qws[0][1], None, B, B))
        wbytes = N * K + qws[0][1].numel() * 4
        drows.append((M, N, K, t_bf * 1e3, 2 * N * K / (t_bf * 1e-3) / 1e9, t_gv * 1e3, wbytes / (t_gv * 1e-3) / 1e9,
                      t_full * 1e3, err))
        del qws, wbf
        torch.cuda.empty_cache()

    # device-to-device copy bandwidth for reference
    a = torch.empty(int(2e9) // 4, device=dev)
    b = torch.empty_like(a)
    tc = bench_graph(lambda i: b.copy_(a), 5)[0]
    bw = 2 * a.numel() * 4 / (tc * 1e-3) / 1e9
    del a, b

    print('\n=== INT8 W8A8 (B=128, bf16 in/out) vs torch on %s; TFLOP/s (TOP/s), medians of CUDA events ===' % torch.cuda.get_device_name())
    print('%6s %6s %6s | %7s %7s | %7s %7s | %9s %8s | %6s | %8s' % ('M', 'N', 'K', 'bf16', 'fp8*', 'wg-v1', 'wgmma', 'w8a8+q', 'quant us', 'ratio', 'rel.err'))
    for r in rows:
        print('%6d %6d %6d | %7.1f %7.1f | %7.1f %7.1f | %9.1f %8.1f | %6.2fx | %8.1e' % r)
    print('wg-v1 = first wgmma kernel (wait_group 0 per stage; mma.sync numbers when wgmma is skipped); wgmma = pipelined bw8_gemm_wgmma_pp_b128 (used in w8a8+q)')
    print('fp8* = torch._scaled_mm on pre-quantized e4m3 (no quant pass); w8a8+q = our activation quantization + GEMM; ratio = w8a8+q / bf16')
    print('\n=== decode (M=2) ===  device copy bandwidth %.0f GB/s (read+write)' % bw)
    print('%4s %6s %6s | %9s %8s | %9s %8s %6s | %10s | %8s' % ('M', 'N', 'K', 'bf16 us', 'GB/s', 'gemv us', 'GB/s', '%bw', 'gemv+q us', 'rel.err'))
    for r in drows:
        print('%4d %6d %6d | %9.1f %8.0f | %9.1f %8.0f %5.0f%% | %10.1f | %8.1e' % (r[:7] + (100 * r[6] / bw,) + r[7:]))


TILE_SHAPES = [(1024, 3072, 3072), (1024, 5120, 5120), (1024, 13824, 5120), (1024, 5120, 13824), (2048, 3072, 3072),
               (4096, 5120, 5120), (54560, 3072, 3072), (54560, 5120, 5120)]


def run_tiles(K_, args):
    """128 x 128 tiles (pp) against the mixed kernel at the launch rule's `wide` and all-narrow (wide = 0), with
    and without the activation quantizer, beside torch bf16, one process, CUDA-graph medians; every mix must give
    pp's bits."""
    torch = K_.torch
    F = torch.nn.functional
    dev = 'cuda'
    B = 128
    out = []
    for (M, N, K) in TILE_SHAPES:
        nrot = 1 if M * K * 2 > 2e8 else 4
        xs = [torch.randn(M, K, device=dev, dtype=torch.bfloat16) for _ in range(nrot)]
        ws = [(torch.randn(N, K, device=dev) * 0.02).to(torch.bfloat16) for _ in range(nrot)]
        inner, reps = (2, 8) if M > 4096 else (20, 15)
        t_bf = bench_graph(lambda i: F.linear(xs[i % nrot], ws[i % nrot]), inner, reps)[0]
        qws = [quant_weight(w, B) for w in ws]
        qxs = [K_.quantize(x, B) for x in xs]
        y = torch.empty(M, N, device=dev, dtype=torch.bfloat16)
        rule = wide_column_tiles(M, N, K_.sms)
        res, same = {}, True
        y1 = torch.empty_like(y)
        K_.gemm_wgmma(qxs[0][0], qxs[0][1], qws[0][0], qws[0][1], None, y1, B, variant='pp')
        for name, v, wide in (('pp', 'pp', None), ('rule', 'mixed', rule), ('narrow', 'mixed', 0)):
            maps = [K_.wgmma_maps(qxs[i][0], qws[i][0], v == 'mixed') for i in range(nrot)]
            def G(i, v=v, maps=maps, wide=wide):
                j = i % nrot
                K_.gemm_wgmma(qxs[j][0], qxs[j][1], qws[j][0], qws[j][1], None, y, B, maps[j], v, wide)
            res[name] = bench_graph(G, inner, reps)[0]
            res[name + '+q'] = bench_graph(lambda i, G=G: (K_.quantize(xs[i % nrot], B, 0, qxs[i % nrot][0],
                                                                        qxs[i % nrot][1]), G(i)), inner, reps)[0]
            G(0)
            torch.cuda.synchronize()
            same = same and bool(torch.equal(y, y1))
        tf = lambda t: 2.0 * M * N * K / (t * 1e-3) / 1e12
        out.append('%5d %5d %5d | bf16 %6.1f us %4.0f | pp %6.1f us %4.0f +q %.2fx | rule wide=%3d %6.1f us %4.0f '
                   '+q %.2fx | narrow %6.1f us %4.0f +q %.2fx | same bits %s' % (
                       M, N, K, t_bf * 1e3, tf(t_bf), res['pp'] * 1e3, tf(res['pp']), t_bf / res['pp+q'], rule,
                       res['rule'] * 1e3, tf(res['rule']), t_bf / res['rule+q'], res['narrow'] * 1e3,
                       tf(res['narrow']), t_bf / res['narrow+q'], same))
        print(out[-1], flush=True)
        del xs, ws, qws, qxs, y, y1
        torch.cuda.empty_cache()
    print('\n=== INT8 W8A8 tiles (B = 128, bf16 in/out; us and TFLOP/s or TOP/s; +q = with the activation quantizer '
          '(vec16), as bf16 time / it) ===\n' + '\n'.join(out))


VARIANT_SHAPES = WAN + [(2048, 3072, 3072), (4096, 5120, 5120)]


def run_variants(K_, args):
    """The launch's choice today (pp, or the mixed tiles at small M) against the other B = 128 kernels
    (c3: three consumer warpgroups, 192 x 128 tiles; c3np: its no-promotion timing probe) beside torch bf16,
    one process, CUDA-graph medians, each also with the activation quantizer (+q, as bf16 time / it);
    every timed output of c3 compared bit for bit with pp's."""
    torch = K_.torch
    F = torch.nn.functional
    dev = 'cuda'
    B = 128
    names = [v for v in ('c3', 'c3m', 'c3mc', 'c3mcm', 'c3np', 'c3mcnp') if v in K_.f_wg]
    out = []
    for (M, N, K) in (VARIANT_SHAPES[:1] + VARIANT_SHAPES[6:7] if args.quick else VARIANT_SHAPES):
        nrot = 1 if M * K * 2 > 2e8 else 4
        xs = [torch.randn(M, K, device=dev, dtype=torch.bfloat16) for _ in range(nrot)]
        ws = [(torch.randn(N, K, device=dev) * 0.02).to(torch.bfloat16) for _ in range(nrot)]
        inner, reps = (2, 8) if M > 4096 else (20, 15)
        t_bf = bench_graph(lambda i: F.linear(xs[i % nrot], ws[i % nrot]), inner, reps)[0]
        qws = [quant_weight(w, B) for w in ws]
        qxs = [K_.quantize(x, B) for x in xs]
        t_q = bench_graph(lambda i: K_.quantize(xs[i % nrot], B, 0, qxs[i % nrot][0], qxs[i % nrot][1]), inner, reps)[0]
        y = torch.empty(M, N, device=dev, dtype=torch.bfloat16)
        y_pp = torch.empty_like(y)
        K_.gemm_wgmma(qxs[0][0], qxs[0][1], qws[0][0], qws[0][1], None, y_pp, B, variant='pp')
        rule = wide_column_tiles(M, N, K_.sms)
        base = ['pp', 'ppm'] if rule == (N + 127) // 128 else ['mixed', 'mixedm']
        base = [b for b in base if b in K_.f_wg]
        res, same = {}, {}
        for name in base + names:
            if name in ('mixed', 'mixedm'):
                maps = [K_.wgmma_maps(qxs[i][0], qws[i][0], True) for i in range(nrot)]
            elif name in ('pp', 'ppm'):
                maps = [K_.wgmma_maps(qxs[i][0], qws[i][0]) for i in range(nrot)]
            else:
                maps = [K_.c3_maps(qxs[i][0], qws[i][0], name.startswith('c3mc')) for i in range(nrot)]

            def G(i, v=name, maps=maps):
                j = i % nrot
                K_.gemm_wgmma(qxs[j][0], qxs[j][1], qws[j][0], qws[j][1], None, y, B, maps[j], v, rule)
            res[name] = bench_graph(G, inner, reps)[0]
            res[name + '+q'] = bench_graph(lambda i, G=G: (K_.quantize(xs[i % nrot], B, 0, qxs[i % nrot][0],
                                                                        qxs[i % nrot][1]), G(i)), inner, reps)[0]
            y.fill_(float('nan'))
            G(0)
            torch.cuda.synchronize()
            same[name] = bool(torch.equal(y, y_pp))
        tf = lambda t: 2.0 * M * N * K / (t * 1e-3) / 1e12
        line = '%5d %5d %5d | bf16 %7.1f us %4.0f | quant %6.1f us' % (M, N, K, t_bf * 1e3, tf(t_bf), t_q * 1e3)
        for name in base + names:
            line += ' | %s %7.1f us %4.0f +q %.2fx%s' % (name, res[name] * 1e3, tf(res[name]), t_bf / res[name + '+q'],
                                                        '' if name.endswith('np') else (' bits=pp' if same[name] else ' BITS DIFFER'))
        out.append(line)
        print(line, flush=True)
        del xs, ws, qws, qxs, y, y_pp
        torch.cuda.empty_cache()
    print('\n=== INT8 W8A8 B = 128 kernels (bf16 in/out; us and TFLOP/s or TOP/s; +q = with the activation quantizer, '
          'as bf16 time / it; c3np = timing probe, wrong numbers) on %s ===\n' % torch.cuda.get_device_name()
          + '\n'.join(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--sources', default=None)
    ap.add_argument('--compile-only', action='store_true')
    ap.add_argument('--check', action='store_true')
    ap.add_argument('--bench', action='store_true')
    ap.add_argument('--skip-wgmma', action='store_true')
    ap.add_argument('--only-wgmma', action='store_true')
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--fill-cache', action='store_true')
    ap.add_argument('--tiles', action='store_true', help='128 x 128 against mixed 128 x 64 tiles, M = 1024 to 54560')
    ap.add_argument('--variants', action='store_true', help='pp / mixed against c3 (192 x 128 tiles) and probes')
    ap.add_argument('--probes', action='store_true', help='also compile the timing probes (harness only)')
    args = ap.parse_args()
    sp = find_sources(args.sources)
    portable, hopper = programs(sp)
    if args.fill_cache:
        for src, arch in [(portable, 'sm_90'), (hopper, 'sm_90a')]:
            o = cached_cubin(src, ['--gpu-architecture=' + arch] + BACKEND_OPTIONS)
            print(arch, 'cubin', len(o['cubin']), o['lib'])
        return
    if args.compile_only:
        for name, src, arch, pa in [('portable', portable, 'sm_80', 'sm_90a'), ('hopper', hopper, 'compute_90a', 'sm_90a')]:
            o = nvrtc_compile(src, ['--gpu-architecture=' + arch] + BACKEND_OPTIONS, want_cubin=False)
            print('%s: NVRTC ok in %.1fs, PTX %d bytes %s' % (name, o['secs'], len(o['ptx']), o['log'].strip()[:1000]))
            print(ptxas_report(o['ptx'], pa))
        return
    import torch
    torch.cuda.init()
    torch.zeros(1, device='cuda')
    K_ = Kernels(sp, want_hopper=not args.skip_wgmma, probes=args.probes)
    ok = True
    if args.check:
        ok = run_checks(K_, args)
    if args.bench:
        run_bench(K_, args)
    if args.tiles:
        run_tiles(K_, args)
    if args.variants:
        run_variants(K_, args)
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
