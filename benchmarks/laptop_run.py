"""Benchmark: 05's default laptop run against nanoGPT's CPU recipe, at equal wall time on this machine.

    .venv/bin/python benchmarks/laptop_run.py --nanogpt PATH      # PATH: a checkout of karpathy/nanoGPT
    .venv/bin/python benchmarks/laptop_run.py                     # its recipe re-created on the course's GPTModel
    .venv/bin/python benchmarks/laptop_run.py --speed --nanogpt PATH   # only tokens per second, model against model

nanoGPT's README trains a "baby GPT" on a laptop CPU: characters, 4 layers, 4 heads, width 128, 64-character
windows, batches of 12, AdamW (lr 1e-3 warmed up over 100 steps, cosine to 1e-4 at step 2000, betas 0.9/0.99,
weight decay 0.1 on matrices, clipping at 1.0), no dropout, no biases. Here it trains on the course's own
Shakespeare split (its characters are its vocabulary) for as many seconds as 05's default run took, evaluation
included, while nanoGPT's own time is spent on training alone: its 2000 steps take about a minute on 2 cores, so its
schedule is stretched to as many steps as fit in that time (warmup kept, the cosine ending at the last step). A
third row is the recipe as its README writes it, 2000 steps, however long they take. All are scored on the whole
validation split, in nats per character: a character model's loss per character, and the course model's loss per
token times tokens per character. The course run is trainer.py's default_run(), what the notebook's section 8
trains.

--speed times one training step (forward, loss, backward, clipping, AdamW) of the course's GPTModel (05's carried
copy) against nanoGPT's model.py, on the same configurations. nanoGPT's code is read from PATH, never copied here.
Figures only; nothing here is a test.
"""
from __future__ import annotations

import argparse
import importlib.util
import math
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
import torch.nn.functional as F  # noqa: E402

from course_tests import adapters_for  # noqa: E402
from gradebox.student import load_notebook  # noqa: E402

RECIPE = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, learning_rate=1e-3, min_lr=1e-4,
              warmup_iters=100, max_iters=2000, beta2=0.99, weight_decay=0.1, grad_clip=1.0)
# name: (layers, width, heads, context, batch, vocabulary) for --speed; "issue" is the 6-layer, 384-wide baby GPT
SPEED = {"default": (4, 128, 4, 64, 16, 50257), "issue": (6, 384, 6, 256, 8, 50257), "chars": (4, 128, 4, 64, 12, 65)}


def course_namespace() -> dict:
    impl = load_notebook(COURSE.source_notebook("05_training"), "05_training", adapters_for("05_training"))
    if impl.load_errors:
        sys.exit(f"the instructor's notebook did not load: {impl.load_errors}")
    return impl.student.namespace


def trainer_module():
    sys.path.insert(0, str(COURSE.source_notebook("05_training").parent))
    import trainer
    return trainer


def nanogpt_module(path: Path | None):
    if path is None:
        return None
    spec = importlib.util.spec_from_file_location("nanogpt_model", path / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def recipe_model(nano, ns, vocab: int, layers: int, width: int, heads: int, context: int, bias: bool):
    """nanoGPT's GPT when its code is given, else the course's GPTModel with the same sizes (and its biases)."""
    if nano is not None:
        return nano.GPT(nano.GPTConfig(block_size=context, vocab_size=vocab, n_layer=layers, n_head=heads,
                                       n_embd=width, dropout=0.0, bias=bias))
    cfg = ns["GPTConfig"](vocab_size=vocab, context_length=context, emb_dim=width, n_heads=heads, n_layers=layers,
                          drop_rate=0.0)
    return ns["init_gpt2_weights"](ns["GPTModel"](cfg))


def loss_of(model, x, y, nano) -> torch.Tensor:
    if nano is not None:
        return model(x.contiguous(), y.contiguous())[1]
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten())


def recipe_lr(it: int, decay_iters: int) -> float:
    """nanoGPT's get_lr: linear warmup, then a cosine from learning_rate down to min_lr at decay_iters."""
    r = RECIPE
    if it < r["warmup_iters"]:
        return r["learning_rate"] * (it + 1) / (r["warmup_iters"] + 1)
    if it > decay_iters:
        return r["min_lr"]
    ratio = (it - r["warmup_iters"]) / (decay_iters - r["warmup_iters"])
    return r["min_lr"] + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (r["learning_rate"] - r["min_lr"])


def recipe_optimizer(model, nano):
    r = RECIPE
    if nano is not None:
        return model.configure_optimizers(r["weight_decay"], r["learning_rate"], (0.9, r["beta2"]), "cpu")
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": r["weight_decay"]},
                              {"params": rest, "weight_decay": 0.0}], lr=r["learning_rate"], betas=(0.9, r["beta2"]))


def run_recipe(nano, ns, train_text: str, val_text: str, seconds: float, stretch: bool = True) -> dict:
    """nanoGPT's recipe on the course's characters for `seconds` of training (without `stretch`: its own 2000
    steps, or fewer if the time runs out); scored on the whole validation text."""
    r = RECIPE
    chars = sorted(set(train_text + val_text))
    stoi = {c: i for i, c in enumerate(chars)}
    train_ids = torch.tensor([stoi[c] for c in train_text])
    val_ids = torch.tensor([stoi[c] for c in val_text])
    torch.manual_seed(1337)
    model = recipe_model(nano, ns, len(chars), r["n_layer"], r["n_embd"], r["n_head"], r["block_size"], bias=False)
    optimizer = recipe_optimizer(model, nano)
    gen = torch.Generator().manual_seed(1337)

    def step(it: int, planned: int) -> None:
        for group in optimizer.param_groups:
            group["lr"] = recipe_lr(it, planned)
        starts = torch.randint(len(train_ids) - r["block_size"] - 1, (r["batch_size"],), generator=gen)
        window = torch.stack([train_ids[s:s + r["block_size"] + 1] for s in starts.tolist()])
        loss = loss_of(model, window[:, :-1], window[:, 1:], nano)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), r["grad_clip"])
        optimizer.step()

    # The recipe's 2000 steps end long before `seconds` on most machines: plan as many steps as fit (its warmup
    # kept, its cosine stretched to the end), from the pace of its first steps, so that it uses all its time.
    model.train()
    began = time.perf_counter()
    for it in range(20):
        step(it, r["max_iters"])
    pace = (time.perf_counter() - began) / 20
    planned = max(r["max_iters"], int(seconds / pace)) if stretch else r["max_iters"]
    it = 20
    while it < planned and time.perf_counter() - began < seconds:
        step(it, planned)
        it += 1
    trained_for = time.perf_counter() - began
    model.eval()
    length = r["block_size"]
    windows = val_ids[: (len(val_ids) - 1) // length * length + 1].unfold(0, length + 1, length)
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in windows.split(64):
            total += loss_of(model, batch[:, :-1], batch[:, 1:], nano).item() * batch[:, 1:].numel()
            count += batch[:, 1:].numel()
    return {"steps": it, "seconds": trained_for, "chars_per_s": it * r["batch_size"] * length / trained_for,
            "nats_per_char": total / count}


def run_course(ns, trainer, enc) -> dict:
    """trainer.default_run on the corpus's own GPT-2 tokens, as the notebook's section 8 trains it; scored with
    trainer.nats_per_char."""
    course = trainer.Course.from_namespace(ns)
    gpt2_train, gpt2_val = ns["shakespeare_ids"]("train"), ns["shakespeare_ids"]("val")
    vocab = trainer.CorpusVocabulary.of(gpt2_train, gpt2_val)
    train_ids, val_ids = vocab.compact(gpt2_train), vocab.compact(gpt2_val)
    model_cfg, cfg = trainer.default_run(ns["GPTConfig"], len(vocab))
    torch.manual_seed(cfg.seed)
    model = ns["init_gpt2_weights"](ns["GPTModel"](model_cfg))
    rows = trainer.train(model, train_ids, val_ids, cfg, course, progress=False)
    seconds = rows[-1]["seconds"]
    per_char = trainer.nats_per_char(model, val_ids, enc.decode(gpt2_val.tolist()), course, cfg.length)
    return {"steps": cfg.steps, "seconds": seconds, "chars_per_s": cfg.steps * cfg.batch_size * cfg.length
            * len(ns["read_corpus"]("train")) / len(train_ids) / seconds, "nats_per_char": per_char}


def step_seconds(model, nano, vocab: int, context: int, batch: int, steps: int = 8) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95))
    window = torch.randint(0, vocab, (batch, context + 1), generator=torch.Generator().manual_seed(0))
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        loss = loss_of(model, window[:, :-1], window[:, 1:], nano)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def speed(ns, nano) -> None:
    print(f"{'config':<8} {'layers x width':>14} {'context':>7} {'batch':>5} {'vocab':>6} "
          f"{'course tok/s':>12} {'nanoGPT tok/s':>13} {'ratio':>6}")
    for name, (layers, width, heads, context, batch, vocab) in SPEED.items():
        rates = []
        for which in (None, nano):
            torch.manual_seed(0)
            model = recipe_model(which, ns, vocab, layers, width, heads, context, bias=True)
            rates.append(batch * context / step_seconds(model, which, vocab, context, batch))
        print(f"{name:<8} {f'{layers} x {width}':>14} {context:>7} {batch:>5} {vocab:>6} "
              f"{rates[0]:>12,.0f} {rates[1]:>13,.0f} {rates[0] / rates[1]:>5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nanogpt", type=Path, help="a checkout of karpathy/nanoGPT (its model.py is used)")
    parser.add_argument("--speed", action="store_true", help="only time training steps, model against model")
    args = parser.parse_args()
    if args.nanogpt is not None and not (args.nanogpt / "model.py").is_file():
        sys.exit(f"{args.nanogpt} has no model.py: give the folder of a nanoGPT checkout")
    nano = nanogpt_module(args.nanogpt)
    ns = course_namespace()
    print(f"{os.cpu_count()} CPUs, {torch.get_num_threads()} threads; torch {torch.__version__}; "
          f"nanoGPT: {args.nanogpt or 're-created on the course GPTModel'}")
    if args.speed:
        if nano is None:
            sys.exit("--speed compares with nanoGPT's own model.py: give --nanogpt PATH")
        speed(ns, nano)
        return
    trainer = trainer_module()
    enc = ns["gpt2_encoding"]()
    ours = run_course(ns, trainer, enc)
    texts = ns["read_corpus"]("train"), ns["read_corpus"]("val")
    stretched = run_recipe(nano, ns, *texts, ours["seconds"])
    literal = run_recipe(nano, ns, *texts, ours["seconds"], stretch=False)
    print(f"{'run':<44} {'steps':>6} {'seconds':>8} {'chars/s':>8} {'val nats/char':>14}")
    for name, r in (("05 default run (the corpus's GPT-2 tokens)", ours),
                    ("nanoGPT recipe, stretched to the same time", stretched),
                    ("nanoGPT recipe as written (2000 steps)", literal)):
        print(f"{name:<44} {r['steps']:>6} {r['seconds']:>8.1f} {r['chars_per_s']:>8,.0f} {r['nats_per_char']:>14.3f}")


if __name__ == "__main__":
    main()
