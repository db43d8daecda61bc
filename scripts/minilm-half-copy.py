#!/usr/bin/env python3
"""Copies a MiniLM model directory with model.safetensors in fp16 or bf16 (45 MB instead of 91 MB).

    python3 scripts/minilm-half-copy.py [--dtype fp16|bf16] [SRC] [DST]
    (defaults: fp16, .models/all-MiniLM-L6-v2, .models/all-MiniLM-L6-v2-<dtype>)

For the GPU peer benchmark on the lent host, whose carry limit (64 MiB in all) the F32 file exceeds. The
benchmark casts the weights to its --dtype on load, so an fp16 copy serves bf16 runs too: for throughput the
rounding does not matter. Floating tensors are converted; integer buffers (position_ids) are kept.

    --widen                 store the rounded values as F32 again: the model then computes in float32 (a
                            model computes in its weights' type) while xz still packs the zero low bits
    --only-token-ids FILE   zero every word-embedding row whose id is not in FILE's "token_ids" (a fixture
                            sentences.json): the copy then compresses to ~20 MB (tar.xz) for carrying the GPU
                            test suite and the model together; only those sentences give meaningful outputs.
"""
import json
import argparse
import os
import shutil
import sys


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", choices=["fp16", "bf16"], default="fp16")
    parser.add_argument("--only-token-ids", metavar="FILE")
    parser.add_argument("--widen", action="store_true")
    parser.add_argument("src", nargs="?", default=os.path.join(root, ".models", "all-MiniLM-L6-v2"))
    parser.add_argument("dst", nargs="?")
    args = parser.parse_args()
    dst = args.dst or os.path.join(root, ".models", f"all-MiniLM-L6-v2-{args.dtype}")
    source_weights = os.path.join(args.src, "model.safetensors")
    if not os.path.isfile(source_weights):
        sys.exit(f"minilm-half-copy: no model.safetensors in {args.src}; run scripts/fetch-minilm {args.src}")

    import torch
    from safetensors.torch import load_file, save_file
    dtype = torch.float16 if args.dtype == "fp16" else torch.bfloat16
    shutil.copytree(args.src, dst, dirs_exist_ok=True,
                    ignore=lambda folder, names: ["model.safetensors"] if folder == args.src else [])
    tensors = {name: (t.to(dtype) if t.is_floating_point() else t).contiguous()
               for name, t in load_file(source_weights).items()}
    if args.only_token_ids:
        with open(args.only_token_ids) as f:
            kept = sorted({i for ids in json.load(f)["token_ids"] for i in ids})
        table = tensors["embeddings.word_embeddings.weight"]
        pruned = torch.zeros_like(table)
        pruned[kept] = table[kept]
        tensors["embeddings.word_embeddings.weight"] = pruned
        print(f"minilm-half-copy: kept {len(kept)} of {table.shape[0]} word-embedding rows")
    if args.widen:
        tensors = {name: (t.float() if t.is_floating_point() else t) for name, t in tensors.items()}
    save_file(tensors, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})
    size = sum(os.path.getsize(os.path.join(folder, f)) for folder, _, files in os.walk(dst) for f in files)
    print(f"minilm-half-copy: {dst} ({'float32 of ' if args.widen else ''}{args.dtype}, {size / 2**20:.1f} MiB in all)")


if __name__ == "__main__":
    main()
