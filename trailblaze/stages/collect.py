"""Stage 1: find every submission and sanitize it in memory exactly as `nbgrader autograde` will.

The preprocessors are those of nbgrader_config.py (locked cells restored from the gradebook's checksums, deleted
test cells put back, duplicate grade ids dropped); the gradebook is only read and submissions are never written.
"""
from __future__ import annotations

from functools import lru_cache

from gradebox import notebooks
from trailblaze.coursedir import REPO, CourseDirectory


def submissions(course: CourseDirectory, assignments: list[str]) -> list[tuple[str, str]]:
    """(student, assignment) for every submission folder."""
    return [(s, a) for a in assignments for s in course.students() if course.submission(s, a).is_dir()]


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


def why_not_graded(course: CourseDirectory, student: str, assignment: str) -> str:
    """A reason a person can act on, where we can tell; otherwise a pointer to the log."""
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
