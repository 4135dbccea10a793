"""Stage 4: the stored results become the gradebook's grades.

`nbgrader autograde` runs once for all assignments, with BoxedGrades (trailblaze/nbgrader_ext.py) in place of its
Execute: each test cell gets its PASS/FAIL report and its score as outputs, so the gradebook, the formgrader,
feedback and `nbgrader export` work as usual. No cell is executed. One process writes the gradebook (SQLite has a
single writer), and it imports no check unless a notebook has no stored result (then it is graded on the spot:
a plain `nbgrader autograde` from the formgrader lands there).
"""
from __future__ import annotations

from gradebox import notebooks
from trailblaze.coursedir import CourseDirectory
from trailblaze.nbgrader_cli import Nbgrader
from trailblaze.options import GradingOptions
from trailblaze.secret import inputs_key
from trailblaze.stages.store import Result, ResultStore, result_key


def record(assignments: list[str], nbgrader: Nbgrader,
           refused: frozenset[tuple[str, str]] = frozenset()) -> list[tuple[str, str]]:
    """(student, assignment) pairs that nbgrader could not process; the `refused` ones are left out."""
    return nbgrader.over("autograde", assignments, "--force", refused=refused)


def enroll(course: CourseDirectory, students: set[str]) -> None:
    """Put students in the gradebook, so that `nbgrader export` gives them a row (0 for what was never recorded):
    a student whose only submission was refused is never seen by nbgrader itself."""
    if not students:
        return
    from nbgrader.api import Gradebook
    with Gradebook(course.db_url) as gradebook:
        for student in sorted(students):
            gradebook.update_or_create_student(student)


def stored_or_graded(course: CourseDirectory, nb, student: str, assignment: str, options: GradingOptions,
                     say=print) -> Result:
    """The stored result for this exact (sanitized) notebook; graded now, in a box, where there is none."""
    store = ResultStore(course)
    key = result_key(assignment, notebooks.implementation_sources(nb), options.resolved(),
                     inputs_key(course, student, assignment))
    result = store.load(assignment, student, key)
    if result is None:
        say(f"no prepared result for {student}/{assignment}: grading it now, in a box")
        from trailblaze.stages import check  # the checks import torch and transformers: only when needed
        result = check.grade_now(course, nb, student, assignment, options, store)
    return result
