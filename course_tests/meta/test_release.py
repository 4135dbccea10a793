"""release/ is exactly what the pipeline (nbgrader generate_assignment) makes from source/ today, and it leaks no
solution or hidden test."""
from __future__ import annotations

import re

import pytest

from gradebox import notebooks
from trailblaze.coursedir import COURSE, REPO

REGIONS = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1", re.S)


def files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("assignment", COURSE.assignments())
def test_release_matches_what_the_pipeline_makes(assignment, graded_class):
    """The graded class was released by the main job's own release step, from a copy of source/."""
    fresh, committed = files(graded_class.course.release / assignment), files(COURSE.release / assignment)
    assert fresh.keys() == committed.keys(), "release/ has other files than nbgrader generates"
    stale = [str(name) for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"release/{assignment} is stale: run `python3 course.py grade` and commit release/ ({stale})"


def secret_lines(nb) -> set[str]:
    """Lines inside solution and hidden-test regions that do not also appear in the notebook's provided code."""
    secret, public = set(), set()
    for cell in nb.cells:
        regions = REGIONS.findall(cell.source)
        for _, body in regions:
            secret |= {line.strip() for line in body.splitlines() if line.strip()}
        public |= {line.strip() for line in REGIONS.sub("", cell.source).splitlines() if line.strip()}
    return secret - public


def lines(source: str) -> set[str]:
    return {line.strip() for line in source.splitlines() if line.strip()}


def carried_lines(assignment: str) -> set[str]:
    """The code an assignment ships from earlier ones (cells tagged carried-forward): public in its release."""
    nb = notebooks.read(COURSE.source_notebook(assignment))
    return set().union(*(lines(c.source) for c in nb.cells if notebooks.CARRIED_TAG in notebooks.tags(c)))


def test_no_solution_or_hidden_test_line_in_release():
    secret = {a: secret_lines(notebooks.read(COURSE.source_notebook(a))) for a in COURSE.assignments()}
    secrets = set().union(*secret.values())
    assert secrets, "found no solution or hidden-test lines at all: the regex is broken"
    leaks = []
    for path in sorted(COURSE.release.rglob("*")):
        if path.is_file():
            assignment = path.relative_to(COURSE.release).parts[0]
            text = lines(path.read_text(errors="replace"))
            leaks += [f"{path.relative_to(REPO)}: {line}"
                      for line in sorted((secrets - carried_lines(assignment)) & text)]
    assert not leaks, "solution or hidden-test code in release/:\n" + "\n".join(leaks)


@pytest.mark.parametrize("assignment", COURSE.assignments())
def test_carried_code_comes_from_earlier_assignments_and_says_so(assignment):
    """Carried-forward cells name their assignment and hold no solution line of this or a later assignment."""
    earlier = COURSE.assignments()[:COURSE.assignments().index(assignment)]
    not_yet_due = set().union(*(secret_lines(notebooks.read(COURSE.source_notebook(a)))
                                for a in COURSE.assignments() if a not in earlier))
    nb = notebooks.read(COURSE.source_notebook(assignment))
    for cell in nb.cells:
        if notebooks.CARRIED_TAG not in notebooks.tags(cell):
            continue
        first = cell.source.splitlines()[0]
        named = [a for a in earlier if f"({a})" in first]
        assert first.startswith("# From assignment") and named, \
            f"{notebooks.grade_id(cell)}: the first line must say '# From assignment N (NN_name)': {first!r}"
        assert notebooks.kind(cell) == "provided" and notebooks.nbgrader_meta(cell).get("locked"), \
            f"{notebooks.grade_id(cell)}: carried code is a locked provided cell"
        early = lines(cell.source) & not_yet_due
        assert not early, f"{notebooks.grade_id(cell)} ships solution lines of this or a later assignment: {early}"


def test_leak_check_would_catch_a_leak(tmp_path):
    """The leak test is only worth something if it fails on a leaking notebook."""
    nb = notebooks.read(COURSE.source_notebook(COURSE.assignments()[0]))
    leaked = {line.strip() for c in nb.cells for line in c.source.splitlines()}
    assert secret_lines(nb) & leaked
