"""The check registry and the expectations checks are written with.

A *check* is a plain function `(impl, device) -> None` that raises `CheckFailure` with a message for the student.
It declares the nbgrader grade cell it backs and its points; pytest (course_tests/test_checks.py) and the hidden
part of every grade cell (course_tests/grading.py) run the same registry, so test logic lives in one place.

Messages go from the simplest property to the full comparison, name the likely cause, and never print a hidden
input or an expected value: shapes, dtypes and counts only.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

import torch

from course_tests.implementation import StudentError


class CheckFailure(AssertionError):
    """What the student sees when a check fails."""


@dataclass(frozen=True)
class Check:
    assignment: str
    grade_id: str
    name: str
    points: float
    func: Callable
    uses_device: bool = True  # False: the check never touches a device (tokenizers), so it runs once, on the CPU

    @property
    def id(self) -> str:
        return f"{self.assignment}/{self.grade_id}/{self.name}"

    @property
    def title(self) -> str:
        return (self.func.__doc__ or self.name).strip().splitlines()[0]


REGISTRY: list[Check] = []
BUILDS_ON: dict[tuple[str, str], str] = {}  # (assignment, grade_id) -> a note shown when that cell's checks fail


def builds_on(assignment: str, grade_id: str, functions: list[str]) -> None:
    """Declare that a graded function calls earlier ones, so its failures may be inherited from theirs."""
    BUILDS_ON[(assignment, grade_id)] = (f"note: this function builds on {', '.join(functions)}; "
                                         "if their checks fail too, fix those first")


def register(assignment: str, grade_id: str, func: Callable, points: float = 1.0, uses_device: bool = True) -> None:
    """Add `func` to the checks of `assignment`'s grade cell `grade_id`. A later assignment may register a check
    function of an earlier one again when its students write the same function (04_gpt's generate, say): the
    check then runs through that later assignment's adapters."""
    if any(c.assignment == assignment and c.name == func.__name__ for c in REGISTRY):
        raise ValueError(f"two checks named {func.__name__} in {assignment}")
    REGISTRY.append(Check(assignment, grade_id, func.__name__, float(points), func, uses_device))


def check(grade_id: str, points: float = 1.0, uses_device: bool = True):
    """Register a check for the grade cell `grade_id` of the assignment named by the module's ASSIGNMENT."""
    def decorate(func):
        register(sys.modules[func.__module__].ASSIGNMENT, grade_id, func, points, uses_device)
        return func
    return decorate


def devices_for(check: Check, devices: list[str]) -> list[str]:
    """The devices a check runs on: all selected ones, or only the first for a check that uses none."""
    return list(devices) if check.uses_device else list(devices[:1])


def fail(message: str):
    raise CheckFailure(message)


def expect(condition: bool, message: str) -> None:
    if not condition:
        fail(message)


# --- devices and tolerances -----------------------------------------------------------------------------------
def available_devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def prepare_device(device: str) -> None:
    """Comparisons on CUDA run in true float32: TF32 would loosen every matmul to ~1e-3."""
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


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


def probe_loss(t: torch.Tensor) -> torch.Tensor:
    """A scalar for gradient checks that weighs every entry differently (a plain sum would hide swapped entries).
    Adapters backpropagate it through student code and checks through the reference: both must use this one."""
    return (t.float() * torch.linspace(-1, 1, t.numel(), device=t.device).reshape(t.shape)).sum()


def make_generator(seed: int) -> torch.Generator:
    """Inputs are always drawn on the CPU and then moved: CPU and CUDA random streams differ."""
    return torch.Generator().manual_seed(seed)


# --- expectations -----------------------------------------------------------------------------------------------
def describe_shape_mismatch(got: tuple, want: tuple) -> str:
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
                 sum_of_many: bool = False) -> None:
    """Elementwise comparison with the tolerance stated for this dtype and device; NaN never passes.

    sum_of_many: the entries are long sums whose rounding depends on the order of summation (gradients through a
    whole model): atol is raised to rtol x the largest |expected| entry, so tiny entries of a big tensor compare
    on the tensor's scale.
    """
    actual, expected = actual.detach().cpu(), expected.detach().cpu()
    if actual.is_floating_point() and torch.isnan(actual).any() and not torch.isnan(expected).any():
        fail(f"{what} contains NaN" + (f": {hint}" if hint else ""))
    rtol, atol = tolerance(expected.dtype, device) if expected.is_floating_point() else (0.0, 0.0)
    if sum_of_many and expected.numel():
        atol = max(atol, rtol * expected.abs().max().item())
    if not torch.allclose(actual.to(expected.dtype), expected, rtol=rtol, atol=atol, equal_nan=False):
        bad = ~torch.isclose(actual.to(expected.dtype), expected, rtol=rtol, atol=atol)
        fail(f"{what}: {int(bad.sum())} of {bad.numel()} entries differ from the reference "
             f"(rtol={rtol:g}, atol={atol:g})" + (f": {hint}" if hint else ""))


def expect_raises(impl, type_name: str, adapter: str, *args, what: str, why: str, **kwargs) -> StudentError:
    """The adapter call must make the student's code raise `type_name`; returns the error (its message, say)."""
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
