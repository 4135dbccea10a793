"""Stage 6: reports/grades.csv (`nbgrader export`), and the table the grade command prints."""
from __future__ import annotations

import csv
from pathlib import Path

from trailblaze.coursedir import CourseDirectory
from trailblaze.nbgrader_cli import Nbgrader
from trailblaze.stages.store import ResultStore


def export(course: CourseDirectory, nbgrader: Nbgrader) -> dict[str, dict[str, tuple[float, float]]]:
    nbgrader("export", f"--to={course.grades_csv}")
    return read_grades(course.grades_csv)


def read_grades(csv_path: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """student -> assignment -> (score, max_score), from `nbgrader export`."""
    grades: dict = {}
    with csv_path.open() as f:
        for row in csv.DictReader(f):
            grades.setdefault(row["student_id"], {})[row["assignment"]] = (float(row["score"]),
                                                                          float(row["max_score"]))
    return grades


def forbidden_uses(course: CourseDirectory, assignments: list[str]) -> list[tuple[str, str, str, list[str]]]:
    """(student, assignment, grade_id, forbidden names its cell uses), from the stored results."""
    store, uses = ResultStore(course), []
    for assignment in assignments:
        for student in store.students(assignment):
            result = store.load(assignment, student)
            uses += [(student, assignment, grade_id, names)
                     for grade_id, names in sorted((result.forbidden if result else {}).items())]
    return uses


def format_table(grades: dict, assignments: list[str], first: tuple[str, ...] = ()) -> str:
    students = [s for s in first if s in grades] + sorted(set(grades) - set(first))
    header = ["student", *assignments, "total"]
    rows = []
    for student in students:
        cells = [grades[student].get(a, (0.0, 0.0)) for a in assignments]
        total = (sum(c[0] for c in cells), sum(c[1] for c in cells))
        rows.append([student, *(f"{s:g}/{m:g}" for s, m in [*cells, total])])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)) for r in [header, *rows]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])
