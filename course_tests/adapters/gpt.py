"""Adapters for 04_gpt. Student signatures (as the notebook states them):

    GPTConfig(vocab_size, context_length, emb_dim, n_heads, n_layers, drop_rate, qkv_bias, tie_weights)  (provided)
    LayerNorm(emb_dim, eps=1e-5): weight, bias
    gelu(x) -> Tensor
    FeedForward(cfg): fc, proj
    TransformerBlock(cfg): norm1, attn (MultiHeadAttention, provided), norm2, ff, drop_resid
    GPTModel(cfg): cfg, tok_emb, pos_emb, drop_emb, blocks, final_norm, out_head      forward(idx) -> logits
    gpt2_checkpoint(name_or_path) -> (GPTConfig, state_dict)                                          (provided)
    load_gpt2_weights(model, state_dict) -> model
    generate(model, input_ids, max_new_tokens, temperature=1.0, top_k=None, generator=None, eos_token_id=None)

Modules are built from a seed, their parameters optionally replaced by seeded random values (so that LayerNorm's
ones and zeros cannot hide a swapped weight and bias), run on inputs the check chose, and reported as plain
tensors: outputs, parameters by name, gradients. The checks compute their references from those parameters.
"""
from __future__ import annotations

import tempfile
from types import SimpleNamespace

import torch
from torch import nn

from course_tests import models
from course_tests.adapters.attention import _module, forward_twice
from course_tests.adapters.setup import run_generate
from gradebox.tensors import make_generator, probe_loss


def config(student, cfg: dict):
    return student.call("GPTConfig", **cfg)


def randomize_(module: nn.Module, seed: int) -> None:
    """Replace every parameter in place (ties survive) by seeded values of a scale that keeps activations near 1."""
    gen = make_generator(seed)
    with torch.no_grad():
        for _, p in sorted(module.named_parameters(), key=lambda item: item[0]):
            fan_in = p.shape[-1] if p.dim() > 1 else 4.0
            p.copy_(torch.randn(p.shape, generator=gen) / fan_in ** 0.5)


def _report(module: nn.Module, out, backward: bool) -> dict:
    result = {"output": out.detach() if isinstance(out, torch.Tensor) else out,
              "parameters": {n: p.detach().float().cpu().clone() for n, p in module.named_parameters()},
              "devices": sorted({str(t.device.type) for t in [*module.parameters(), *module.buffers()]})}
    if backward:
        probe_loss(out).backward()
        result["grads"] = {n: None if p.grad is None else p.grad.detach().float().cpu().clone()
                           for n, p in module.named_parameters()}
    return result


def run_module(student, name: str, x: torch.Tensor, device: str, cfg: dict | None = None, args: tuple = (),
               seed: int = 0, randomize: bool = True, train: bool = False, backward: bool = False,
               dtype=torch.float32, dropout_seed: int = 0) -> dict:
    """Build `name` (from a GPTConfig made of `cfg`, or from `args`), run it once on x, report everything."""
    module = _module(student, name, (config(student, cfg),) if cfg is not None else args, {}, seed, device, dtype)
    if randomize:
        randomize_(module, seed + 1)
    module.train(train)
    inputs = (x.to(device=device, dtype=dtype) if x.is_floating_point() else x.to(device)).detach().clone()
    if backward and inputs.is_floating_point():
        inputs.requires_grad_(True)
    torch.manual_seed(dropout_seed)
    out = module(inputs)
    result = _report(module, out, backward)
    if backward and inputs.is_floating_point():
        result["input_grad"] = None if inputs.grad is None else inputs.grad.detach().cpu()
    result["tied"] = (getattr(getattr(module, "out_head", None), "weight", None) is
                      getattr(getattr(module, "tok_emb", None), "weight", 0))
    return result


def run_module_twice(student, name: str, x: torch.Tensor, device: str, cfg: dict, train: bool,
                     seed: int = 0) -> list[torch.Tensor]:
    """Two forward passes of one module on the same input, with different global random states."""
    return forward_twice(_module(student, name, (config(student, cfg),), {}, seed, device), x, device, train)


def build_module(student, name: str, cfg: dict, meta: bool = False) -> dict:
    """Only construct it (on the meta device: shapes without memory) and report its parameters' sizes."""
    cfg_obj = config(student, cfg)
    if meta:
        with torch.device("meta"):
            module = student.call(name, cfg_obj)
    else:
        module = student.call(name, cfg_obj)
    return {"numel": {n: p.numel() for n, p in module.named_parameters()},
            "shapes": {n: tuple(p.shape) for n, p in module.named_parameters()},
            "total": sum(p.numel() for p in module.parameters())}


def gelu(student, x: torch.Tensor, device: str, backward: bool = False) -> dict:
    inputs = x.to(device).detach().clone().requires_grad_(backward)
    before = inputs.detach().clone()
    out = student.call("gelu", inputs)
    result = {"output": out.detach() if isinstance(out, torch.Tensor) else out,
              "input_changed": not torch.equal(inputs.detach(), before)}
    if backward:
        probe_loss(out).backward()
        result["grad"] = None if inputs.grad is None else inputs.grad.detach()
    return result


# --- loading checkpoints ----------------------------------------------------------------------------------------
def load_checkpoint(student, spec: dict, ids: torch.Tensor, device: str, seed: int, n_layers: int | None = None)\
        -> dict:
    """Save a random GPT-2 (models.tiny_gpt2 from `seed`, `spec`) with transformers, read it back with the
    notebook's gpt2_checkpoint, load it into a GPTModel whose parameters start as NaN, return its logits on ids.
    `n_layers` builds the student's model with another number of blocks than the checkpoint."""
    hf = models.tiny_gpt2(seed=seed, **spec)
    with tempfile.TemporaryDirectory() as folder, models.quiet_transformers():
        hf.save_pretrained(folder)
        cfg, state_dict = student.call("gpt2_checkpoint", folder)
    if n_layers is not None:
        cfg.n_layers = n_layers
    model = student.call("GPTModel", cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    model = student.call("load_gpt2_weights", model, state_dict)
    if not isinstance(model, nn.Module):
        raise TypeError(f"load_gpt2_weights must return the model, got {type(model).__name__}")
    model = model.to(device).eval()
    with torch.no_grad():
        logits = model(ids.to(device))
    return {"logits": logits, "not_loaded": [n for n, p in model.named_parameters() if torch.isnan(p).any()],
            "tied": model.out_head.weight is model.tok_emb.weight}


# --- generation: the checks of assignment 1, on a model that answers like the student's GPTModel -------------
class LogitsModel(nn.Module):
    """A Hugging Face GPT-2 behind GPTModel's interface: model(ids) -> logits, model.cfg.context_length."""

    def __init__(self, hf):
        super().__init__()
        self.hf, self.cfg = hf, SimpleNamespace(context_length=hf.config.n_positions)

    def forward(self, ids):
        if ids.shape[1] > self.cfg.context_length:
            raise IndexError(f"{ids.shape[1]} tokens, but the context length is {self.cfg.context_length}")
        return self.hf(ids).logits


def generate(student, model_spec: dict, input_ids: torch.Tensor, device: str, max_new_tokens: int, **options) -> dict:
    model = LogitsModel(models.tiny_gpt2(device=device, **model_spec))
    return run_generate(student, model, input_ids, device, max_new_tokens, **options)
