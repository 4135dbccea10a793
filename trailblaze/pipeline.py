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
import os
import re
import shutil
import sys

from course_tests import adversarial
from gradebox import notebooks
from trailblaze import data, grader, mutants
from trailblaze.coursedir import COURSE, REPO, CourseDirectory
from trailblaze.nbgrader_cli import GradingError, Nbgrader
from trailblaze.options import GradingOptions
from trailblaze.stages.check import box_or_refuse

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


def sample_submissions(assignment: str, course: CourseDirectory) -> dict:
    """student id -> notebook, for one assignment."""
    source_nb = notebooks.read(course.source_notebook(assignment))
    release_nb = notebooks.read(course.release_notebook(assignment))
    return {
        "solutions": fill_solutions(release_nb, source_nb),
        "partly_wrong": fill_solutions(release_nb, mutants.apply(source_nb, mutants.partly_wrong(assignment))),
        "blank": release_nb,
    }


def write_submissions(assignment: str, course: CourseDirectory) -> None:
    for student, nb in sample_submissions(assignment, course).items():
        target = course.submission(student, assignment)
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(course.release / assignment, target)  # the other files a student downloaded with it
        notebooks.write(nb, course.submitted_notebook(student, assignment))
        (target / "timestamp.txt").write_text("2026-01-01 00:00:00.000000 UTC\n")


def write_attacks(course: CourseDirectory, bases: dict, canary_port: int) -> None:
    """Every adversarial submission (course_tests/adversarial) into the course's submitted/, beside the class.
    `bases`: sample_submissions of its assignment; `canary_port`: where the network attack finds an accomplice."""
    for attack in adversarial.ATTACKS:
        folder = course.submission(attack.student, adversarial.ASSIGNMENT)
        nb = adversarial.submission(attack, bases, course.root, REPO, canary_port)
        notebook = folder / course.notebook_name(adversarial.ASSIGNMENT)
        notebooks.write(nb, notebook)
        for relative, text in attack.extra_files.items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_text(text)
        if attack.plant == "link_to_source":
            notebook.unlink()
            notebook.symlink_to(course.source_notebook(adversarial.ASSIGNMENT))
        elif attack.plant == "link_beside":
            (folder / "more").symlink_to(course.source / adversarial.ASSIGNMENT, target_is_directory=True)
        elif attack.plant == "fifo":
            notebook.unlink()
            os.mkfifo(notebook)


CELLS_LOCKED_BY_SUBMISSIONS = re.compile(r"Cannot add or remove cells for notebook '([^']+)' because there are "
                                         r"submissions associated with it")


def release(nbgrader: Nbgrader, assignments: list[str]) -> None:
    """generate_assignment, in one nbgrader process when every assignment is released ("*"); its failures are never
    a student's, so every one stops the job."""
    for pattern in nbgrader.patterns(assignments):
        failed, output = nbgrader.run("generate_assignment", pattern, "--force")
        if not failed:
            continue
        names = ", ".join(sorted(a for _, a in failed))
        if CELLS_LOCKED_BY_SUBMISSIONS.search(output):
            raise GradingError(
                f"nbgrader will not add or remove cells of the notebook of {names} while its gradebook "
                f"({nbgrader.course.gradebook}) holds submissions for it. Before students have submitted, remove "
                "them: `.venv/bin/python -m nbgrader db assignment remove ASSIGNMENT --force` (or delete gradebook.db "
                "if it only holds the sample class); after that, change no cell structure, only code.")
        raise GradingError(f"nbgrader generate_assignment failed for {names}; see {nbgrader.log}")


def prepare(course: CourseDirectory = COURSE, say=print) -> None:
    """Release every assignment and write the sample class into the course's submitted/."""
    assignments = course.assignments()
    grader.timed(say, "release", assignments, lambda: release(Nbgrader(course), assignments))
    grader.timed(say, "sample submissions", assignments,
                 lambda: [write_submissions(a, course) for a in assignments])


def run(course: CourseDirectory = COURSE, options: GradingOptions = GradingOptions(), say=print) -> dict:
    """The whole job for one course directory (the repository itself, or a scratch copy in tests)."""
    box_or_refuse(options.unboxed, say=lambda _: None)  # refuse before anything is written
    prepare(course, say)
    return grader.grade(course, course.assignments(), options, say, first=SAMPLE_STUDENTS, append_log=True)


def main(argv: list[str] | None = None) -> None:
    args = grader.arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0])).parse_args(argv)
    data.use_offline_data()
    try:
        run(options=grader.options_from(args))
    except (GradingError, notebooks.NotebookError) as err:
        sys.exit(f"pipeline failed: {err}")


if __name__ == "__main__":
    main()
