#!/usr/bin/env python3
"""Times ONNX Runtime's float32 MatMul and its dynamic int8 MatMul beside `qlinear bench`, on the same
shapes and thread count, and writes one table with every ratio (issue 11).

    pip install onnxruntime onnx numpy
    swift build -c release --product qlinear
    python3 scripts/bench-cpu-peers.py --json benchmarks/cpu-avx2.json --table benchmarks/cpu-avx2.md

ORT dynamic int8 is what `onnxruntime.quantization.quantize_dynamic` makes of a MatMul:
DynamicQuantizeLinear on the input (uint8, one scale and zero point per tensor), MatMulInteger with the
int8 weight (one scale per tensor), Cast and Mul by the two scales (ORT fuses these into
DynamicQuantizeMatMul / MatMulIntegerToFloat; on AVX2 MLAS runs its u8s8 kernels). Medians of
--repeats runs after one warm-up. At M = 1 every peer rotates among weight copies of more than 1 GB
(as `qlinear bench` does), so the weight streams from memory. `qlinear bench` runs with every core of the
machine (its kernels and OpenBLAS); --threads sets ORT's intra-op threads and should equal the cores.

--rounds R repeats the whole comparison R times, alternating which side runs first (qlinear then ORT,
ORT then qlinear, ...). Every ratio is then the median of the R per-round ratios, printed with the
lowest and highest round ([min-max]); the times are the medians of the rounds' medians. On a machine
whose speed drifts between minutes (a shared VM), a single round's ratio can be off by tens of percent,
so the spread shows how far one round can be trusted.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

LARGE_SHAPES = ["3072x3072", "14336x3072", "3072x14336", "5120x5120"]
DECODE_SHAPES = ["18432x3072"]
OURS = {
    "fp32": "float32 OpenBLAS",
    "w8a8": "INT8 W8A8",
    "wo": "INT8 weight-only",
    "fp8": "FP8 W8A8",
    "fp8wo": "FP8 weight-only",
}


def parse_shape(text):
    n, k = text.lower().split("x")
    return int(n), int(k)


def session(model, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def fp32_model(w):
    """y = x @ W^T with the float weight stored as W^T [K, N]."""
    k, n = w.shape[1], w.shape[0]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "wt"], ["y"])], "fp32",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", n])],
        [numpy_helper.from_array(np.ascontiguousarray(w.T), "wt")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def int8_model(w):
    """quantize_dynamic's MatMul: DynamicQuantizeLinear + MatMulInteger + Cast + Mul (per-tensor scales)."""
    k, n = w.shape[1], w.shape[0]
    w_scale = np.float32(np.abs(w).max() / 127.0)
    wq = np.clip(np.rint(w.T / w_scale), -127, 127).astype(np.int8)
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
        helper.make_node("MatMulInteger", ["xq", "wq", "xz"], ["y32"]),
        helper.make_node("Cast", ["y32"], ["yf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["xs", "ws"], ["scale"]),
        helper.make_node("Mul", ["yf", "scale"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "int8",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", n])],
        [numpy_helper.from_array(wq, "wq"), numpy_helper.from_array(np.array(w_scale, np.float32), "ws")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def time_sessions(sessions, x, repeats):
    """Median seconds of one run, rotating among the sessions (weight copies), after one warm-up."""
    sessions[0].run(None, {"x": x})
    times = []
    for index in range(repeats):
        s = sessions[(index + 1) % len(sessions)]
        start = time.perf_counter()
        s.run(None, {"x": x})
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def time_ort(n, k, m, threads, repeats, rng):
    w = (rng.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)
    x = rng.standard_normal((m, k)).astype(np.float32)
    result = {}
    for name, build, bytes_per in (("ort_fp32", fp32_model, 4), ("ort_int8", int8_model, 1)):
        copies = max(2, (1 << 30) // (n * k * bytes_per) + 1) if m == 1 else 1
        model = build(w)
        sessions = [session(model, threads) for _ in range(copies)]
        result[name] = time_sessions(sessions, x, repeats * (4 if m == 1 else 1))
        del sessions
    return result


def run_qlinear(qlinear, shapes, ms, repeats):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        path = handle.name
    command = [qlinear, "bench", "--shapes", ",".join(shapes), "--m", ",".join(map(str, ms)),
               "--repeats", str(repeats), "--json", path]
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True)
    with open(path) as handle:
        report = json.load(handle)
    os.unlink(path)
    return report


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def ratio(a, b):
    return a / b if a and b else None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qlinear", default=".build/release/qlinear", help="the qlinear executable")
    parser.add_argument("--shapes", default=",".join(LARGE_SHAPES), help="N x K shapes timed at --m")
    parser.add_argument("--m", default="64,1024", help="M values for --shapes")
    parser.add_argument("--decode-shapes", default=",".join(DECODE_SHAPES), help="N x K shapes timed at M = 1")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="ORT intra-op threads (= cores)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds of the whole comparison (ratios: median of the rounds)")
    parser.add_argument("--json", help="write every measurement and ratio here")
    parser.add_argument("--table", help="write the markdown table here")
    args = parser.parse_args()

    ms = [int(v) for v in args.m.split(",") if v]
    shapes = [s for s in args.shapes.split(",") if s]
    decode = [s for s in args.decode_shapes.split(",") if s]
    cases = [(parse_shape(shape), m) for shape_list, m_list in ((shapes, ms), (decode, [1]))
             for shape in shape_list for m in m_list]

    def run_ours():
        reports = []
        if shapes and ms:
            reports.append(run_qlinear(args.qlinear, shapes, ms, args.repeats))
        if decode:
            reports.append(run_qlinear(args.qlinear, decode, [1], args.repeats))
        times = {}
        for report in reports:
            for row in report["linear"]:
                for key, prefix in OURS.items():
                    if row["path"].startswith(prefix):
                        times[(row["n"], row["k"], row["m"], key)] = row["medianSeconds"]
        return reports, times

    def run_peers(rng):
        return {(n, k, m): time_ort(n, k, m, args.threads, args.repeats, rng) for (n, k), m in cases}

    rng = np.random.default_rng(11)
    rounds = []  # per round: (qlinear reports, our times, peer times)
    for index in range(max(1, args.rounds)):
        print(f"round {index + 1} of {args.rounds}: " + ("qlinear first" if index % 2 == 0 else "ORT first"),
              flush=True)
        if index % 2 == 0:
            reports, ours = run_ours()
            peers = run_peers(rng)
        else:
            peers = run_peers(rng)
            reports, ours = run_ours()
        rounds.append((reports, ours, peers))
    reports = rounds[0][0]
    # M = 1 fractions use the read bandwidth measured in the same qlinear runs as the M = 1 times.
    decode_bw = median([r[0][-1]["readBandwidthGBs"] for r in rounds])

    def round_row(ours, peers, n, k, m):
        row = {"n": n, "k": k, "m": m, **peers[(n, k, m)]}
        for key in OURS:
            row[key] = ours.get((n, k, m, key))
        row["w8a8_vs_ort_int8"] = ratio(row["ort_int8"], row["w8a8"])
        for key in ("w8a8", "wo", "fp8", "fp8wo", "ort_int8", "ort_fp32"):
            row[key + "_vs_fp32"] = ratio(row["fp32"], row[key])
        return row

    rows = []
    for (n, k), m in cases:
        per_round = [round_row(ours, peers, n, k, m) for _, ours, peers in rounds]
        row = {"n": n, "k": k, "m": m}
        for key in per_round[0]:
            if key in ("n", "k", "m"):
                continue
            values = [r[key] for r in per_round if r[key] is not None]
            row[key] = median(values) if values else None
            if key.endswith("_vs_fp32") or key.endswith("_vs_ort_int8"):
                row[key + "_rounds"] = values
        if m == 1:
            for key, bytes_per in (("w8a8", 1), ("wo", 1), ("fp8", 1), ("fp8wo", 1), ("ort_int8", 1), ("fp32", 4)):
                if row[key]:
                    row[key + "_fraction_of_read_bw"] = n * k * bytes_per / row[key] / 1e9 / decode_bw
        rows.append(row)
        print(json.dumps(row), flush=True)

    def ms_text(v):
        return f"{v * 1e3:.2f}" if v else "-"

    def x_text(v):
        return f"{v:.2f}x" if v else "-"

    def r_text(row, key):
        """The median ratio, with [lowest-highest round] when there were several rounds."""
        values = row.get(key + "_rounds") or []
        if len(values) < 2:
            return x_text(row[key])
        return f"{row[key]:.2f}x [{min(values):.2f}-{max(values):.2f}]"

    machine = reports[0]["machine"]
    lines = [
        f"Machine: {machine}; {reports[0]['openBLAS']}; our kernels: {reports[0]['cpuKernelPath']} path, "
        f"{reports[0]['threads']} threads; ORT {ort.__version__}, {args.threads} intra-op threads; "
        f"read bandwidth (measured with the M = 1 run) {decode_bw:.1f} GB/s. Times in ms (medians); "
        "ratios = other time / path time (> 1: the path is faster)"
        + (f"; {len(rounds)} rounds, alternating which side runs first: median ratio [lowest-highest round]."
           if len(rounds) > 1 else "."),
        "",
        "| N x K | M | OpenBLAS fp32 | ORT fp32 | ORT int8 | INT8 W8A8 | INT8 WO | FP8 W8A8 | FP8 WO "
        "| W8A8 vs ORT int8 | W8A8 vs fp32 | WO vs fp32 | FP8 W8A8 vs fp32 | FP8 WO vs fp32 | ORT int8 vs fp32 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} x {r['k']} | {r['m']} | {ms_text(r['fp32'])} | {ms_text(r['ort_fp32'])} | "
            f"{ms_text(r['ort_int8'])} | {ms_text(r['w8a8'])} | {ms_text(r['wo'])} | {ms_text(r['fp8'])} | "
            f"{ms_text(r['fp8wo'])} | {r_text(r, 'w8a8_vs_ort_int8')} | {r_text(r, 'w8a8_vs_fp32')} | "
            f"{r_text(r, 'wo_vs_fp32')} | {r_text(r, 'fp8_vs_fp32')} | {r_text(r, 'fp8wo_vs_fp32')} | "
            f"{r_text(r, 'ort_int8_vs_fp32')} |")
    decode_rows = [r for r in rows if r["m"] == 1]
    if decode_rows:
        lines += ["", "M = 1, weight streamed as a fraction of the read bandwidth:", "",
                  "| N x K | INT8 W8A8 | INT8 WO | FP8 W8A8 | FP8 WO | ORT int8 | OpenBLAS sgemv |",
                  "|---|---|---|---|---|---|---|"]
        for r in decode_rows:
            cells = [r.get(key + "_fraction_of_read_bw") for key in ("w8a8", "wo", "fp8", "fp8wo", "ort_int8", "fp32")]
            lines.append(f"| {r['n']} x {r['k']} | " + " | ".join(f"{c:.0%}" if c else "-" for c in cells) + " |")
    table = "\n".join(lines) + "\n"
    print("\n" + table)
    if args.table:
        with open(args.table, "w") as handle:
            handle.write(table)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": machine, "ort": ort.__version__, "threads": args.threads, "rounds": len(rounds),
                       "readBandwidthGBs": decode_bw, "rows": rows, "qlinear": reports}, handle, indent=1)


if __name__ == "__main__":
    sys.exit(main())
