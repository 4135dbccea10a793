"""The instructor's main job: release every assignment, grade a sample class, export grades and feedback.

    python3 course.py grade           (sets up first; this module is what it runs)
    python -m trailblaze.pipeline     (inside .venv)

The sample class is made from the course itself, so it always matches the current notebooks:
    solutions     the release with the instructor's solutions filled in       -> full marks
    partly_wrong  the same with the planted bugs listed under [samples]       -> some marks
    blank         the untouched release                                       -> 0
Everything is written under the course root: release/ (committed), submitted/, autograded/, feedback/,
reports/grades.csv and gradebook.db (all gitignored).
"""
from __future__ import annotations

import copy
import csv
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from trailblaze import data, mutants, notebooks, paths

SAMPLE_STUDENTS = ("solutions", "partly_wrong", "blank")
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


class PipelineError(RuntimeError):
    pass


def strip_solution_markers(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if line.strip() not in SOLUTION_MARKERS)


def fill_solutions(release_nb, source_nb):
    """What a student who solved everything like the instructor would submit: the release notebook (cells, ids and
    checksums as distributed) with each solution cell's code taken from the source notebook."""
    solved = copy.deepcopy(release_nb)
    answers = {notebooks.grade_id(c): c.source for c in source_nb.cells if notebooks.kind(c) == "solution"}
    for cell in solved.cells:
        if notebooks.kind(cell) == "solution":
            cell.source = strip_solution_markers(answers[notebooks.grade_id(cell)])
    return solved


def sample_submissions(assignment: str, root: Path) -> dict:
    """student id -> notebook, for one assignment."""
    source_nb = notebooks.read(paths.source_notebook(assignment))
    release_nb = notebooks.read(root / "release" / assignment / paths.source_notebook(assignment).name)
    return {
        "solutions": fill_solutions(release_nb, source_nb),
        "partly_wrong": fill_solutions(release_nb, mutants.apply(source_nb, mutants.partly_wrong(assignment))),
        "blank": release_nb,
    }


def write_submissions(assignment: str, root: Path) -> None:
    release_dir = root / "release" / assignment
    for student, nb in sample_submissions(assignment, root).items():
        target = root / "submitted" / student / assignment
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(release_dir, target)  # the other files a student downloaded with the notebook
        notebooks.write(nb, target / paths.source_notebook(assignment).name)
        (target / "timestamp.txt").write_text("2026-01-01 00:00:00.000000 UTC\n")


class Nbgrader:
    """Runs nbgrader commands for one course root, logging their output to reports/nbgrader.log."""

    def __init__(self, root: Path):
        self.root = root
        self.log = root / "reports" / "nbgrader.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.write_text("")

    def __call__(self, *args: str) -> list[str]:
        """Run one command. Returns the students nbgrader could not process (it carries on with the others and
        exits 1); any other failure stops the job."""
        cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={self.root}"]
        result = subprocess.run(cmd, cwd=paths.ROOT, capture_output=True, text=True,
                                env=dict(os.environ, HF_HUB_OFFLINE="1"))
        output = result.stdout + result.stderr
        with self.log.open("a") as log:
            log.write(f"$ nbgrader {' '.join(args)}\n{output}\n")
        failed = sorted(set(STUDENT_FAILURE.findall(output)))
        if result.returncode != 0 and not failed:
            tail = "\n".join(output.strip().splitlines()[-15:])
            raise PipelineError(f"nbgrader {' '.join(args)} failed (exit {result.returncode}); full log in "
                                f"{self.log}:\n{tail}")
        return failed


STUDENT_FAILURE = re.compile(r"There was an error processing assignment '[^']+' for student '([^']+)'")
CELLS_LOCKED_BY_SUBMISSIONS = re.compile(r"Cannot add or remove cells for notebook '([^']+)' because there are "
                                         r"submissions associated with it")


def release(nbgrader: Nbgrader, assignment: str) -> None:
    """generate_assignment; its failures are never a student's, so every one stops the job."""
    if nbgrader("generate_assignment", assignment, "--force"):
        log = nbgrader.log.read_text()
        if CELLS_LOCKED_BY_SUBMISSIONS.search(log):
            raise PipelineError(
                f"nbgrader will not add or remove cells of {assignment}'s notebook while its gradebook "
                f"({nbgrader.root / 'gradebook.db'}) holds submissions for it. Before students have submitted, "
                f"remove them: `.venv/bin/python -m nbgrader db assignment remove {assignment} --force` (or delete "
                "gradebook.db if it only holds the sample class); after that, change no cell structure, only code.")
        raise PipelineError(f"nbgrader generate_assignment {assignment} failed; see {nbgrader.log}")


def why_not_graded(root: Path, student: str, assignment: str) -> str:
    """A reason a person can act on, where we can tell; otherwise a pointer to the log."""
    folder = root / "submitted" / student / assignment
    expected = folder / paths.source_notebook(assignment).name
    if not expected.exists():
        found = ", ".join(p.name for p in folder.glob("*.ipynb")) or "no notebook"
        return f"{expected.name} is missing from the submission (found: {found})"
    try:
        notebooks.read(expected)
    except notebooks.NotebookError as err:
        return str(err)
    return "nbgrader could not process it; see reports/nbgrader.log"


def read_grades(csv_path: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """student -> assignment -> (score, max_score), from `nbgrader export`."""
    grades: dict = {}
    with csv_path.open() as f:
        for row in csv.DictReader(f):
            grades.setdefault(row["student_id"], {})[row["assignment"]] = (float(row["score"]),
                                                                          float(row["max_score"]))
    return grades


def format_table(grades: dict, assignments: list[str]) -> str:
    students = [s for s in SAMPLE_STUDENTS if s in grades] + sorted(set(grades) - set(SAMPLE_STUDENTS))
    header = ["student", *assignments, "total"]
    rows = []
    for student in students:
        cells = [grades[student].get(a, (0.0, 0.0)) for a in assignments]
        total = (sum(c[0] for c in cells), sum(c[1] for c in cells))
        rows.append([student, *(f"{s:g}/{m:g}" for s, m in [*cells, total])])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)) for r in [header, *rows]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def run(root: Path = paths.ROOT, say=print) -> dict:
    """The whole job for one course root (the repository itself, or a scratch copy in tests)."""
    assignments = paths.assignments()
    nbgrader = Nbgrader(root)
    not_graded: dict[tuple[str, str], str] = {}

    def autograde(assignment: str) -> None:
        for student in nbgrader("autograde", assignment, "--force"):
            not_graded[(student, assignment)] = why_not_graded(root, student, assignment)

    steps = [
        ("release", lambda a: release(nbgrader, a)),
        ("sample submissions", lambda a: write_submissions(a, root)),
        ("autograde", autograde),
        ("feedback", lambda a: nbgrader("generate_feedback", a, "--force")),
    ]
    for name, step in steps:
        start = time.perf_counter()
        for assignment in assignments:
            step(assignment)
        say(f"{name:<20} {', '.join(assignments)}  ({time.perf_counter() - start:.1f} s)")
    grades_csv = root / "reports" / "grades.csv"
    nbgrader("export", f"--to={grades_csv}")
    grades = read_grades(grades_csv)
    say(f"grades: {grades_csv}\nfeedback: {root / 'feedback'}/<student>/<assignment>/\n")
    say(format_table(grades, assignments))
    for (student, assignment), reason in sorted(not_graded.items()):
        say(f"\nnot graded (0 points): {student} / {assignment}: {reason}")
    return grades


def main() -> None:
    data.use_offline_data()
    try:
        run()
    except (PipelineError, notebooks.NotebookError) as err:
        sys.exit(f"pipeline failed: {err}")


if __name__ == "__main__":
    main()
