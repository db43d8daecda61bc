#!/usr/bin/env python3
"""Outside baselines for `qlinear bench-cuda`, run on the GPU machine with its PyTorch.

At the SPEC section 6 WAN2.2 shapes: torch.nn.functional.linear in bf16, and torch._scaled_mm
in FP8 e4m3 with per-tensor scales, timed (a) alone on pre-quantized operands and (b) with a separate
dynamic quantization pass of the bf16 input (amax, scale = amax / 448, x / scale, cast), which is
what our FP8 path is compared with. Medians of CUDA-event timings; same table format as bench-cuda.

usage: python3 scripts/gpu_baselines.py [--quick] [--repeats R]
"""
import argparse
import statistics

import torch
import torch.nn.functional as F

SHAPES = [
    ("5B", "first layer", 2, 18432, 3072),
    ("5B", "attention long", 54560, 3072, 3072),
    ("5B", "attention medium", 1024, 3072, 3072),
    ("5B", "MLP up long", 54560, 14336, 3072),
    ("5B", "MLP down long", 54560, 3072, 14336),
    ("14B", "first layer", 2, 30720, 5120),
    ("14B", "attention long", 54560, 5120, 5120),
    ("14B", "attention medium", 1024, 5120, 5120),
    ("14B", "MLP up long", 54560, 13824, 5120),
    ("14B", "MLP down long", 54560, 5120, 13824),
]


def measure(fn, repeats, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        times.append((start, stop))
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) for s, e in times)


def quantize_fp8(x):
    amax = x.abs().amax().float()
    scale = torch.where(amax > 0, amax / 448.0, torch.ones_like(amax))
    q = (x.float() / scale).clamp(-448, 448).to(torch.float8_e4m3fn)
    return q, scale


def scaled_mm_with_quantization(x, qw, sw):
    q, s = quantize_fp8(x)
    return torch._scaled_mm(q, qw.t(), scale_a=s, scale_b=sw, out_dtype=torch.bfloat16)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"gpu_baselines on {torch.cuda.get_device_name()} (torch {torch.__version__}); median of {args.repeats} (CUDA events)")
    for model, layer, m, n, k in SHAPES:
        if args.quick and model != "5B":
            continue
        x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        # Decode shapes: rotate among 4 weight copies (beyond L2), 20 back-to-back calls per timing.
        copies, calls = (4, 20) if m <= 16 else (1, 1)
        ws = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02 for _ in range(copies)]
        qws = [quantize_fp8(w) for w in ws]
        qx, sx = quantize_fp8(x)
        flops = 2.0 * m * n * k

        def rotating(body):
            return lambda: [body(i % copies) for i in range(calls)]

        paths = [
            ("torch F.linear bf16", 2, rotating(lambda i: F.linear(x, ws[i]))),
            ("torch _scaled_mm FP8", 1, rotating(lambda i: torch._scaled_mm(
                qx, qws[i][0].t(), scale_a=sx, scale_b=qws[i][1], out_dtype=torch.bfloat16))),
            ("torch _scaled_mm FP8 +quant", 1, rotating(lambda i: scaled_mm_with_quantization(x, *qws[i]))),
        ]
        baseline = None
        for name, weight_bytes, fn in paths:
            try:
                ms = measure(fn, args.repeats) / calls
            except RuntimeError as error:
                print(f"{model} {layer} {m}x{n}x{k}".ljust(40) + f"{name.ljust(28)} n/a: {str(error).splitlines()[0]}")
                continue
            baseline = baseline or ms
            label = f"{model} {layer} {m}x{n}x{k}".ljust(40)
            line = f"{label}{name.ljust(28)}{ms:9.3f} ms {flops / ms / 1e9:7.1f} TFLOP/s {baseline / ms:6.2f}x bf16"
            if m <= 16:
                line += f"  weights {n * k * weight_bytes / ms / 1e6:5.0f} GB/s"
            print(line, flush=True)
        del x, ws, qws, qx
        torch.cuda.empty_cache()
    n_bytes = 54560 * 3072 * 2
    src = torch.empty(n_bytes, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = measure(lambda: dst.copy_(src), args.repeats)
    print(f"{'torch device-to-device copy'.ljust(44)} {ms:8.3f} ms {2 * n_bytes / ms / 1e6:8.0f} GB/s")


if __name__ == "__main__":
    main()
