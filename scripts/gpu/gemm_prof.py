#!/usr/bin/env python3
"""One launch each of our B = 128 wgmma GEMMs (PROF_VARIANTS, default pp,c3) and torch bf16 linear at one
shape (argv M N K, default 16384 3072 3072), for ncu."""
import sys, os, torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gemm_harness as H
M, N, K = [int(v) for v in (sys.argv[1:4] if len(sys.argv) > 3 else (16384, 3072, 3072))]
torch.zeros(1, device='cuda')
K_ = H.Kernels(H.find_sources(os.environ.get('PROF_SOURCES')), probes=any(v.endswith(('m', 'np')) for v in os.environ.get('PROF_VARIANTS', 'pp,c3').split(',')))
B = 128
x = torch.randn(M, K, device='cuda', dtype=torch.bfloat16)
w = (torch.randn(N, K, device='cuda') * 0.02).to(torch.bfloat16)
qw, sw = H.quant_weight(w, B)
qx, sx = K_.quantize(x, B)
y = torch.empty(M, N, device='cuda', dtype=torch.bfloat16)
for v in os.environ.get('PROF_VARIANTS', 'pp,c3').split(','):
    K_.gemm_wgmma(qx, sx, qw, sw, None, y, B, variant=v)
torch.nn.functional.linear(x, w)
torch.cuda.synchronize()
print('ok')
