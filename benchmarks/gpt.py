"""Benchmark: the instructor's GPT (source/04_gpt) next to transformers' GPT2LMHeadModel, same configuration.

    .venv/bin/python benchmarks/gpt.py                      # GPT-2 small, forward + backward, on cuda if present
    .venv/bin/python benchmarks/gpt.py --device cpu --batch 2 --seq 256 --steps 7
    .venv/bin/python benchmarks/gpt.py --layers 4 --emb 256 --heads 4     # a smaller model

Both models hold the same weights (GPT-2's are loaded into the course model with its own load_gpt2_weights, and
the logits are compared first), run in train mode without dropout, and take the same loss. Timed rounds alternate
between the two models and the median round counts. On CUDA it also prints model FLOPs utilisation (MFU: 6N + 12LTd
FLOPs per token for forward + backward, against the GPU's dense peak for the dtype). Prints figures only; nothing
here is a test. Compare ratios from one run: these machines are noisy.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trailblaze import data  # noqa: E402
from trailblaze.coursedir import COURSE  # noqa: E402

data.use_offline_data()
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from course_tests import models  # noqa: E402
from course_tests import adapters_for  # noqa: E402
from gradebox.student import load_notebook  # noqa: E402
from flops import peak_flops, training_flops_per_token  # noqa: E402



def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def step(model, ids, targets, logits_of, dtype, device) -> None:
    with torch.autocast(device_type=device, dtype=dtype, enabled=dtype != torch.float32):
        logits = logits_of(model(ids))
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
    loss.backward()
    model.zero_grad(set_to_none=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default=None,
                        help="default: bfloat16 autocast on cuda, float32 on cpu")
    parser.add_argument("--batch", type=int, default=None, help="default: 8 on cuda, 2 on cpu")
    parser.add_argument("--seq", type=int, default=None, help="default: 1024 on cuda, 256 on cpu")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--emb", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--steps", type=int, default=None, help="timed rounds per model (default: 10 cuda, 7 cpu)")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if cuda else torch.float32)
    batch, seq = args.batch or (8 if cuda else 2), args.seq or (1024 if cuda else 256)
    steps = args.steps or (10 if cuda else 7)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True  # what a user training would have on
        torch.backends.cudnn.allow_tf32 = True

    impl = load_notebook(COURSE.source_notebook("04_gpt"), "04_gpt", adapters_for("04_gpt"))
    if impl.load_errors:
        sys.exit(f"the instructor's notebook did not load: {impl.load_errors}")
    ns = impl.student.namespace
    spec = dict(vocab_size=50257, n_positions=max(1024, seq), n_embd=args.emb, n_layer=args.layers,
                n_head=args.heads, tie_word_embeddings=True, initializer_range=0.02)
    hf = models.tiny_gpt2(seed=0, **spec).train()
    cfg = ns["GPTConfig"](vocab_size=50257, context_length=spec["n_positions"], emb_dim=args.emb,
                          n_heads=args.heads, n_layers=args.layers, drop_rate=0.0, qkv_bias=True, tie_weights=True)
    ours = ns["load_gpt2_weights"](ns["GPTModel"](cfg), hf.state_dict()).train()
    hf, ours = hf.to(args.device), ours.to(args.device)

    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 50257, (batch, seq + 1), generator=gen).to(args.device)
    inputs, targets = ids[:, :-1], ids[:, 1:]
    with torch.no_grad():
        diff = (ours(inputs[:1, :64]) - hf(inputs[:1, :64]).logits).abs().max().item()
    n_params = sum(p.numel() for p in ours.parameters())
    name = torch.cuda.get_device_name(0) if cuda else f"{os.cpu_count()} CPUs"
    print(f"device: {args.device} ({name}); torch {torch.__version__}; dtype {str(dtype).split('.')[-1]}")
    print(f"model: {args.layers} layers, emb {args.emb}, {args.heads} heads, {n_params:,} parameters; "
          f"batch {batch} x {seq} tokens; same weights, max |logit diff| {diff:.2g}")

    runners = {"course GPTModel": (ours, lambda out: out),
               "transformers GPT2LMHeadModel": (hf, lambda out: out.logits)}
    for model, logits_of in runners.values():  # warm-up: allocator, kernels, autotuning
        for _ in range(2):
            step(model, inputs, targets, logits_of, dtype, args.device)
    times = {label: [] for label in runners}
    for _ in range(steps):
        for label, (model, logits_of) in runners.items():
            sync(args.device)
            start = time.perf_counter()
            step(model, inputs, targets, logits_of, dtype, args.device)
            sync(args.device)
            times[label].append(time.perf_counter() - start)

    tokens = batch * seq
    flops_per_token = training_flops_per_token(n_params, args.layers, seq, args.emb)
    peak = peak_flops(args.device, dtype)
    print(f"\nforward + backward, median of {steps} rounds:")
    medians = {}
    for label, ts in times.items():
        medians[label] = statistics.median(ts)
        rate = tokens / medians[label]
        mfu = f"  MFU {rate * flops_per_token / peak:6.1%}" if peak else ""
        print(f"  {label:<30} {medians[label] * 1e3:9.1f} ms/step  {rate:12,.0f} tokens/s{mfu}")
    ratio = medians["transformers GPT2LMHeadModel"] / medians["course GPTModel"]
    print(f"\ncourse GPTModel throughput / transformers': {ratio:.2f}x")


if __name__ == "__main__":
    main()
