"""Adapters for 05_training. Student signatures (as the notebook states them):

    batch_loss(model, tokens) -> 0-dim Tensor                    tokens: (batch, length + 1) token ids
    evaluate(model, batches, max_batches=None) -> float
    lr_at(step, max_lr, min_lr, warmup_steps, total_steps) -> float
    param_groups(model, weight_decay) -> [{"params": [...], "weight_decay": wd}, {"params": [...], "weight_decay": 0}]
    train_step(model, optimizer, tokens, max_grad_norm=1.0) -> (loss, grad_norm)
    save_checkpoint(path, model, optimizer, step, generator) -> None
    load_checkpoint(path, model, optimizer, generator) -> step

The model is the checks' own tiny language model (TinyLM), so these checks never depend on the student's GPT.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import nn

from gradebox.tensors import make_generator


class TinyLM(nn.Module):
    """ids (batch, seq) -> logits (batch, seq, vocab): an embedding, a LayerNorm, dropout, a linear head.
    It records whether autograd was on during each forward pass."""

    def __init__(self, vocab: int = 23, dim: int = 12, dropout: float = 0.0):
        super().__init__()
        self.emb, self.norm = nn.Embedding(vocab, dim), nn.LayerNorm(dim)
        self.drop, self.head = nn.Dropout(dropout), nn.Linear(dim, vocab)
        self.grad_enabled_seen, self.modes_seen = [], []

    def forward(self, ids):
        self.grad_enabled_seen.append(torch.is_grad_enabled())
        self.modes_seen.append(self.training)
        return self.head(self.drop(self.norm(self.emb(ids))))


def tiny_lm(seed: int, device: str, dropout: float = 0.0) -> TinyLM:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TinyLM(dropout=dropout).to(device)


def make_optimizer(model: nn.Module, name: str, lr: float) -> torch.optim.Optimizer:
    """"sgd" or "adamw" over all of the model's parameters: the student's run and the reference use the same."""
    return (torch.optim.SGD if name == "sgd" else torch.optim.AdamW)(model.parameters(), lr=lr)


def tokens(seed: int, batch: int = 3, length: int = 7, vocab: int = 23) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length + 1), generator=make_generator(seed))


def batch_loss(student, seed: int, batch: torch.Tensor, device: str) -> dict:
    model = tiny_lm(seed, device)
    loss = student.call("batch_loss", model, batch.to(device))
    result = {"loss": loss.detach() if isinstance(loss, torch.Tensor) else loss,
              "requires_grad": isinstance(loss, torch.Tensor) and loss.requires_grad}
    if result["requires_grad"] and loss.dim() == 0:
        loss.backward()
        result["grads"] = {n: None if p.grad is None else p.grad.detach().cpu() for n, p in model.named_parameters()}
    return result


def evaluate(student, seed: int, batches: list, device: str, max_batches=None, train: bool = True) -> dict:
    model = tiny_lm(seed, device, dropout=0.5)
    model.train(train)
    value = student.call("evaluate", model, [b.to(device) for b in batches], max_batches=max_batches)
    return {"value": value, "training_after": model.training, "grad_enabled_seen": model.grad_enabled_seen,
            "modes_seen": model.modes_seen, "grads": [p.grad for p in model.parameters() if p.grad is not None]}


def lr_at(student, *args) -> object:
    return student.call("lr_at", *args)


def param_groups(student, seed: int, weight_decay: float, freeze: tuple = ()) -> dict:
    model = tiny_lm(seed, "cpu")
    model.head.weight = model.emb.weight  # a tied parameter must be listed once
    for name, p in model.named_parameters():
        if name.startswith(freeze):
            p.requires_grad_(False)
    groups = student.call("param_groups", model, weight_decay)
    names = {id(p): n for n, p in model.named_parameters()}
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise TypeError("param_groups must return a list of dicts")
    return {"groups": [{"params": [names.get(id(p), "?") for p in g.get("params", [])],
                        "weight_decay": g.get("weight_decay")} for g in groups],
            "all": {n: p.dim() for n, p in model.named_parameters() if p.requires_grad}}


def train_steps(student, seed: int, batches: list, device: str, max_grad_norm: float, lr: float = 0.1,
                optimizer: str = "sgd") -> dict:
    """Run train_step once per batch on a TinyLM; report its returns and the parameters after the last step."""
    model = tiny_lm(seed, device)
    opt = make_optimizer(model, optimizer, lr)
    returned = [student.call("train_step", model, opt, b.to(device), max_grad_norm=max_grad_norm) for b in batches]
    return {"returned": returned, "parameters": {n: p.detach().cpu().clone() for n, p in model.named_parameters()}}


# --- checkpoints ----------------------------------------------------------------------------------------------------
# The box lets a student's code import this module, so nothing here may answer an exercise: the checkpoint loop's
# step uses a loss of its own (not the next-token loss) and does not clip. The references live in checks/.
def driver_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: torch.Tensor) -> None:
    optimizer.zero_grad()
    model(batch).float().square().mean().backward()
    optimizer.step()


def scheduled_steps(model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator, start: int,
                    stop: int, total: int, device: str) -> None:
    """The checkpoint checks' own training loop: a warmup-then-linear learning rate, batches drawn from `generator`
    (on the CPU), dropout drawing from the global generator."""
    for step in range(start, stop):
        for group in optimizer.param_groups:
            group["lr"] = 0.05 * min(step + 1, 3) / 3 * (1 - step / (2 * total))
        driver_step(model, optimizer, torch.randint(0, 23, (3, 8), generator=generator).to(device))


def rng_devices(device: str) -> list[int]:
    return [torch.device(device).index or 0] if torch.device(device).type == "cuda" else []


def training_state(model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                   device: str) -> dict:
    """Everything that decides how training continues, as plain tensors."""
    state = {f"model.{n}": p.detach().cpu().clone() for n, p in model.named_parameters()}
    for index, moments in optimizer.state_dict()["state"].items():
        state |= {f"optimizer.{index}.{k}": torch.as_tensor(v).detach().cpu().clone() for k, v in moments.items()}
    state["rng.torch"] = torch.get_rng_state()
    if rng_devices(device):
        state["rng.cuda"] = torch.cuda.get_rng_state(rng_devices(device)[0])
    state["rng.data"] = generator.get_state()
    return state


def new_run(seed: int, device: str):
    """A tiny model with dropout, AdamW and a data generator, all from `seed` (the global RNG included)."""
    torch.manual_seed(seed)
    model = tiny_lm(seed, device, dropout=0.3)
    return model, make_optimizer(model, "adamw", 0.05), make_generator(seed)


def uninterrupted(seed: int, device: str, total: int) -> dict:
    """The reference: a run that never stops (no student code)."""
    with torch.random.fork_rng(devices=rng_devices(device)):
        model, opt, gen = new_run(seed, device)
        scheduled_steps(model, opt, gen, 0, total, total, device)
        return {n: p.detach().cpu().clone() for n, p in model.named_parameters()}


def checkpoint_resume(student, seed: int, device: str, stop_at: int, total: int) -> dict:
    """Train to stop_at, save with the student's save_checkpoint; then, as a new process would, build a model,
    optimizer and generator from other seeds, load with the student's load_checkpoint and train on to total."""
    with torch.random.fork_rng(devices=rng_devices(device)), tempfile.TemporaryDirectory() as scratch:
        path = str(Path(scratch) / "checkpoint.pt")
        model, opt, gen = new_run(seed, device)
        scheduled_steps(model, opt, gen, 0, stop_at, total, device)
        student.call("save_checkpoint", path, model, opt, stop_at, gen)
        saved = training_state(model, opt, gen, device)
        del model, opt, gen
        model, opt, gen = new_run(seed + 1000, device)
        step = student.call("load_checkpoint", path, model, opt, gen)
        restored = training_state(model, opt, gen, device)
        resumed = None
        if type(step) is int and 0 <= step <= total:
            scheduled_steps(model, opt, gen, step, total, total, device)
            resumed = {n: p.detach().cpu().clone() for n, p in model.named_parameters()}
    return {"step": step, "saved": saved, "restored": restored, "final": resumed}
