"""Every path of the course, from one object (as nbgrader's own `CourseDirectory`).

`CourseDirectory(root)` is an nbgrader course directory: the repository itself, or a scratch copy of source/ in
tests. The repository's own parts (the course's checks, the prepared data, the virtualenv) are the constants below.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from course_tests import PACKAGE, datafiles

REPO = PACKAGE.parent
VENV = REPO / ".venv"
MUTANTS = PACKAGE / "mutants"

# Prepared data (gitignored, rebuilt by `python -m trailblaze.data`); the checks find it through course_tests.datafiles.
DATA = REPO / "data"
TIKTOKEN_CACHE = DATA / datafiles.TIKTOKEN
GPT2_FILES = DATA / datafiles.GPT2
CORPUS = DATA / datafiles.CORPUS
DOWNLOADS = DATA / "downloads"


@dataclass(frozen=True)
class CourseDirectory:
    """Only source/ must exist: nbgrader and the grader write the rest (all gitignored but release/)."""
    root: Path = REPO

    @property
    def source(self) -> Path:
        return self.root / "source"

    @property
    def release(self) -> Path:
        return self.root / "release"

    @property
    def submitted(self) -> Path:
        return self.root / "submitted"

    @property
    def autograded(self) -> Path:
        return self.root / "autograded"

    @property
    def feedback(self) -> Path:
        return self.root / "feedback"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def results(self) -> Path:
        """The boxed results, one JSON file per notebook."""
        return self.reports / "results"

    @property
    def grades_csv(self) -> Path:
        return self.reports / "grades.csv"

    @property
    def nbgrader_log(self) -> Path:
        return self.reports / "nbgrader.log"

    @property
    def class_report(self) -> Path:
        """The class report's page; its data files lie beside it (trailblaze.stages.report)."""
        return self.reports / "class" / "index.html"

    @property
    def lms(self) -> Path:
        """Grades for an LMS, one CSV per assignment and LMS (trailblaze.lms)."""
        return self.reports / "lms"

    @property
    def lms_students(self) -> Path:
        """The instructor's map from nbgrader student ids to the LMS's (trailblaze.lms says its columns)."""
        return self.root / "lms_students.csv"

    @property
    def gradebook(self) -> Path:
        return self.root / "gradebook.db"

    @property
    def secret(self) -> Path:
        """The key each student's hidden inputs come from (trailblaze.secret), made on first use, never released."""
        return self.root / "course_secret.key"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.gradebook}"

    def assignments(self) -> list[str]:
        """Assignment ids in teaching order: the numbered folders of source/."""
        return sorted(p.name for p in self.source.iterdir() if p.is_dir() and p.name[:2].isdigit())

    def notebook_name(self, assignment: str) -> str:
        """The file name of the assignment's single notebook."""
        notebooks = sorted((self.source / assignment).glob("*.ipynb"))
        if len(notebooks) != 1:
            raise RuntimeError(f"source/{assignment} must hold exactly one notebook, found {len(notebooks)}")
        return notebooks[0].name

    def source_notebook(self, assignment: str) -> Path:
        return self.source / assignment / self.notebook_name(assignment)

    def release_notebook(self, assignment: str) -> Path:
        return self.release / assignment / self.notebook_name(assignment)

    def students(self) -> list[str]:
        return sorted(p.name for p in self.submitted.iterdir() if p.is_dir()) if self.submitted.exists() else []

    def submission(self, student: str, assignment: str) -> Path:
        """The folder a student's submission of an assignment is collected into."""
        return self.submitted / student / assignment

    def submitted_notebook(self, student: str, assignment: str) -> Path:
        return self.submission(student, assignment) / self.notebook_name(assignment)

    def autograded_notebook(self, student: str, assignment: str) -> Path:
        return self.autograded / student / assignment / self.notebook_name(assignment)

    def feedback_html(self, student: str, assignment: str) -> Path:
        return (self.feedback / student / assignment / self.notebook_name(assignment)).with_suffix(".html")

    def result(self, assignment: str, student: str) -> Path:
        return self.results / assignment / f"{student}.json"


COURSE = CourseDirectory()  # the repository's own
