"""Stage 1: find every submission, refuse what is not plain files, and sanitize the rest in memory exactly as
`nbgrader autograde` will.

A submission that is or holds a symbolic link, a device, a FIFO or a socket, or whose notebook is over the size
limit, is refused for that student before anything opens it (nbgrader included: `refused` pairs are left out of
its runs), with a message saying what to do. The preprocessors are those of nbgrader_config.py (locked cells
restored from the gradebook's checksums, deleted test cells put back, duplicate grade ids dropped); the gradebook
is only read and submissions are never written.
"""
from __future__ import annotations

import os
import stat
from functools import lru_cache
from pathlib import Path

from gradebox import notebooks
from trailblaze.coursedir import REPO, CourseDirectory


def submissions(course: CourseDirectory, assignments: list[str]) -> list[tuple[str, str]]:
    """(student, assignment) for every submission folder."""
    return [(s, a) for a in assignments for s in course.students() if course.submission(s, a).is_dir()]


def _not_plain(path: Path, shown: str) -> str | None:
    """Why `path` (neither followed nor opened) is not a plain file or folder; None when it is one."""
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        return f"{shown} is a symbolic link: submit the notebook itself, not a link to it"
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return f"{shown} is not a plain file (a device, FIFO or socket): submit only the notebook and plain files"
    return None


def refusal(course: CourseDirectory, student: str, assignment: str, max_notebook_mb: float) -> str | None:
    """Why this submission is refused before anything opens it, or None. Nothing is followed or read: only lstat.

    >>> refusal(course, "alice", "01_setup", 20.0)   # alice/01_setup/setup.ipynb links to /etc/passwd
    'setup.ipynb is a symbolic link: submit the notebook itself, not a link to it'
    """
    folder = course.submission(student, assignment)
    for path in (folder.parent, folder):
        why = _not_plain(path, f"the folder {path.relative_to(course.submitted)}")
        if why:
            return why
    for root, dirs, files in os.walk(folder):  # never follows links: a linked folder is listed, then refused
        for name in sorted(dirs + files):
            why = _not_plain(Path(root) / name, str((Path(root) / name).relative_to(folder)))
            if why:
                return why
    notebook = course.submitted_notebook(student, assignment)
    size = notebook.stat().st_size if notebook.exists() else 0
    if size > max_notebook_mb * 2**20:
        return (f"{notebook.name} is {size / 2**20:.0f} MB, over the course's limit of {max_notebook_mb:g} MB: "
                "clear its outputs (Edit > Clear Outputs of All Cells), save, and submit again")
    return None


def refused(course: CourseDirectory, assignments: list[str], max_notebook_mb: float) -> dict[tuple[str, str], str]:
    """(student, assignment) -> why, for every refused submission."""
    reasons = {pair: refusal(course, *pair, max_notebook_mb) for pair in submissions(course, assignments)}
    return {pair: why for pair, why in reasons.items() if why}


@lru_cache(maxsize=1)
def nbgrader_config():
    from traitlets.config.loader import PyFileConfigLoader
    return PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()


def sanitize(nb, course: CourseDirectory, student: str, assignment: str):
    """The notebook as `nbgrader autograde` will grade it."""
    config = nbgrader_config()
    resources = {"nbgrader": {"student": student, "assignment": assignment,
                              "notebook": course.notebook_name(assignment).removesuffix(".ipynb"),
                              "db_url": course.db_url}}
    for preprocessor in config.Autograde.sanitize_preprocessors:
        nb, resources = preprocessor(config=config).preprocess(nb, resources)
    return nb


def sanitized(course: CourseDirectory, student: str, assignment: str):
    """The sanitized submission, or None where nbgrader cannot read it either (why_not_graded says why)."""
    try:
        return sanitize(notebooks.read(course.submitted_notebook(student, assignment)), course, student, assignment)
    except Exception:  # unreadable, or nbgrader refuses it: nbgrader fails on it too, and the reason is reported
        return None


def why_not_graded(course: CourseDirectory, student: str, assignment: str, max_notebook_mb: float = 20.0) -> str:
    """A reason a person can act on, where we can tell; otherwise a pointer to the log."""
    why = refusal(course, student, assignment, max_notebook_mb) if course.submission(student, assignment).exists() \
        else None
    if why:
        return f"refused: {why}"
    if assignment not in course.assignments():
        return f"{assignment} is not an assignment of this course (source/ has {', '.join(course.assignments())})"
    expected = course.submitted_notebook(student, assignment)
    if not expected.exists():
        found = ", ".join(p.name for p in expected.parent.glob("*.ipynb")) or "no notebook"
        return f"{expected.name} is missing from the submission (found: {found})"
    try:
        notebooks.read(expected)
    except notebooks.NotebookError as err:
        return str(err)
    return f"nbgrader could not process it; see {course.nbgrader_log}"
