"""The check registry.

A *check* is a plain function `(impl, device) -> None` that raises `CheckFailure` (gradebox.expect) with a message
for the student. It declares the nbgrader grade cell it backs, its points, and its *contract*: the phrases of the
exercise's text (as the student reads it in the release notebook) that state what it enforces. pytest and the
hidden part of every grade cell run the same registry (through gradebox.runner), so test logic lives in one place.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Check:
    assignment: str
    grade_id: str
    name: str
    points: float
    func: Callable
    uses_device: bool = True  # False: the check never touches a device (tokenizers), so it runs once, on the CPU
    contract: tuple[str, ...] = ()  # phrases of the exercise's text that state what the check enforces

    @property
    def id(self) -> str:
        return f"{self.assignment}/{self.grade_id}/{self.name}"

    @property
    def title(self) -> str:
        return (self.func.__doc__ or self.name).strip().splitlines()[0]


def exercise(grade_id: str) -> str:
    """The exercise a grade cell checks (its solution cell's grade_id): exercise("softmax_tests") == "softmax"."""
    return grade_id.removesuffix("_tests")


REGISTRY: list[Check] = []
BUILDS_ON: dict[tuple[str, str], tuple[str, ...]] = {}  # (assignment, grade_id) -> the earlier functions it calls


def builds_on(assignment: str, grade_id: str, functions: list[str]) -> None:
    """Declare that a graded function calls earlier ones, so its failures may be inherited from theirs (feedback
    says so), and its visible test may call them too."""
    BUILDS_ON[(assignment, grade_id)] = tuple(functions)


def builds_on_note(assignment: str, grade_id: str) -> str | None:
    """The note feedback shows under a grade cell whose checks failed, when its function builds on others."""
    functions = BUILDS_ON.get((assignment, grade_id))
    return f"note: this function builds on {', '.join(functions)}; if their checks fail too, fix those first" \
        if functions else None


def register(assignment: str, grade_id: str, func: Callable, points: float = 1.0, uses_device: bool = True,
             contract: tuple[str, ...] = ()) -> None:
    """Add `func` to the checks of `assignment`'s grade cell `grade_id`. A later assignment may register a check
    function of an earlier one again when its students write the same function (04_gpt's generate, say): the
    check then runs through that later assignment's adapters, and names the phrases of that assignment's text."""
    if any(c.assignment == assignment and c.name == func.__name__ for c in REGISTRY):
        raise ValueError(f"two checks named {func.__name__} in {assignment}")
    contract = (contract,) if isinstance(contract, str) else tuple(contract)
    REGISTRY.append(Check(assignment, grade_id, func.__name__, float(points), func, uses_device, contract))


def check(grade_id: str, points: float = 1.0, uses_device: bool = True, contract: tuple[str, ...] = ()):
    """Register a check for the grade cell `grade_id` of the assignment named by the module's ASSIGNMENT.

    `contract` names the phrases of the exercise's text that state what the check enforces (a meta-test finds each
    in the release notebook), e.g. @check("causal_mask_tests", contract=("True = blocked",))."""
    def decorate(func):
        register(sys.modules[func.__module__].ASSIGNMENT, grade_id, func, points, uses_device, contract)
        return func
    return decorate


def checks_for(assignment: str, grade_id: str | None = None) -> list[Check]:
    return [c for c in REGISTRY if c.assignment == assignment and grade_id in (None, c.grade_id)]


def devices_for(check: Check, devices: list[str]) -> list[str]:
    """The devices a check runs on: all selected ones, or only the first for a check that uses none."""
    return list(devices) if check.uses_device else list(devices[:1])
