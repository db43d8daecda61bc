#!/usr/bin/env python3
"""PyTorch peer benchmark for the MiniLM embedder: sentences/s and peak memory, end to end (tokenize, encode,
mean-pool, normalize: text in, embeddings out), over the committed fixture sentences and bench sentences.

CPU (this machine; fp32 and PyTorch's dynamic INT8 `quantize_dynamic` of the linears, qint8):
    python3 scripts/bench-minilm-torch.py --threads 2 --runs 5 --json bench-torch-cpu.json

GPU (the lent H200 host; bf16 or fp16 at batch 256, from a half-precision copy of the model that fits the
device carry limit, written by scripts/minilm-half-copy.py):
    python3 scripts/bench-minilm-torch.py --device cuda --dtype bf16 --batch-size 256 \
        --model .models/all-MiniLM-L6-v2-fp16 --json bench-torch-gpu.json

Each (variant, sentence set) runs in a fresh subprocess, so its peak resident memory (ru_maxrss) is its own;
the memory after importing torch and loading nothing is reported too (`baseline_rss_mib`). Each set is
encoded once to warm up, then `--runs` times; the median and the spread of those runs are reported. Uses sentence-transformers when it
is installed, else transformers' BertModel (+ the model's tokenizer.json) with the same mean pooling and L2
normalization. Offline: the model is read from --model, nothing is downloaded.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "Tests", "Fixtures", "minilm")
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def load_sets():
    with open(os.path.join(FIXTURE, "sentences.json"), encoding="utf-8") as f:
        fixture = json.load(f)["sentences"]
    with open(os.path.join(FIXTURE, "bench-sentences.jsonl"), encoding="utf-8") as f:
        bench = [json.loads(line) for line in f if line.strip()]
    return {"fixture": fixture, "bench": bench}


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class PlainEncoder:
    """transformers' BertModel + tokenizers, mean pooling over the mask, L2 normalization."""

    def __init__(self, model_dir, device, dtype, max_length):
        import torch
        from tokenizers import Tokenizer
        from transformers import BertModel
        self.torch = torch
        self.device = device
        self.tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_length)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        try:
            model = BertModel.from_pretrained(model_dir, dtype=dtype)
        except TypeError:  # transformers < 4.56 names it torch_dtype
            model = BertModel.from_pretrained(model_dir, torch_dtype=dtype)
        self.model = model.to(device).eval()

    def modules(self):
        return self.model

    def encode(self, sentences, batch_size):
        torch = self.torch
        order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
        out = [None] * len(sentences)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                encodings = self.tokenizer.encode_batch([sentences[i].strip() for i in chunk])
                ids = torch.tensor([e.ids for e in encodings], device=self.device)
                mask = torch.tensor([e.attention_mask for e in encodings], device=self.device)
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled.float(), dim=-1).cpu()
                for row, index in enumerate(chunk):
                    out[index] = pooled[row]
        return torch.stack(out).numpy()


class SentenceTransformersEncoder:
    def __init__(self, model_dir, device, dtype):
        import torch
        from sentence_transformers import SentenceTransformer
        self.model = SentenceTransformer(model_dir, device=device).to(dtype).eval()
        self.torch = torch

    def modules(self):
        return self.model

    def encode(self, sentences, batch_size):
        with self.torch.inference_mode():
            return self.model.encode(sentences, batch_size=batch_size, convert_to_numpy=True,
                                     show_progress_bar=False)


def run_variant(args):
    """In this (fresh) process: load, optionally quantize, time every set; print one JSON line."""
    import torch
    torch.manual_seed(0)
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(1)
    baseline = rss_mib()
    dtype = getattr(torch, DTYPES[args.dtype])
    with open(os.path.join(args.model, "sentence_bert_config.json")) as f:
        max_length = json.load(f)["max_seq_length"]
    try:
        if args.stack == "plain":
            raise ImportError("asked for the plain stack")
        import sentence_transformers
        encoder = SentenceTransformersEncoder(args.model, args.device, dtype)
        stack = f"sentence-transformers {sentence_transformers.__version__}"
    except ImportError as error:
        if args.stack == "sentence-transformers":
            raise
        import transformers
        encoder = PlainEncoder(args.model, args.device, dtype, max_length)
        stack = f"transformers {transformers.__version__} BertModel + tokenizers ({error})"
    if args.variant == "qint8":
        from torch.ao.quantization import quantize_dynamic
        quantize_dynamic(encoder.modules(), {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    loaded = rss_mib()
    sets = load_sets()
    results = {}
    for name in args.sets.split(","):
        sentences = sets[name]
        encoder.encode(sentences, args.batch_size)  # warm-up
        if args.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        rates = []
        for _ in range(args.runs):
            start = time.perf_counter()
            embeddings = encoder.encode(sentences, args.batch_size)
            if args.device == "cuda":
                torch.cuda.synchronize()
            rates.append(len(sentences) / (time.perf_counter() - start))
        assert embeddings.shape == (len(sentences), 384)
        entry = {"sentences": len(sentences), "sentences_per_s": statistics.median(rates),
                 "min_sentences_per_s": min(rates), "max_sentences_per_s": max(rates), "runs": len(rates)}
        if args.device == "cuda":
            entry["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
        results[name] = entry
    print(json.dumps({"variant": args.variant, "dtype": args.dtype, "device": args.device, "stack": stack,
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "batch_size": args.batch_size, "baseline_rss_mib": baseline, "loaded_rss_mib": loaded,
                      "peak_rss_mib": rss_mib(), "sets": results}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("QLINEAR_MINILM_DIR",
                                                          os.path.join(ROOT, ".models", "all-MiniLM-L6-v2")))
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default=None,
                        help="default fp32 on cpu, bf16 on cuda")
    parser.add_argument("--variants", default=None,
                        help="comma list of fp32 (dense) and qint8 (quantize_dynamic, CPU only); "
                             "default: fp32,qint8 on cpu, fp32 (meaning dense at --dtype) on cuda")
    parser.add_argument("--batch-size", type=int, default=None, help="default 32 on cpu, 256 on cuda")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per set (default 5)")
    parser.add_argument("--sets", default="fixture,bench", help="comma list of fixture, bench")
    parser.add_argument("--stack", choices=["auto", "sentence-transformers", "plain"], default="auto",
                        help="auto: sentence-transformers if installed, else plain transformers + tokenizers")
    parser.add_argument("--json", help="write all results to this file")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # internal: one variant in this process
    args = parser.parse_args()
    args.dtype = args.dtype or ("fp32" if args.device == "cpu" else "bf16")
    args.batch_size = args.batch_size or (32 if args.device == "cpu" else 256)

    if args.variant:
        run_variant(args)
        return
    if not os.path.isfile(os.path.join(args.model, "model.safetensors")):
        sys.exit(f"bench-minilm-torch: no model.safetensors in {args.model}; run scripts/fetch-minilm "
                 f"(or scripts/minilm-half-copy.py for a half-precision copy)")
    variants = (args.variants or ("fp32,qint8" if args.device == "cpu" else "fp32")).split(",")
    if args.device == "cuda" and "qint8" in variants:
        sys.exit("bench-minilm-torch: quantize_dynamic (qint8) runs on the CPU only")
    results = []
    for variant in variants:
        label = "PyTorch " + ("dynamic INT8 (qint8 linears)" if variant == "qint8" else args.dtype)
        for name in args.sets.split(","):
            command = [sys.executable, os.path.abspath(__file__), "--variant", variant, "--model", args.model,
                       "--device", args.device, "--dtype", args.dtype, "--batch-size", str(args.batch_size),
                       "--threads", str(args.threads), "--runs", str(args.runs), "--sets", name,
                       "--stack", args.stack]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"bench-minilm-torch: variant {variant} on {name} failed:\n{done.stderr[-4000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            results.append(result)
            entry = result["sets"][name]
            gpu = f", peak GPU {entry['peak_gpu_mib']:.0f} MiB" if "peak_gpu_mib" in entry else ""
            print(f"{label:30} {name:8} {entry['sentences']:5d} sentences: {entry['sentences_per_s']:8.1f} "
                  f"sentences/s (runs {entry['min_sentences_per_s']:.1f}-{entry['max_sentences_per_s']:.1f}), "
                  f"peak RSS {result['peak_rss_mib']:.0f} MiB (torch alone {result['baseline_rss_mib']:.0f})"
                  f"{gpu}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "results": results}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
