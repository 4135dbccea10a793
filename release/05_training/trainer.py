"""The training loop of assignment 5, for one process or several (torchrun + DistributedDataParallel).

This file holds no exercise. It calls the functions you write in training.ipynb: `batch_loss`, `evaluate`, `lr_at`,
`param_groups`, `train_step`, `save_checkpoint`, `load_checkpoint` (and the provided `random_windows`,
`generate`). The notebook passes them in with `Course.from_namespace(globals())`; run as a script, this file reads
them from the notebook itself (its exercise and provided cells; never its tests or demos).

    python trainer.py --steps 300                           # one process
    torchrun --nproc_per_node 2 trainer.py --steps 300      # two processes: gloo on CPU, nccl on GPUs

With N processes every step still uses the same global batch of `batch_size` windows: each process takes its
`batch_size / N` rows and DistributedDataParallel averages the gradients, so one step equals the one-process step.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

NOTEBOOK = Path(__file__).with_name("training.ipynb")
COURSE_FUNCTIONS = ("batch_loss", "evaluate", "lr_at", "param_groups", "train_step", "save_checkpoint",
                    "load_checkpoint", "random_windows", "generate")


@dataclass
class TrainConfig:
    steps: int = 1000              # optimizer steps in the whole run
    batch_size: int = 16           # windows per step, across all processes
    length: int = 128              # tokens the model reads per window
    max_lr: float = 2e-3
    min_lr: float = 2e-4
    warmup_steps: int = 50
    weight_decay: float = 0.1
    max_grad_norm: float = 1.0
    eval_every: int = 100          # steps between validation losses (and at the last step)
    eval_batches: int = 10         # validation batches per evaluation (drawn once, the same every time)
    sample_every: int = 0          # steps between text samples (0: never)
    sample_prompt: tuple = (198,)  # the ids each sample starts from (GPT-2's newline)
    checkpoint: str | None = None  # where to save (one file per process under torchrun)
    checkpoint_every: int = 0      # steps between checkpoints (0: only at the end, when checkpoint is set)
    seed: int = 1337


# The notebook's default laptop run (its section 8), and what benchmarks/laptop_run.py races against nanoGPT's.
DEFAULT_MODEL = dict(context_length=64, emb_dim=128, n_heads=4, n_layers=4, drop_rate=0.0)
DEFAULT_TRAIN = dict(steps=1200, batch_size=16, length=64, max_lr=3e-3, min_lr=3e-4, warmup_steps=60,
                     eval_every=150, eval_batches=10)


def default_run(gpt_config, vocab_size: int) -> tuple[object, TrainConfig]:
    """(the model's configuration, the run's) of the default run, with the notebook's GPTConfig class."""
    return gpt_config(vocab_size=vocab_size, **DEFAULT_MODEL), TrainConfig(**DEFAULT_TRAIN)


@dataclass
class CorpusVocabulary:
    """The GPT-2 ids a corpus uses, renumbered 0, 1, ...: a model over them needs a smaller output layer (Shakespeare
    uses 19,378 of GPT-2's 50,257 tokens). Text is still GPT-2's tokens; only their numbers change."""
    used: torch.Tensor  # the GPT-2 ids, sorted

    @classmethod
    def of(cls, *splits: torch.Tensor) -> "CorpusVocabulary":
        return cls(torch.unique(torch.cat(splits)))

    def __len__(self) -> int:
        return len(self.used)

    def compact(self, gpt2_ids) -> torch.Tensor:
        """GPT-2 ids -> this vocabulary's ids; ValueError for a token the corpus never uses."""
        gpt2_ids = torch.as_tensor(gpt2_ids)
        table = torch.full((int(max(self.used.max(), gpt2_ids.max())) + 1,), -1, dtype=torch.long)
        table[self.used] = torch.arange(len(self.used))
        ids = table[gpt2_ids]
        if (ids < 0).any():
            raise ValueError("a token the corpus never uses has no id in its vocabulary")
        return ids

    def gpt2(self, ids) -> torch.Tensor:
        """This vocabulary's ids -> GPT-2 ids (to decode with GPT-2's tokenizer)."""
        return self.used[torch.as_tensor(ids, dtype=torch.long)]


@dataclass
class Course:
    """Your functions from the notebook, as the loop calls them."""
    batch_loss: object
    evaluate: object
    lr_at: object
    param_groups: object
    train_step: object
    save_checkpoint: object
    load_checkpoint: object
    random_windows: object
    generate: object = None

    @classmethod
    def from_namespace(cls, namespace: dict) -> "Course":
        missing = [name for name in COURSE_FUNCTIONS[:-1] if name not in namespace]
        if missing:
            raise NameError(f"run the notebook's cells that define {', '.join(missing)} first")
        return cls(**{f.name: namespace.get(f.name) for f in fields(cls)})


def load_notebook(path: Path = NOTEBOOK) -> dict:
    """Run the notebook's exercise and provided cells (not its tests, not its demos) and return their names."""
    import sys
    import types

    import nbformat

    module = sys.modules.setdefault("training_notebook", types.ModuleType("training_notebook"))  # for @dataclass
    namespace = module.__dict__
    for cell in nbformat.read(path, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        tags = set(cell.metadata.get("tags", []))
        runs = meta.get("solution") or (meta.get("locked") and not meta.get("grade"))
        if cell.cell_type == "code" and runs and not tags & {"demo", "visible-test"}:
            exec(compile(cell.source, f"{path.name}:{meta.get('grade_id')}", "exec"), namespace)
    return namespace


# --- processes ----------------------------------------------------------------------------------------------------
def rank_and_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def start_processes(cpu: bool = False) -> torch.device:
    """Join the torchrun group when launched by torchrun (gloo on CPU, nccl on CUDA); return this process's device."""
    use_cuda = torch.cuda.is_available() and not cpu
    if "RANK" not in os.environ:
        return torch.device("cuda" if use_cuda else "cpu")
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return torch.device("cuda", local)
    dist.init_process_group("gloo")
    return torch.device("cpu")


def checkpoint_path(path: str) -> Path:
    """Every process keeps its own file (its own random state); the model and optimizer are the same in all."""
    rank, world = rank_and_world()
    path = Path(path)
    return path if world == 1 else path.with_name(f"{path.stem}.rank{rank}{path.suffix}")


# --- the loop -----------------------------------------------------------------------------------------------------
def train(model: nn.Module, train_ids: torch.Tensor, val_ids: torch.Tensor, cfg: TrainConfig, course: Course, *,
          device: torch.device | str = "cpu", resume: bool = False, stop_after: int | None = None,
          progress: bool = True, decode=None, log=print) -> list[dict]:
    """Train `model` (already on `device`) for cfg.steps steps; return one row per step (loss, gradient norm,
    learning rate, seconds so far, and the validation loss at evaluation steps).

    With resume=True the loop continues from cfg.checkpoint: the same batches, dropout masks, learning rates and
    optimizer moments as if it had never stopped. `stop_after` ends the run early, as a crash would (the
    schedule still plans cfg.steps steps).
    """
    rank, world = rank_and_world()
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} does not split over {world} processes")
    torch.manual_seed(cfg.seed + rank)  # dropout: each process draws its own masks
    data = torch.Generator().manual_seed(cfg.seed)  # the batches: the same global batch in every process
    val_batches = [course.random_windows(val_ids, cfg.batch_size, cfg.length, torch.Generator().manual_seed(i))
                   .to(device) for i in range(cfg.eval_batches)]
    optimizer = torch.optim.AdamW(course.param_groups(model, cfg.weight_decay), lr=cfg.max_lr, betas=(0.9, 0.95))
    trained = DistributedDataParallel(model) if world > 1 else model

    start = course.load_checkpoint(checkpoint_path(cfg.checkpoint), model, optimizer, data) if resume else 0
    rows, began = [], time.perf_counter()
    steps = range(start, cfg.steps if stop_after is None else min(cfg.steps, stop_after))
    if progress and rank == 0:
        from tqdm.auto import tqdm
        steps = tqdm(steps, initial=start, total=cfg.steps, desc="training")
    for step in steps:
        lr = course.lr_at(step, cfg.max_lr, cfg.min_lr, cfg.warmup_steps, cfg.steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = course.random_windows(train_ids, cfg.batch_size, cfg.length, data)
        mine = batch.chunk(world)[rank].to(device)
        loss, norm = course.train_step(trained, optimizer, mine, cfg.max_grad_norm)
        row = {"step": step + 1, "loss": loss, "grad_norm": norm, "lr": lr, "seconds": time.perf_counter() - began}
        last = step + 1 == cfg.steps
        if last or (cfg.eval_every and (step + 1) % cfg.eval_every == 0):
            row["val_loss"] = course.evaluate(model, val_batches)
            if progress and rank == 0 and hasattr(steps, "set_postfix"):
                steps.set_postfix(loss=f"{loss:.3f}", val=f"{row['val_loss']:.3f}")
        if rank == 0 and cfg.sample_every and course.generate and decode and (step + 1) % cfg.sample_every == 0:
            model.eval()
            log(f"--- step {step + 1}: {sample(model, course, decode, device, prompt_ids=cfg.sample_prompt)!r}")
            model.train()
        if cfg.checkpoint and (last or (cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0)):
            course.save_checkpoint(checkpoint_path(cfg.checkpoint), model, optimizer, step + 1, data)
        rows.append(row)
    return rows


def sample(model: nn.Module, course: Course, decode, device, prompt_ids=(198,), tokens: int = 40,
           seed: int = 0) -> str:
    """A short text from the model (it starts after a newline by default), leaving the training RNG untouched.
    Put the model in eval() mode first (no dropout)."""
    ids = torch.tensor([list(prompt_ids)], device=device)
    out = course.generate(model, ids, tokens, temperature=0.8, top_k=50,
                          generator=torch.Generator(device=device).manual_seed(seed))
    return decode(out[0, len(prompt_ids):].tolist())


def nats_per_char(model: nn.Module, ids: torch.Tensor, text: str, course: Course, length: int,
                  batch_size: int = 16, device="cpu") -> float:
    """Held-out loss per character: the mean loss per token over consecutive windows covering the whole split,
    times tokens per character. Unlike loss per token, it compares models with different tokenizers."""
    windows = ids[: (len(ids) - 1) // length * length + 1].unfold(0, length + 1, length)
    batches = [w.to(device) for w in windows.split(batch_size)]
    return course.evaluate(model, batches) * len(ids) / len(text)


def plot_curves(runs: dict[str, list[dict]], title: str = "", ax=None):
    """Validation loss (lines with markers) and smoothed training loss (faint) of several runs on one plot."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 4))[1]
    for (name, rows), colour in zip(runs.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 9):
        losses = [r["loss"] for r in rows]
        window = max(1, len(losses) // 50)
        smooth = [sum(losses[max(0, i - window + 1):i + 1]) / len(losses[max(0, i - window + 1):i + 1])
                  for i in range(len(losses))]
        ax.plot([r["step"] for r in rows], smooth, color=colour, alpha=0.35)
        val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
        ax.plot(*zip(*val), "o-", color=colour, label=name)
    ax.set(xlabel="step", ylabel="loss (nats per token)", title=title)
    ax.legend()
    return ax


# --- the script ---------------------------------------------------------------------------------------------------
def model_config(namespace: dict, vocab_size: int, args) -> object:
    return namespace["GPTConfig"](vocab_size=vocab_size, context_length=args.length, emb_dim=args.emb_dim,
                                  n_heads=args.n_heads, n_layers=args.n_layers, drop_rate=args.dropout)


def main(argv=None) -> None:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for f in fields(TrainConfig):
        if f.name == "sample_prompt":  # ids, not a command-line value
            continue
        kind = {"int": int, "float": float}.get(str(f.type), str)
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=getattr(defaults, f.name))
    parser.add_argument("--emb-dim", type=int, default=128)
    parser.add_argument("--n-heads", type=int, default=4)
    parser.add_argument("--n-layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--cpu", action="store_true", help="train on the CPU (gloo) even where a GPU is present")
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK)
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    parser.add_argument("--save-parameters", type=Path, help="rank 0 writes the final parameters (safetensors)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON lines instead of a bar")
    args = parser.parse_args(argv)
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)})

    device = start_processes(cpu=args.cpu)
    rank, world = rank_and_world()
    namespace = load_notebook(args.notebook)
    course = Course.from_namespace(namespace)
    train_ids, val_ids = namespace["shakespeare_ids"]("train"), namespace["shakespeare_ids"]("val")
    torch.manual_seed(cfg.seed)  # the same initial weights in every process
    model = namespace["init_gpt2_weights"](namespace["GPTModel"](model_config(namespace, 50257, args))).to(device)
    rows = train(model, train_ids, val_ids, cfg, course, device=device, resume=args.resume,
                 progress=not args.json)
    if rank == 0:
        for row in rows if args.json else rows[-1:]:
            print(json.dumps({**row, "processes": world}))
        if args.save_parameters:
            from safetensors.torch import save_file
            save_file({n: p.detach().cpu().contiguous() for n, p in model.named_parameters()},
                      str(args.save_parameters))
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
