"""Forbidden shortcuts (gradebox.forbidden): every library call an exercise forbids is found in a cell that uses
it, under its own name or another, in none of the instructor's solutions, and the policy prices it."""
from __future__ import annotations

import pytest

import course_tests.checks  # noqa: F401  (registers the checks and the forbidden calls)
from course_tests import adversarial
from gradebox import forbidden, notebooks
from trailblaze.coursedir import COURSE, REPO


def solution_cells(assignment: str) -> list[tuple[str, str]]:
    return notebooks.implementation_sources(notebooks.read(COURSE.source_notebook(assignment)))


def test_every_forbidden_call_has_a_shortcut_that_uses_it():
    declared = {name for rule in forbidden.FORBIDDEN for name in rule.names}
    used = {name for _, _, name in adversarial.SHORTCUTS}
    assert declared and declared <= used, f"no adversarial shortcut uses {sorted(declared - used)}"


@pytest.mark.parametrize("shortcut", sorted(adversarial.SHORTCUTS), ids=lambda s: f"{s[1]}:{s[2]}")
def test_a_shortcut_is_found_in_its_exercise(shortcut):
    assignment, cell, name = shortcut
    cells = [(label, adversarial.SHORTCUTS[shortcut] if label == cell else source)
             for label, source in solution_cells(assignment)]
    found = forbidden.found_in(assignment, cells)
    assert name in found.get(f"{cell}_tests", []), found
    assert set(found) == {f"{cell}_tests"}, "only the exercise that uses the shortcut is flagged"


@pytest.mark.parametrize("assignment", COURSE.assignments())
def test_no_solution_uses_a_forbidden_call(assignment):
    assert forbidden.found_in(assignment, solution_cells(assignment)) == {}


def test_the_policy_prices_a_forbidden_call():
    graded = {"earned": 2.0, "total": 2.0, "report": "PASS  softmax equals torch.softmax\n2 of 2 points"}
    flagged = forbidden.apply_policy(graded, ["torch.softmax"], "flag")
    assert flagged["earned"] == 2.0 and "FLAGGED  this exercise forbids torch.softmax" in flagged["report"]
    zeroed = forbidden.apply_policy(graded, ["torch.softmax"], "zero")
    assert zeroed["earned"] == 0.0 and "the cell scores 0" in zeroed["report"]
    with pytest.raises(ValueError, match="unknown policy"):
        forbidden.apply_policy(graded, ["torch.softmax"], "ignore")
    assert 'c.BoxedGrades.forbidden_calls = "flag"' in (REPO / "nbgrader_config.py").read_text()


def test_each_forbidden_call_is_stated_in_its_exercise():
    """A student reads the rule before the grader applies it: each forbidden function's last name (softmax,
    LayerNorm, tiktoken, ...) is in the exercise's own cell of the release notebook."""
    missing = []
    for rule in forbidden.FORBIDDEN:
        cell = notebooks.find_cell(notebooks.read(COURSE.release_notebook(rule.assignment)), rule.cell)
        missing += [f"{rule.assignment}/{rule.cell}: {n}" for n in rule.names
                    if n.rsplit(".", 1)[-1] not in cell.source]
    assert not missing, missing
