#!/usr/bin/env python3
"""MiniLM sentence embeddings, ours against PyTorch in one run: interleaved rounds, median ratios.

Each round runs `qlinear bench-embed` (our configurations) and `scripts/bench-minilm-torch.py` (PyTorch fp32
and its dynamic INT8 `quantize_dynamic` of the linears) on the same sentence set, the same threads and
batch size, alternating which side runs first. A round's ratio is our sentences/s over PyTorch's in that
round; the table gives each ratio's median over the rounds with [lowest-highest round], so a slow phase of a
shared machine shows as a spread instead of moving the result. Throughput is text in, embeddings out on both
sides (tokenization included); peak resident memory is each process's own.

    python3 scripts/bench-minilm-peers.py --qlinear .build/release/qlinear --rounds 3 \
        --json benchmarks/minilm-cpu.json --table benchmarks/minilm-cpu.md

Needs the model (`scripts/fetch-minilm .models/all-MiniLM-L6-v2`) and
`pip install torch sentence-transformers`.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "Tests", "Fixtures", "minilm")
SETS = {"bench": os.path.join(FIXTURE, "bench-sentences.jsonl"), "fixture": None}
# Our configuration names (bench-embed --configurations) and the labels bench-embed reports them under.
OURS = {"fp32": "fp32", "w8a8": "int8 W8A8 B128", "weight-only": "int8 weight-only B128", "fp8": "fp8 W8A8"}
PEERS = {"fp32": "PyTorch fp32", "qint8": "PyTorch dynamic INT8"}


def fixture_file(directory):
    """The fixture's sentences as a .jsonl file (bench-embed reads one JSON string per line)."""
    with open(os.path.join(FIXTURE, "sentences.json"), encoding="utf-8") as f:
        sentences = json.load(f)["sentences"]
    path = os.path.join(directory, "fixture.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for sentence in sentences:
            f.write(json.dumps(sentence, ensure_ascii=False) + "\n")
    return path


def run(command):
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"bench-minilm-peers: `{' '.join(command)}` failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done


def ours(args, sentences, directory):
    """bench-embed's results: {configuration: (sentences/s, peak RSS MiB)}."""
    out = os.path.join(directory, "ours.json")
    run([args.qlinear, "bench-embed", "--model", args.model, "--sentences", sentences,
         "--configurations", args.configurations, "--repeats", str(args.repeats),
         "--batch-size", str(args.batch_size), "--json", out])
    with open(out) as f:
        report = json.load(f)
    results = {}
    for name in args.configurations.split(","):
        label = OURS[name]
        entry = next(r for r in report["results"] if r["configuration"] == label)
        results[name] = (entry["sentencesPerSecond"], entry["peakResidentBytes"] / 2**20)
    return results, report


def peers(args, set_name, directory):
    """bench-minilm-torch's results: {variant: (sentences/s, peak RSS MiB)}."""
    out = os.path.join(directory, "torch.json")
    run([sys.executable, os.path.join(ROOT, "scripts", "bench-minilm-torch.py"), "--model", args.model,
         "--threads", str(args.threads), "--runs", str(args.repeats), "--sets", set_name,
         "--batch-size", str(args.batch_size), "--variants", ",".join(PEERS), "--json", out])
    with open(out) as f:
        report = json.load(f)
    results = {r["variant"]: (r["sets"][set_name]["sentences_per_s"], r["peak_rss_mib"]) for r in report["results"]}
    return results, report


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qlinear", default=os.path.join(ROOT, ".build", "release", "qlinear"))
    parser.add_argument("--model", default=os.environ.get("QLINEAR_MINILM_DIR",
                                                          os.path.join(ROOT, ".models", "all-MiniLM-L6-v2")))
    parser.add_argument("--set", choices=sorted(SETS), default="bench",
                        help="bench: the 1,000 generated sentences; fixture: the 51 fixture sentences")
    parser.add_argument("--configurations", default="fp32,w8a8,weight-only,fp8",
                        help="ours, comma list of " + ", ".join(OURS))
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads (ours use every core)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per side and round (median)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (ratios: median of the rounds)")
    parser.add_argument("--json", help="write the rounds and the ratios to this file")
    parser.add_argument("--table", help="write the markdown table to this file")
    args = parser.parse_args()
    unknown = [c for c in args.configurations.split(",") if c not in OURS]
    if unknown:
        sys.exit(f"bench-minilm-peers: unknown configuration(s) {unknown}; choose from {', '.join(OURS)}")
    if not os.path.isfile(os.path.join(args.model, "model.safetensors")):
        sys.exit(f"bench-minilm-peers: no model.safetensors in {args.model}; run scripts/fetch-minilm {args.model}")
    if not os.access(args.qlinear, os.X_OK):
        sys.exit(f"bench-minilm-peers: {args.qlinear} is not an executable; "
                 "build it with `swift build -c release --product qlinear`")

    rounds = []
    with tempfile.TemporaryDirectory() as directory:
        sentences = SETS[args.set] or fixture_file(directory)
        machine = None
        for index in range(max(1, args.rounds)):
            ours_first = index % 2 == 0
            print(f"round {index + 1} of {args.rounds}: " + ("ours first" if ours_first else "PyTorch first"),
                  file=sys.stderr, flush=True)
            if ours_first:
                mine, report = ours(args, sentences, directory)
                theirs, torch_report = peers(args, args.set, directory)
            else:
                theirs, torch_report = peers(args, args.set, directory)
                mine, report = ours(args, sentences, directory)
            machine = report.get("machine")
            rounds.append({"ours": mine, "peers": theirs, "torch": torch_report["results"][0]["torch"]})

    def median(values):
        return statistics.median(values)

    rows = []
    for name in args.configurations.split(","):
        row = {"configuration": OURS[name],
               "sentences_per_s": median([r["ours"][name][0] for r in rounds]),
               "peak_rss_mib": max(r["ours"][name][1] for r in rounds)}
        for peer in PEERS:
            row["vs_" + peer + "_rounds"] = [r["ours"][name][0] / r["peers"][peer][0] for r in rounds]
        rows.append(row)
    peer_rows = [{"configuration": PEERS[p], "sentences_per_s": median([r["peers"][p][0] for r in rounds]),
                  "peak_rss_mib": max(r["peers"][p][1] for r in rounds)} for p in PEERS]

    def ratio(row, peer):
        values = row["vs_" + peer + "_rounds"]
        text = f"{median(values):.2f}x"
        return text + (f" [{min(values):.2f}-{max(values):.2f}]" if len(values) > 1 else "")

    lines = [f"Machine: {machine}; MiniLM-L6-v2, {args.set} set, batch {args.batch_size}, PyTorch {rounds[0]['torch']} "
             f"on {args.threads} threads; {len(rounds)} rounds alternating which side runs first; sentences/s are "
             "medians of the rounds, ratios the median of the rounds' ratios [lowest-highest round].", "",
             "| configuration | sentences/s | peak RSS | vs PyTorch fp32 | vs PyTorch dynamic INT8 |",
             "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| ours {row['configuration']} | {row['sentences_per_s']:.1f} | {row['peak_rss_mib']:.0f} MiB | "
                     f"{ratio(row, 'fp32')} | {ratio(row, 'qint8')} |")
    for row in peer_rows:
        lines.append(f"| {row['configuration']} | {row['sentences_per_s']:.1f} | {row['peak_rss_mib']:.0f} MiB | | |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.table:
        with open(args.table, "w") as f:
            f.write(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "set": args.set, "batch_size": args.batch_size, "threads": args.threads,
                       "rounds": rounds, "rows": rows, "peers": peer_rows}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
