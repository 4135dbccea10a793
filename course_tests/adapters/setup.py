"""Adapters for 01_setup. Student signatures (as the notebook states them):

    count_parameters(model, trainable_only=False) -> int
    greedy_next_token(logits) -> LongTensor (batch,)
    apply_temperature(logits, temperature) -> Tensor
    top_k_filter(logits, k) -> Tensor
    sample_next_token(logits, temperature=1.0, top_k=None, generator=None) -> LongTensor (batch,)
    generate(model, input_ids, max_new_tokens, temperature=1.0, top_k=None, generator=None,
             eos_token_id=None) -> LongTensor (batch, seq + new)
"""
from __future__ import annotations

import torch
# The notebooks of 01 and 04 import these: imported here, before the box says it is ready, a notebook loaded again
# after a crash (a fork of the box's keeper, gradebox.child) finds them imported, seconds sooner.
import transformers.models.gpt2.modeling_gpt2  # noqa: F401

from course_tests import models


def count_parameters(student, model_spec: dict, trainable_only: bool = False, freeze: tuple = (),
                     meta: bool = False):
    model = models.meta_gpt2(**model_spec) if meta else models.tiny_gpt2(**model_spec)
    for name, p in model.named_parameters():
        if name.startswith(tuple(freeze)):
            p.requires_grad_(False)
    return student.call("count_parameters", model, trainable_only=trainable_only)


def _elementwise(student, name: str, logits: torch.Tensor, device: str, *args) -> dict:
    """Call a logits -> logits function and report whether it wrote into its input."""
    x = logits.to(device)
    before = x.clone()
    out = student.call(name, x, *args)
    return {"output": out, "input_changed": not torch.equal(x, before)}


def greedy_next_token(student, logits: torch.Tensor, device: str):
    return student.call("greedy_next_token", logits.to(device))


def apply_temperature(student, logits: torch.Tensor, temperature: float, device: str) -> dict:
    return _elementwise(student, "apply_temperature", logits, device, temperature)


def top_k_filter(student, logits: torch.Tensor, k: int, device: str) -> dict:
    return _elementwise(student, "top_k_filter", logits, device, k)


def sample_next_token(student, logits: torch.Tensor, device: str, temperature: float = 1.0, top_k=None,
                      seed: int | None = None, global_seed: int | None = None):
    generator = None if seed is None else torch.Generator(device=device).manual_seed(seed)
    if global_seed is not None:  # disturb the global RNG: a correct sampler must not depend on it
        torch.manual_seed(global_seed)
    return student.call("sample_next_token", logits.to(device), temperature=temperature, top_k=top_k,
                        generator=generator)


def generate(student, model_spec: dict, input_ids: torch.Tensor, device: str, max_new_tokens: int, **options) -> dict:
    return run_generate(student, models.tiny_gpt2(device=device, **model_spec), input_ids, device, max_new_tokens,
                        **options)


def run_generate(student, model, input_ids: torch.Tensor, device: str, max_new_tokens: int, temperature: float = 0.0,
                 top_k=None, seed: int | None = None, eos_token_id=None, global_seed: int | None = None) -> dict:
    """The student's generate on `model`; 04_gpt runs the same checks with a model shaped like its GPTModel."""
    ids = input_ids.to(device)
    before = ids.clone()
    generator = None if seed is None else torch.Generator(device=device).manual_seed(seed)
    if global_seed is not None:  # disturb the global RNG: a correct generate must not depend on it
        torch.manual_seed(global_seed)
    out = student.call("generate", model, ids, max_new_tokens, temperature=temperature, top_k=top_k,
                       generator=generator, eos_token_id=eos_token_id)
    return {"output": out, "input_changed": not torch.equal(ids, before)}
