"""Benchmark: training throughput of the instructor's 05_training code (its train_step, AdamW with param_groups,
gradient clipping) on the GPT it carries from 04_gpt.

    .venv/bin/python benchmarks/train.py                    # CPU: the notebook's default laptop run
    .venv/bin/python benchmarks/train.py --device cuda      # GPU: GPT-2 small, float32 / bf16 / bf16 + compile

Prints tokens per second for each variant (median step of the timed ones, after warm-up steps), and on CUDA the
model FLOPs utilisation (MFU: 6N + 12LTd FLOPs per token against the GPU's dense peak for the dtype). Attention is
PyTorch's fused scaled_dot_product_attention in every variant (the carried MultiHeadAttention uses it). Figures
only; nothing here is a test.
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
import torch  # noqa: E402
from torch import nn  # noqa: E402

from course_tests import adapters_for  # noqa: E402
from gradebox.student import load_notebook  # noqa: E402
from flops import peak_flops, training_flops_per_token  # noqa: E402

# name: (layers, emb, heads, batch, seq); "default" is the notebook's five-minute laptop run
SIZES = {"default": (4, 128, 4, 16, 64), "gpt2-small": (12, 768, 12, 8, 1024)}


class Autocast(nn.Module):
    """Runs the wrapped model under bfloat16 autocast and hands float32 logits to the loss."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids):
        with torch.autocast(device_type=ids.device.type, dtype=torch.bfloat16):
            return self.model(ids).float()


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(ns, size: str, device: str, variant: str, steps: int, warmup: int) -> dict:
    layers, emb, heads, batch, seq = SIZES[size]
    torch.manual_seed(0)
    cfg = ns["GPTConfig"](vocab_size=50257, context_length=seq, emb_dim=emb, n_heads=heads, n_layers=layers,
                          drop_rate=0.0)
    model = ns["init_gpt2_weights"](ns["GPTModel"](cfg)).to(device)
    optimizer = torch.optim.AdamW(ns["param_groups"](model, 0.1), lr=3e-4, betas=(0.9, 0.95),
                                  fused=device == "cuda")
    runner = torch.compile(model) if "compile" in variant else model
    runner = Autocast(runner) if "bf16" in variant else runner
    tokens = torch.randint(0, 50257, (batch, seq + 1), generator=torch.Generator().manual_seed(0)).to(device)
    times = []
    for i in range(warmup + steps):
        sync(device)
        start = time.perf_counter()
        ns["train_step"](runner, optimizer, tokens, 1.0)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    n_params = sum(p.numel() for p in model.parameters())
    median = statistics.median(times)
    rate = batch * seq / median
    peak = peak_flops(device, torch.bfloat16 if "bf16" in variant else torch.float32)
    mfu = rate * training_flops_per_token(n_params, layers, seq, emb) / peak if peak else None
    return {"size": size, "variant": variant, "params": n_params, "batch": f"{batch}x{seq}", "ms": median * 1e3,
            "tokens_per_s": rate, "mfu": mfu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--size", choices=list(SIZES), help="default: 'default' on cpu, 'gpt2-small' on cuda")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per variant (default 10 cpu, 20 cuda)")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
    size = args.size or ("gpt2-small" if cuda else "default")
    variants = ["float32", "bf16", "bf16+compile"] if cuda else ["float32"]
    impl = load_notebook(COURSE.source_notebook("05_training"), "05_training", adapters_for("05_training"))
    if impl.load_errors:
        sys.exit(f"the instructor's notebook did not load: {impl.load_errors}")
    ns = impl.student.namespace
    name = torch.cuda.get_device_name(0) if cuda else f"{os.cpu_count()} CPUs, {torch.get_num_threads()} threads"
    print(f"device: {args.device} ({name}); torch {torch.__version__}")
    print(f"{'size':<11} {'variant':<13} {'params':>12} {'batch':>8} {'ms/step':>9} {'tokens/s':>11} {'MFU':>6}")
    for variant in variants:
        r = measure(ns, size, args.device, variant, args.steps or (20 if cuda else 10), 3 if cuda else 2)
        mfu = f"{r['mfu']:6.1%}" if r["mfu"] is not None else "     -"
        print(f"{r['size']:<11} {r['variant']:<13} {r['params']:>12,} {r['batch']:>8} {r['ms']:>9.1f} "
              f"{r['tokens_per_s']:>11,.0f} {mfu}")


if __name__ == "__main__":
    main()
