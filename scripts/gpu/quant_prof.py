#!/usr/bin/env python3
"""One quantizer launch at (M, K) per argument pair, for ncu."""
import sys, os, torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gemm_harness as H
torch.zeros(1, device='cuda')
K_ = H.Kernels(H.find_sources(None), want_hopper=False)
a = [int(v) for v in sys.argv[1:]]
for M, K in zip(a[0::2], a[1::2]):
    x = torch.randn(M, K, device='cuda', dtype=torch.bfloat16)
    K_.quantize(x, 128)
    torch.cuda.synchronize()
    del x
print('ok')
