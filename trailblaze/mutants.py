"""Planted bugs: plausible wrong implementations, declared per assignment in course_tests/mutants/<assignment>.toml.

    [[mutant]]
    id = "greedy_argmin"                       # unique within the assignment
    cell = "greedy_next_token"                 # grade_id of the solution cell it edits
    why = "picks the lowest logit"             # the mistake, in words
    replace = [["argmax(dim=-1)", "argmin(dim=-1)"]]   # each old text must occur exactly once in that cell
    killed_by = ["greedy_picks_highest"]       # checks expected to catch it (verified by the meta-test)

    [[alternative]]
    id = "greedy_by_max"                       # unique within the assignment (mutants' ids included)
    cell = "greedy_next_token"                 # grade_id of the solution cell it replaces, whole
    style = "torch.max(...).indices"           # how it differs from the solution, in words
    source = '''def greedy_next_token(logits): ...'''   # right code in another style: it must pass every check

    [samples]
    partly_wrong = ["greedy_argmin", ...]      # the mutants that make the pipeline's partly wrong sample student

Planted bugs prove that the checks catch wrong code; honest alternatives, that they do not catch right code.
"""
from __future__ import annotations

import copy
import sys
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

import course_tests.checks  # noqa: F401  (registers every check)
from course_tests import adapters_for
from gradebox import notebooks
from gradebox.checks import Check, checks_for
from gradebox.inputs import PUBLIC
from gradebox.runner import run_check
from gradebox.student import Implementation, load_cells
from trailblaze.assignments import Assignment
from trailblaze.coursedir import COURSE


@dataclass(frozen=True)
class Mutant:
    assignment: str
    id: str
    cell: str
    why: str
    replace: tuple[tuple[str, str], ...]
    killed_by: tuple[str, ...]


@dataclass(frozen=True)
class Alternative:
    assignment: str
    id: str
    cell: str
    style: str
    source: str


def _load(path: Path, assignment: str) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"{assignment} has no planted bugs: {path} is missing "
                                f"(`python3 course.py new {assignment}` makes one from a template)")
    return tomllib.loads(path.read_text())


def parse(path: Path, assignment: str) -> list[Mutant]:
    """The planted bugs declared in one file."""
    declared = _load(path, assignment)
    mutants = [Mutant(assignment, m["id"], m["cell"], m["why"], tuple(tuple(r) for r in m["replace"]),
                      tuple(m.get("killed_by", ()))) for m in declared.get("mutant", [])]
    ids = [m.id for m in mutants] + [a["id"] for a in declared.get("alternative", [])]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"{path.name}: duplicate ids {sorted(duplicates)}")
    return mutants


def load(assignment: str) -> list[Mutant]:
    return parse(Assignment(assignment).mutants_file, assignment)


def parse_alternatives(path: Path, assignment: str) -> list[Alternative]:
    """The honest alternatives declared in one file, beside its planted bugs."""
    return [Alternative(assignment, a["id"], a["cell"], a["style"], a["source"].strip() + "\n")
            for a in _load(path, assignment).get("alternative", [])]


def alternatives(assignment: str) -> list[Alternative]:
    return parse_alternatives(Assignment(assignment).mutants_file, assignment)


def substitute(nb, alternative: Alternative):
    """A copy of `nb` with the alternative's cell replaced by its source."""
    nb = copy.deepcopy(nb)
    notebooks.find_cell(nb, alternative.cell).source = alternative.source
    return nb


def partly_wrong(assignment: str) -> list[Mutant]:
    wanted = _load(Assignment(assignment).mutants_file, assignment).get("samples", {}).get("partly_wrong", [])
    by_id = {m.id: m for m in load(assignment)}
    return [by_id[i] for i in wanted]


def apply(nb, mutants: list[Mutant]):
    """A copy of `nb` with each mutant's replacements made in its cell; every old text must occur exactly once."""
    nb = copy.deepcopy(nb)
    for mutant in mutants:
        cell = notebooks.find_cell(nb, mutant.cell)
        for old, new in mutant.replace:
            count = cell.source.count(old)
            if count != 1:
                raise ValueError(f"mutant {mutant.id}: {old!r} occurs {count} times in cell {mutant.cell}, "
                                 "expected exactly once")
            cell.source = cell.source.replace(old, new)
    return nb


def cells_run_by(check: Check, impl: Implementation, device: str = "cpu", key: bytes = PUBLIC) -> set[str]:
    """The labels of the notebook cells whose code runs while `check` grades `impl`, e.g. {"merge_pair", ...}."""
    seen = set()

    def on_call(frame, event, arg):  # returns None: calls are seen, lines are not traced
        if frame.f_code.co_filename.startswith("<cell "):
            seen.add(frame.f_code.co_filename[len("<cell "):-1])

    sys.settrace(on_call)
    threading.settrace(on_call)
    try:
        run_check(check, impl, device, key)
    finally:
        sys.settrace(None)
        threading.settrace(None)
    return seen


def kill_matrix(assignment: str, select: bool = True, device: str = "cpu",
                key: bytes = PUBLIC) -> dict[str, set[str]]:
    """mutant or alternative id -> names of the checks that fail on it, the checks' inputs drawn with `key`
    (gradebox.inputs; PUBLIC: the seeds as written).

    With `select`, a mutant (or alternative) runs only the checks that run its cell's code when they grade the solution (each check
    traced on a fresh load, so that a cache in the solution's code cannot hide a call). A check that never enters
    that cell behaves on the mutant as on the solution until it does, so it passes there too; and a skipped check
    can only remove a kill, never add one: tests built on the matrix can fail, never pass, because of it.
    benchmarks/kill_matrix.py compares both ways.
    """
    source = notebooks.read(COURSE.source_notebook(assignment))
    checks, adapters = checks_for(assignment), adapters_for(assignment)
    warm = load_cells(source, assignment, adapters)
    failing = [c.name for c in checks if not run_check(c, warm, device, key).passed]  # fills the checks' caches too
    if failing:
        raise AssertionError(f"the solution of {assignment} fails {failing}")
    cells = {c.name: cells_run_by(c, load_cells(source, assignment, adapters), device, key) for c in checks} \
        if select else None
    variants = [(m.id, m.cell, apply(source, [m])) for m in load(assignment)]
    variants += [(a.id, a.cell, substitute(source, a)) for a in alternatives(assignment)]
    matrix = {}
    for variant, cell, nb in variants:
        impl = load_cells(nb, assignment, adapters)
        if impl.load_errors:
            raise AssertionError(f"{variant} breaks loading: {impl.load_errors}")
        matrix[variant] = {c.name for c in checks if (cells is None or cell in cells[c.name])
                           and not run_check(c, impl, device, key).passed}
    return matrix
