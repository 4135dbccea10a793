"""Adapters for 03_attention. Student signatures (as the notebook states them):

    softmax(x, dim=-1) -> Tensor
    scaled_dot_product_attention(queries, keys, values, mask=None) -> (context, weights)    mask: True = blocked
    causal_mask(seq_len, device=None) -> bool Tensor (seq_len, seq_len)
    CausalSelfAttention(d_in, d_out, context_length, dropout=0.0, qkv_bias=False): W_query, W_key, W_value, mask
    MultiHeadAttention(d_in, d_out, context_length, dropout=0.0, num_heads=2, qkv_bias=False):
        num_heads, head_dim, W_query, W_key, W_value, out_proj, mask

Modules are built from a seed, run on inputs the check chose, and reported as plain tensors: outputs, parameters
(by name), buffers and gradients. The checks compute their references from those parameters.
"""
from __future__ import annotations

import torch

from gradebox.tensors import probe_loss


def softmax(student, x: torch.Tensor, device: str, dim: int = -1) -> dict:
    inputs = x.to(device)
    before = inputs.clone()
    out = student.call("softmax", inputs, dim=dim)
    return {"output": out, "input_changed": not torch.equal(inputs, before)}


def scaled_dot_product_attention(student, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, device: str,
                                 mask: torch.Tensor | None = None, backward: bool = False) -> dict:
    q, k, v = (t.detach().to(device).clone().requires_grad_(backward) for t in (q, k, v))
    result = student.call("scaled_dot_product_attention", q, k, v,
                          mask=None if mask is None else mask.to(device))
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError("scaled_dot_product_attention must return a tuple (context, weights)")
    context, weights = result
    out = {"context": context.detach() if isinstance(context, torch.Tensor) else context,
           "weights": weights.detach() if isinstance(weights, torch.Tensor) else weights}
    if backward:
        probe_loss(context).backward()
        out["grads"] = [None if t.grad is None else t.grad.detach() for t in (q, k, v)]
    return out


def causal_mask(student, seq_len: int, device: str):
    return student.call("causal_mask", seq_len, device=torch.device(device))


def _module(student, name: str, args: tuple, kwargs: dict, seed: int, device: str, dtype=torch.float32):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = student.call(name, *args, **kwargs)
    return module.to(device=device, dtype=dtype)


def attention_module(student, name: str, args: tuple, kwargs: dict, x: torch.Tensor, device: str, seed: int = 0,
                     train: bool = False, backward: bool = False, dtype=torch.float32, dropout_seed: int = 0,
                     moved_mask: bool = False) -> dict:
    """Build `name` (CausalSelfAttention or MultiHeadAttention), run it on x in eval (or train) mode."""
    module = _module(student, name, args, kwargs, seed, device, dtype)
    module.train(train)
    inputs = x.to(device=device, dtype=dtype)
    torch.manual_seed(dropout_seed)
    out = module(inputs)
    result = {"output": out.detach() if isinstance(out, torch.Tensor) else out,
              "parameters": {n: p.detach().float().clone() for n, p in module.named_parameters()},
              "buffers": {n: b.detach().clone() for n, b in module.named_buffers()},
              "attributes": {a: getattr(module, a, None) for a in ("num_heads", "head_dim")}}
    if backward:
        probe_loss(out).backward()
        result["grads"] = {n: None if p.grad is None else p.grad.detach().clone() for n, p in module.named_parameters()}
    return result


def attention_module_twice(student, name: str, args: tuple, kwargs: dict, x: torch.Tensor, device: str,
                           train: bool, seed: int = 0) -> list[torch.Tensor]:
    """Two forward passes of one module on the same input, with different global random states."""
    return forward_twice(_module(student, name, args, kwargs, seed, device), x, device, train)


def forward_twice(module, x: torch.Tensor, device: str, train: bool) -> list[torch.Tensor]:
    """Two forward passes of `module` on x, each after seeding the global random state differently."""
    module.train(train)
    outs = []
    for dropout_seed in (1, 2):
        torch.manual_seed(dropout_seed)
        outs.append(module(x.to(device)).detach())
    return outs


def build_attention_module(student, name: str, args: tuple, kwargs: dict):
    """Only construct it (for constructor errors)."""
    student.call(name, *args, **kwargs)
    return None
