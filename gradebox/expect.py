"""Expectations that checks are written with, and the tolerances they compare under.

Messages go from the simplest property to the full comparison, name the likely cause, and never print a hidden
input or an expected value: shapes, dtypes and counts only.
"""
from __future__ import annotations

import torch

from gradebox.student import StudentError


class CheckFailure(AssertionError):
    """What the student sees when a check fails."""


def fail(message: str):
    raise CheckFailure(message)


def expect(condition: bool, message: str) -> None:
    if not condition:
        fail(message)


# (rtol, atol) per dtype and device type. CUDA kernels sum in other orders than the CPU's, hence looser.
TOLERANCES = {
    (torch.float32, "cpu"): (1e-5, 1e-6),
    (torch.float32, "cuda"): (1e-4, 1e-5),
    (torch.float64, "cpu"): (1e-10, 1e-12),
    (torch.float64, "cuda"): (1e-9, 1e-11),
    (torch.float16, "cuda"): (1e-2, 1e-3),
    (torch.bfloat16, "cuda"): (2e-2, 1e-2),
    (torch.bfloat16, "cpu"): (2e-2, 1e-2),
}


def tolerance(dtype: torch.dtype, device: str) -> tuple[float, float]:
    return TOLERANCES[(dtype, torch.device(device).type)]


def describe_shape_mismatch(got: tuple, want: tuple) -> str:
    """In words, for a student.

    >>> describe_shape_mismatch((2, 3, 1), (2, 3))
    'it has an extra axis of size 1 at the end (keepdim=True, or a missing .squeeze(-1)?)'
    """
    if len(got) == len(want) + 1 and got[-1] == 1 and got[:-1] == want:
        return "it has an extra axis of size 1 at the end (keepdim=True, or a missing .squeeze(-1)?)"
    if len(got) != len(want):
        return f"it has {len(got)} axes where {len(want)} are expected"
    axes = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    return "axis " + ", ".join(f"{i} has size {got[i]} instead of {want[i]}" for i in axes)


def expect_tensor(x, what: str, *, shape=None, dtype=None, device=None) -> torch.Tensor:
    """Exact type (no subclasses that lie in comparisons), then shape, dtype and device."""
    if type(x) is not torch.Tensor:
        fail(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if shape is not None and tuple(x.shape) != tuple(shape):
        fail(f"{what} has shape {tuple(x.shape)}, expected {tuple(shape)}: "
             f"{describe_shape_mismatch(tuple(x.shape), tuple(shape))}")
    if dtype is not None and x.dtype != dtype:
        fail(f"{what} has dtype {x.dtype}, expected {dtype}")
    if device is not None and x.device.type != torch.device(device).type:
        fail(f"{what} is on {x.device}, but the inputs were on {device}: create new tensors with "
             "device=inputs.device (or torch.*_like) instead of the default device")
    return x


def expect_close(actual: torch.Tensor, expected: torch.Tensor, what: str, device: str, hint: str = "",
                 sum_of_many: bool = False, scale: float | None = None) -> None:
    """Elementwise comparison with the tolerance stated for this dtype and device; NaN never passes.

    sum_of_many: the entries are long sums whose rounding depends on the order of summation (gradients through a
    whole model): atol is raised to rtol x `scale`, the size of the terms summed (default: the largest |expected|
    entry), so tiny entries compare on the scale of what was added up to make them.
    """
    actual, expected = actual.detach().cpu(), expected.detach().cpu()
    if actual.is_floating_point() and torch.isnan(actual).any() and not torch.isnan(expected).any():
        fail(f"{what} contains NaN" + (f": {hint}" if hint else ""))
    rtol, atol = tolerance(expected.dtype, device) if expected.is_floating_point() else (0.0, 0.0)
    if sum_of_many and expected.numel():
        atol = max(atol, rtol * (expected.abs().max().item() if scale is None else scale))
    if not torch.allclose(actual.to(expected.dtype), expected, rtol=rtol, atol=atol, equal_nan=False):
        bad = ~torch.isclose(actual.to(expected.dtype), expected, rtol=rtol, atol=atol)
        fail(f"{what}: {int(bad.sum())} of {bad.numel()} entries differ from the reference "
             f"(rtol={rtol:g}, atol={atol:g})" + (f": {hint}" if hint else ""))


def expect_gradients(grads: dict, reference: dict, device: str, what: str) -> None:
    """Every parameter got a gradient, equal to its reference's. `grads`: name -> the student's gradient (None when
    none reached it); `reference`: name -> the reference's parameter, its .grad filled by autograd.

    Rounding is judged on the scale of the largest reference gradient: some gradients are zero in exact arithmetic
    (a key bias adds the same score to a whole row, which softmax ignores), so what any correct implementation
    leaves in them is rounding noise of the sums that made the others.
    """
    rtol = tolerance(torch.float32, device)[0]
    scale = max((p.grad.abs().max().item() for p in reference.values() if p.grad is not None), default=0.0)
    none = [n for n, p in reference.items() if grads.get(n) is None or (
        not grads[n].abs().sum() > 0 and p.grad is not None and p.grad.abs().max().item() > rtol * scale)]
    expect(not none, f"no gradient reaches {none}: {what}")
    for n, p in reference.items():
        expect_close(grads[n], p.grad, f"the gradient of {n}", device, sum_of_many=True, scale=scale)


def expect_raises(impl, type_name: str, adapter: str, *args, what: str, why: str, works: tuple | None = None,
                  **kwargs) -> StudentError:
    """The adapter call must make the student's code raise `type_name`; returns the error (its message, say).

    `works`: (args, kwargs) of a call of the same adapter on good input, made first: code that raises for every
    input must not earn the point for raising on bad input."""
    if works is not None:
        try:
            impl.call(adapter, *works[0], **works[1])
        except StudentError as err:
            if err.absent:
                raise
            fail(f"{what} must raise {type_name}, but only for bad input: on good input it raised {err.type_name} "
                 "too")
    try:
        impl.call(adapter, *args, **kwargs)
    except StudentError as err:
        if err.absent:
            raise
        expect(err.type_name == type_name, f"{what} raised {err.type_name}; it should raise {type_name} ({why})")
        return err
    fail(f"{what} returned normally; it should raise {type_name} ({why})")


def expect_int(x, what: str) -> int:
    if type(x) is not int:
        fail(f"{what} must be a Python int, got {type(x).__name__}" +
             (" (call .item() on a one-element tensor)" if isinstance(x, torch.Tensor) else ""))
    return x
