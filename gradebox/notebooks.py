"""Notebooks as data: read them with nbformat and tell their cells apart.

A course notebook has five kinds of code cell:
- solution   nbgrader `solution: true`: the student's code (### BEGIN/END SOLUTION in source/);
- test       nbgrader `grade: true` and not a solution: a graded cell whose hidden part runs the checks;
- visible    locked, ungraded cells tagged `visible-test`: the self-check a student sees after each exercise;
- demo       tagged `demo`: demonstrations (downloads, plots, long runs); nothing later may depend on them;
- provided   everything else: imports and helpers the exercises build on. A provided cell tagged
             `carried-forward` ships working code from an earlier assignment (its first line says which), so a
             mistake there cannot follow a student into this one.
The harness executes solution and provided cells only.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

DEMO_TAG = "demo"
VISIBLE_TEST_TAG = "visible-test"
CARRIED_TAG = "carried-forward"


class NotebookError(Exception):
    """A notebook that cannot be used as it is; the message says what to fix."""


def read(path: Path) -> nbformat.NotebookNode:
    """A notebook from a plain file, opened without following a link (a link, FIFO or device is refused)."""
    import nbformat  # here, not above: the boxed child imports this module, and nbformat would cost it seconds
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise NotebookError(f"{path} does not exist") from None
    except OSError as err:
        raise NotebookError(f"{Path(path).name} cannot be opened as a plain file ({err.strerror}): submit the "
                            "notebook itself, not a link to it") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotebookError(f"{Path(path).name} is not a plain file (a FIFO, device or socket)")
        os.set_blocking(fd, True)
        with os.fdopen(fd, encoding="utf-8") as f:
            fd = None
            nb = nbformat.read(f, as_version=4)
    except NotebookError:
        raise
    except Exception as err:  # invalid JSON, truncated upload, not a notebook at all
        raise NotebookError(f"{Path(path).name} is not a readable Jupyter notebook ({type(err).__name__}: {err}). "
                            "Re-download it from Jupyter (File > Download) and submit again.") from None
    finally:
        if fd is not None:
            os.close(fd)
    return nb


def write(nb: nbformat.NotebookNode, path: Path) -> None:
    import nbformat
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def kind(cell) -> str:
    if cell.cell_type != "code":
        return cell.cell_type
    meta = nbgrader_meta(cell)
    if meta.get("solution"):
        return "solution"
    if meta.get("grade"):
        return "test"
    if VISIBLE_TEST_TAG in tags(cell):
        return "visible"
    if DEMO_TAG in tags(cell):
        return "demo"
    return "provided"


def strip_magics(source: str) -> str:
    """Drop IPython-only lines (%magic, !shell) and whole %%cell-magic cells: plain Python must remain."""
    if source.lstrip().startswith("%%"):
        return ""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


@dataclass(frozen=True)
class CodeCell:
    index: int
    label: str      # a name a person recognises: the grade_id, or "cell 7"
    kind: str
    source: str


def code_cells(nb) -> list[CodeCell]:
    return [CodeCell(i, grade_id(c) or f"cell {i + 1}", kind(c), c.source)
            for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def implementation_cells(nb) -> list[CodeCell]:
    """What the harness runs to get a notebook's implementation: solution and provided cells, magics removed."""
    return [CodeCell(c.index, c.label, c.kind, strip_magics(c.source))
            for c in code_cells(nb) if c.kind in ("solution", "provided")]


def implementation_sources(nb) -> list[tuple[str, str]]:
    """(label, source) of the implementation cells: what a student's code is, for running it or hashing it."""
    return [(c.label, c.source) for c in implementation_cells(nb)]


def grade_cells(nb) -> dict[str, float]:
    """grade_id -> points of every graded cell."""
    return {grade_id(c): float(nbgrader_meta(c)["points"]) for c in nb.cells
            if nbgrader_meta(c).get("grade") and not nbgrader_meta(c).get("solution")}


def find_cell(nb, wanted_grade_id: str):
    for cell in nb.cells:
        if grade_id(cell) == wanted_grade_id:
            return cell
    raise NotebookError(f"no cell with grade_id {wanted_grade_id!r}")
