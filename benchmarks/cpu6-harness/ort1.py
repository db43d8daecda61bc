#!/usr/bin/env python3
"""ORT dynamic int8 and fp32 MatMul on one intra-op thread, timed in thread CPU time (best, median),
the same models as scripts/bench-cpu-peers.py; full N (compare with 2 x the harness's N/2 figure)."""
import sys, time, importlib.util
import numpy as np
spec = importlib.util.spec_from_file_location("peers", "scripts/bench-cpu-peers.py")
peers = importlib.util.module_from_spec(spec); spec.loader.exec_module(peers)
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 7
kinds = sys.argv[3].split(",") if len(sys.argv) > 3 else ["int8"]
for shape in sys.argv[1].split(","):
    m, n, k = map(int, shape.split("x"))
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)
    x = rng.standard_normal((m, k)).astype(np.float32)
    for kind in kinds:
        s = peers.session((peers.int8_model if kind == "int8" else peers.fp32_model)(w), 1)
        s.run(None, {"x": x})
        ts = []
        for _ in range(reps):
            t0 = time.thread_time(); s.run(None, {"x": x}); ts.append(time.thread_time() - t0)
        ts.sort()
        print(f"ORT {kind} M={m} N={n} K={k} one thread: best {ts[0]*1e3:.3f} ms, median {ts[len(ts)//2]*1e3:.3f} ms; per half N best {ts[0]*5e2:.3f} ms", flush=True)
