"""Benchmark: the instructor's byte-level BPE (source/02_tokenization) next to tiktoken, on the course corpus.

    .venv/bin/python benchmarks/bpe.py            # encode throughput and the time to train 512 merges on ~1 MB
    .venv/bin/python benchmarks/bpe.py --verify   # also train with the checks' direct reference and compare

Prints figures only; nothing here is a test. Run it on an idle machine and compare ratios from one run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trailblaze import data  # noqa: E402
from trailblaze.coursedir import CORPUS, COURSE  # noqa: E402

data.use_offline_data()
import tiktoken  # noqa: E402

from course_tests.adapters.tokenization import GPT2_SPECIAL_TOKENS, gpt2_ranks  # noqa: E402
from course_tests import adapters_for  # noqa: E402
from gradebox.student import load_notebook  # noqa: E402


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merges", type=int, default=512)
    parser.add_argument("--train-chars", type=int, default=1_000_000)
    parser.add_argument("--verify", action="store_true", help="compare with the direct reference trainer (slow)")
    args = parser.parse_args()

    impl = load_notebook(COURSE.source_notebook("02_tokenization"), "02_tokenization", adapters_for("02_tokenization"))
    if impl.load_errors:
        sys.exit(f"the instructor's notebook did not load: {impl.load_errors}")
    ns = impl.student.namespace
    val = (CORPUS / "val.txt").read_text(encoding="utf-8")
    train = (CORPUS / "train.txt").read_text(encoding="utf-8")[:args.train_chars]
    mb = len(val.encode()) / 1e6
    print(f"machine: {os.cpu_count()} CPUs; validation split {mb:.2f} MB; training text {len(train.encode()) / 1e6:.2f} MB")

    enc = tiktoken.get_encoding("gpt2")
    theirs, t_tiktoken = timed(enc.encode_ordinary, val)
    ours_tok = ns["BPETokenizer"](gpt2_ranks(), GPT2_SPECIAL_TOKENS)
    ours, t_cold = timed(ours_tok.encode, val)
    _, t_warm = timed(ours_tok.encode, val)
    print(f"\nencode the validation split ({len(theirs):,} tokens), equal to tiktoken: {ours == theirs}")
    for name, t in [("tiktoken (Rust)", t_tiktoken), ("course BPE, cold cache", t_cold),
                    ("course BPE, warm cache", t_warm)]:
        print(f"  {name:<24} {t:7.3f} s  {mb / t:8.2f} MB/s  {len(theirs) / t:12,.0f} tokens/s"
              f"  ({t / t_tiktoken:5.1f}x tiktoken's time)")

    merges, t_train = timed(ns["train_bpe"], train, args.merges)
    print(f"\ntrain {len(merges)} merges on {len(train.encode()) / 1e6:.2f} MB: {t_train:.2f} s (incremental)")
    if args.verify:
        from course_tests.checks.tokenization import ref_train
        reference, t_ref = timed(ref_train, train, args.merges)
        print(f"  direct reference (recount every merge): {t_ref:.2f} s, {t_ref / t_train:.0f}x slower; "
              f"merges identical: {merges == reference}")


if __name__ == "__main__":
    main()
