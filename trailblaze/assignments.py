"""One place that knows an assignment's parts.

An assignment `NN_name` is:
    source/NN_name/<notebook>.ipynb      the instructor's notebook (solutions, hidden tests)
    release/NN_name/<notebook>.ipynb     what students get, generated from it by nbgrader and committed
    course_tests/checks/name.py          its checks, each bound to a grade cell and points
    course_tests/adapters/name.py        the only code that calls its student functions
    course_tests/mutants/NN_name.toml    its planted bugs (and the mutants of the partly wrong sample student)
`python3 course.py new NN_name` creates all of them from templates (trailblaze/scaffold.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from course_tests import PACKAGE, short_name
from gradebox import notebooks
from trailblaze.coursedir import COURSE, MUTANTS, CourseDirectory


@dataclass(frozen=True)
class Assignment:
    id: str
    course: CourseDirectory = COURSE

    @property
    def short(self) -> str:
        return short_name(self.id)

    @property
    def source_notebook(self) -> Path:
        return self.course.source_notebook(self.id)

    @property
    def release_notebook(self) -> Path:
        return self.course.release_notebook(self.id)

    @property
    def checks_file(self) -> Path:
        return PACKAGE / "checks" / f"{self.short}.py"

    @property
    def adapters_file(self) -> Path:
        return PACKAGE / "adapters" / f"{self.short}.py"

    @property
    def mutants_file(self) -> Path:
        return MUTANTS / f"{self.id}.toml"

    @property
    def points(self) -> float:
        return sum(notebooks.grade_cells(notebooks.read(self.source_notebook)).values())

    def files(self) -> dict[str, Path]:
        return {"source notebook": self.source_notebook, "release notebook": self.release_notebook,
                "checks": self.checks_file, "adapters": self.adapters_file, "planted bugs": self.mutants_file}


def all_assignments(course: CourseDirectory = COURSE) -> list[Assignment]:
    return [Assignment(a, course) for a in course.assignments()]
