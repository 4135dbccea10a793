"""Stage 5: one HTML feedback page per student and assignment (`nbgrader generate_feedback`), all assignments in
one nbgrader process (on 2 CPUs, 2x faster than a process per assignment, even run two at a time)."""
from __future__ import annotations

from trailblaze.nbgrader_cli import Nbgrader


def feedback(assignments: list[str], nbgrader: Nbgrader,
             refused: frozenset[tuple[str, str]] = frozenset()) -> list[tuple[str, str]]:
    """(student, assignment) pairs that nbgrader could not process; the `refused` ones are left out."""
    return nbgrader.over("generate_feedback", assignments, "--force", refused=refused)
