"""Planted bugs: plausible wrong implementations, declared per assignment in course_tests/mutants/<assignment>.toml.

    [[mutant]]
    id = "greedy_argmin"                       # unique within the assignment
    cell = "greedy_next_token"                 # grade_id of the solution cell it edits
    why = "picks the lowest logit"             # the mistake, in words
    replace = [["argmax(dim=-1)", "argmin(dim=-1)"]]   # each old text must occur exactly once in that cell
    killed_by = ["greedy_picks_highest"]       # checks expected to catch it (verified by the meta-test)

    [samples]
    partly_wrong = ["greedy_argmin", ...]      # the mutants that make the pipeline's partly wrong sample student
"""
from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass
from pathlib import Path

from gradebox import notebooks
from trailblaze.assignments import Assignment


@dataclass(frozen=True)
class Mutant:
    assignment: str
    id: str
    cell: str
    why: str
    replace: tuple[tuple[str, str], ...]
    killed_by: tuple[str, ...]


def _load(path: Path, assignment: str) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"{assignment} has no planted bugs: {path} is missing "
                                f"(`python3 course.py new {assignment}` makes one from a template)")
    return tomllib.loads(path.read_text())


def parse(path: Path, assignment: str) -> list[Mutant]:
    """The planted bugs declared in one file."""
    mutants = [Mutant(assignment, m["id"], m["cell"], m["why"], tuple(tuple(r) for r in m["replace"]),
                      tuple(m.get("killed_by", ()))) for m in _load(path, assignment).get("mutant", [])]
    ids = [m.id for m in mutants]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"{path.name}: duplicate mutant ids {sorted(duplicates)}")
    return mutants


def load(assignment: str) -> list[Mutant]:
    return parse(Assignment(assignment).mutants_file, assignment)


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
