"""What each grade cell's hidden checks verify, written above its hidden part from the checks' own titles, and where
the exercise's own text states it.

    python -m trailblaze.checklists     rewrites the comment of every test cell in source/ (then release again)

A student reads, under each exercise, the list of what will be checked (never an input or an expected value: a
check's title is the first line of its docstring, the same line the feedback prints beside PASS or FAIL). A meta-test
proves every source notebook is in step with the registry.

Every check also names its contract: the phrases of the exercise's text that state what it enforces. The text of an
exercise is what the student reads before the visible test: the notebook's introduction (its first cell, with the
rules for every exercise) and the markdown and solution cells since the previous grade cell, the solution's
docstring included. `unstated` lists the phrases a release notebook does not contain, so a check can never enforce a
requirement the student was not told.
"""
from __future__ import annotations

import re
import textwrap

import course_tests.checks  # noqa: F401  (registers every check)
from gradebox import notebooks
from gradebox.checks import Check, checks_for, exercise
from trailblaze.coursedir import COURSE, CourseDirectory

HIDDEN = "### BEGIN HIDDEN TESTS"
WIDTH = 116


def checklist(assignment: str, grade_id: str) -> str:
    """The comment above a test cell's hidden part, e.g. for 03_attention's softmax_tests:

    # What the hidden checks of softmax verify when your notebook is graded (2 points):
    # - softmax equals torch.softmax along any axis, for huge scores and -inf entries, and leaves its input alone
    # - softmax of a half-precision tensor is computed and returned in that dtype
    """
    checks = checks_for(assignment, grade_id)
    total = sum(c.points for c in checks)
    lines = [f"# What the hidden checks of {exercise(grade_id)} verify when your notebook is graded "
             f"({total:g} point{'s' if total != 1 else ''}):"]
    for check in checks:
        worth = f" ({check.points:g} points)" if check.points != 1 else ""
        lines += textwrap.wrap(check.title + worth, WIDTH, initial_indent="# - ", subsequent_indent="#   ")
    return "\n".join(lines)


def plain(text: str) -> str:
    """Text as a phrase is matched in it: lower case, markdown's `, * and $ and LaTeX's backslashes dropped, runs of
    white space one space. plain("Use **`x.max(dim)`**\\n first") == "use x.max(dim) first"."""
    return re.sub(r"\s+", " ", re.sub(r"[`*$\\]", "", text)).strip().lower()


def exercise_texts(nb) -> dict[str, str]:
    """Each grade cell's grade_id -> the plain text of its exercise (see the module's docstring)."""
    introduction = nb.cells[0].source if nb.cells and nb.cells[0].cell_type == "markdown" else ""
    texts, since = {}, []
    for cell in nb.cells:
        if notebooks.kind(cell) == "test":
            texts[notebooks.grade_id(cell)] = plain("\n".join([introduction, *since]))
            since = []
        elif cell.cell_type == "markdown" or notebooks.kind(cell) == "solution":
            since.append(cell.source)
    return texts


def unstated(assignment: str, nb) -> list[tuple[Check, str]]:
    """The (check, phrase) pairs whose phrase is not in the text of the check's exercise in `nb`, plus (check, "")
    for a check that names no phrase at all."""
    texts, missing = exercise_texts(nb), []
    for check in checks_for(assignment):
        text = texts.get(check.grade_id, "")
        missing += [(check, "")] if not check.contract else [
            (check, phrase) for phrase in check.contract if plain(phrase) not in text]
    return missing


def with_checklist(source: str, assignment: str, grade_id: str) -> str:
    """A test cell's source with its leading comment replaced by the checklist (the hidden part kept as it is)."""
    hidden = source[source.index(HIDDEN):] if HIDDEN in source else ""
    return checklist(assignment, grade_id) + ("\n" + hidden if hidden else "")


def sync(assignment: str, course: CourseDirectory = COURSE) -> bool:
    """Rewrite the test cells of one source notebook; True when something changed."""
    path = course.source_notebook(assignment)
    nb, changed = notebooks.read(path), False
    for cell in nb.cells:
        if notebooks.kind(cell) == "test":
            wanted = with_checklist(cell.source, assignment, notebooks.grade_id(cell))
            if cell.source != wanted:
                cell.source, changed = wanted, True
    if changed:
        notebooks.write(nb, path)
    return changed


if __name__ == "__main__":
    for name in COURSE.assignments():
        print(f"{name}: {'rewritten' if sync(name) else 'in step'}")
