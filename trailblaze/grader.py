"""Grade collected submissions: student code computes in a box, the course's checks judge, nbgrader records.

    python -m trailblaze.grader [--jobs N] [--unboxed] [--assignment A]...    grades submitted/ as it is
    python3 course.py grade [--jobs N] [--unboxed]                           the main job: release, sample class, this

The stages (trailblaze/stages/, one module each) run in the order a notebook travels: collect and sanitize, check
in boxes, store, record in the gradebook, feedback, export; then the class report, and grades for an LMS
(trailblaze.lms). A crash, timeout or memory bomb costs only the checks it touches; a box that cannot start is the
grader's fault, reported and retried on the next run, never a zero; a rerun, or a run after kill -9, reuses every
stored result of an unchanged notebook.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from gradebox.limits import Limits
from trailblaze import data, lms
from trailblaze.coursedir import COURSE, CourseDirectory
from trailblaze.nbgrader_cli import GradingError, Nbgrader
from trailblaze.options import GradingOptions, default_jobs
from trailblaze.stages import check, collect, export, feedback, record, report


def timed(say, name: str, assignments: list[str], step):
    start = time.perf_counter()
    value = step()
    say(f"{name:<20} {', '.join(assignments)}  ({time.perf_counter() - start:.1f} s)")
    return value


def grade(course: CourseDirectory = COURSE, assignments: list[str] | None = None,
          options: GradingOptions = GradingOptions(), say=print, first: tuple[str, ...] = (),
          append_log: bool = False) -> dict:
    """Grade everything in the course's submitted/ into the gradebook, feedback/ and reports/grades.csv."""
    assignments = assignments or course.assignments()
    check.box_or_refuse(options.unboxed, say)
    options = options.resolved()
    nbgrader = Nbgrader(course, env=options.to_environment(), append=append_log)  # BoxedGrades: the same keys
    reasons = collect.refused(course, assignments, options.max_notebook_mb)
    refused = frozenset(reasons)
    faults = check.check_class(course, assignments, options, say, refused)["failed"]
    record.enroll(course, {student for student, _ in refused})
    not_graded = timed(say, "record grades", assignments, lambda: record.record(assignments, nbgrader, refused))
    not_graded += timed(say, "feedback", assignments,
                        lambda: feedback.feedback(assignments, nbgrader, refused))
    not_graded += list(refused)
    grades = export.export(course, nbgrader)
    graded = [a for a in course.assignments() if any(a in g for g in grades.values())]  # this run's and earlier ones
    every_refusal = collect.refused(course, graded, options.max_notebook_mb)
    timed(say, "class report", graded, lambda: report.write(course, graded, grades, every_refusal, faults))
    unnamed = lms.write(course, graded, grades)
    say(f"grades: {course.grades_csv}\nfeedback: {course.feedback}/<student>/<assignment>/\n"
        f"class report: {course.class_report}\ngrades for Canvas and Moodle: {course.lms}/"
        + (f" ({len(unnamed)} students not in {course.lms_students.name}, written with their nbgrader id as the "
           f"login: {', '.join(unnamed[:5])}{' ...' if len(unnamed) > 5 else ''})" if unnamed else "") + "\n")
    say(export.format_table(grades, assignments, first))
    for student, assignment, grade_id, names in export.forbidden_uses(course, assignments):
        say(f"\nforbidden call (nbgrader_config.py's BoxedGrades.forbidden_calls prices it): {student} / {assignment} "
            f"/ {grade_id}: {', '.join(names)}")
    for student, assignment in sorted(set(not_graded)):
        say(f"\nnot graded (0 points): {student} / {assignment}: "
            f"{collect.why_not_graded(course, student, assignment, options.max_notebook_mb)}")
    return grades


def arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--jobs", "-j", type=int, default=default_jobs(),
                        help="notebooks graded at once, one box each (default: %(default)s, one per CPU up to 8)")
    parser.add_argument("--unboxed", action="store_true",
                        help="grade without the box where bwrap is unavailable: only for code you trust")
    parser.add_argument("--call-seconds", type=float, default=Limits.call_seconds,
                        help="a call of student code that runs longer is stopped, and fails its check "
                             "(default: %(default)g)")
    parser.add_argument("--max-notebook-mb", type=float, default=GradingOptions.max_notebook_mb,
                        help="a bigger submitted notebook is refused for its student (default: %(default)g)")
    return parser


def options_from(args: argparse.Namespace) -> GradingOptions:
    return replace(GradingOptions(), jobs=args.jobs, unboxed=args.unboxed, max_notebook_mb=args.max_notebook_mb,
                   limits=replace(Limits(), call_seconds=args.call_seconds))


def main(argv: list[str] | None = None) -> None:
    parser = arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    parser.add_argument("--assignment", action="append", choices=COURSE.assignments(),
                        help="grade only this assignment (repeatable)")
    parser.add_argument("--root", type=lambda p: CourseDirectory(Path(p).resolve()), default=COURSE,
                        help="the nbgrader course directory holding submitted/ and gradebook.db (default: this one)")
    args = parser.parse_args(argv)
    data.use_offline_data()
    try:
        grade(args.root, args.assignment, options_from(args))
    except GradingError as err:
        sys.exit(f"grading failed: {err}")


if __name__ == "__main__":
    main()
