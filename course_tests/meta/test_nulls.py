"""Checks fail for nothing: a notebook whose every function and class is a non-solution scores zero on every check.

Planted bugs prove the checks catch plausible wrong code; these prove that no check passes for code that does no
work at all: it raises the very exception the contracts name (ValueError) for every input, returns None, returns
its first argument unchanged, or returns zeros, a constant or random values of its input's shape and dtype (a module:
a forward pass that does so). A check that asks for "raises ValueError on bad input" first proves the function works
on good input (gradebox.expect.expect_raises(works=...)); one that asks that the input be left alone first proves the
output is right.
"""
from __future__ import annotations

import pytest

from course_tests import adapters_for
from course_tests.meta.conftest import META_SECRET, with_solutions_replaced
from gradebox import notebooks
from gradebox.checks import checks_for
from gradebox.inputs import PUBLIC, student_key
from gradebox.runner import run_check
from gradebox.student import load_cells
from trailblaze.coursedir import COURSE

NULLS = {
    "raises ValueError": "def _replacement(name, index):\n    def null(*args, **kwargs):\n"
                         "        raise ValueError(name)\n    return null",
    "returns None": "def _replacement(name, index):\n    return lambda *args, **kwargs: None",
    "returns its input": "def _replacement(name, index):\n    return lambda *args, **kwargs: args[0] if args else None",
}

# Values of the right shape and dtype that hold nothing: for a function, shaped like its first tensor argument (a
# number when it has none); for a module, a forward pass that returns such a value, with one parameter.
FILLED = '''
import random as _random
import torch as _torch


def _fill(x):
    if not isinstance(x, _torch.Tensor):
        return {fill_number}
    return {fill_tensor}


def _replacement(name, index):
    original = globals()[name]
    if isinstance(original, type) and issubclass(original, _torch.nn.Module):
        class Null(_torch.nn.Module):
            def __init__(self, *args, **kwargs):
                super().__init__()
                self.weight = _torch.nn.Parameter(_torch.ones(1))

            def forward(self, *args, **kwargs):
                return _fill(next((a for a in args if isinstance(a, _torch.Tensor)), None))
        return Null

    def null(*args, **kwargs):
        return _fill(next((a for a in args if isinstance(a, _torch.Tensor)), None))
    return null
'''
NULLS.update({
    "returns zeros": FILLED.format(fill_number="0", fill_tensor="_torch.zeros_like(x)"),
    "returns a constant": FILLED.format(fill_number="0.5", fill_tensor="_torch.full_like(x, 1 if not "
                                                                       "x.is_floating_point() else 0.5)"),
    "returns random values": FILLED.format(
        fill_number="_random.random()",
        fill_tensor="_torch.rand_like(x) if x.is_floating_point() else _torch.randint_like(x, 0, 10)"),
})


@pytest.mark.parametrize("drawn", ["as written", "for a student"])
@pytest.mark.parametrize("assignment", COURSE.assignments())
def test_no_check_passes_for_a_null_implementation(assignment, drawn):
    """On the inputs as the checks write them, and on a student's (gradebox.inputs)."""
    key = PUBLIC if drawn == "as written" else student_key(META_SECRET, "nulls", assignment)
    source = notebooks.read(COURSE.source_notebook(assignment))
    passing = {}
    for null, definition in NULLS.items():
        nb, names = with_solutions_replaced(source, definition)
        impl = load_cells(nb, assignment, adapters_for(assignment))
        assert names and not impl.load_errors, impl.load_errors
        passing[null] = [c.name for c in checks_for(assignment) if run_check(c, impl, "cpu", key).passed]
    assert not any(passing.values()), f"checks that pass for code that does nothing: {passing}"
