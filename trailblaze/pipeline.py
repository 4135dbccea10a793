"""The instructor's main job: release every assignment, grade a sample class, export grades and feedback.

    python3 course.py grade [--jobs N] [--unboxed]     (sets up first; this module is what it runs)
    python -m trailblaze.pipeline                      (inside .venv)

Grading goes through trailblaze.grader: student code computes in a box, the course's checks judge, nbgrader records.

The sample class is made from the course itself, so it always matches the current notebooks:
    solutions     the release with the instructor's solutions filled in       -> full marks
    partly_wrong  the same with the planted bugs listed under [samples]       -> some marks
    blank         the untouched release                                       -> 0
Everything is written under the course root: release/ (committed), submitted/, autograded/, feedback/,
reports/grades.csv and gradebook.db (all gitignored).
"""
from __future__ import annotations

import argparse
import copy
import re
import shutil
import sys
import time
from pathlib import Path

from trailblaze import data, grader, mutants, notebooks, paths

SAMPLE_STUDENTS = ("solutions", "partly_wrong", "blank")
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


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


CELLS_LOCKED_BY_SUBMISSIONS = re.compile(r"Cannot add or remove cells for notebook '([^']+)' because there are "
                                         r"submissions associated with it")


def release(nbgrader: grader.Nbgrader, assignment: str) -> None:
    """generate_assignment; its failures are never a student's, so every one stops the job."""
    if nbgrader("generate_assignment", assignment, "--force"):
        if CELLS_LOCKED_BY_SUBMISSIONS.search(nbgrader.last_output):
            raise grader.GradingError(
                f"nbgrader will not add or remove cells of {assignment}'s notebook while its gradebook "
                f"({nbgrader.root / 'gradebook.db'}) holds submissions for it. Before students have submitted, "
                f"remove them: `.venv/bin/python -m nbgrader db assignment remove {assignment} --force` (or delete "
                "gradebook.db if it only holds the sample class); after that, change no cell structure, only code.")
        raise grader.GradingError(f"nbgrader generate_assignment {assignment} failed; see {nbgrader.log}")


def prepare(root: Path = paths.ROOT, say=print) -> None:
    """Release every assignment and write the sample class into root/submitted/."""
    nbgrader = grader.Nbgrader(root)
    for name, step in [("release", lambda a: release(nbgrader, a)),
                       ("sample submissions", lambda a: write_submissions(a, root))]:
        start = time.perf_counter()
        for assignment in paths.assignments():
            step(assignment)
        say(f"{name:<20} {', '.join(paths.assignments())}  ({time.perf_counter() - start:.1f} s)")


def run(root: Path = paths.ROOT, say=print, jobs: int = 1, unboxed: bool = False, limits=None) -> dict:
    """The whole job for one course root (the repository itself, or a scratch copy in tests)."""
    grader.box_or_refuse(unboxed, say=lambda _: None)  # refuse before anything is written
    prepare(root, say)
    return grader.grade(root, paths.assignments(), jobs, unboxed, say, limits=limits, first=SAMPLE_STUDENTS,
                        append_log=True)


def main(argv: list[str] | None = None) -> None:
    args = grader.arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0])).parse_args(argv)
    data.use_offline_data()
    try:
        run(jobs=args.jobs, unboxed=args.unboxed)
    except (grader.GradingError, notebooks.NotebookError) as err:
        sys.exit(f"pipeline failed: {err}")


if __name__ == "__main__":
    main()
