"""Benchmark: what the grading box costs. Boxed grading (--jobs 1 and --jobs 2) against plain `nbgrader autograde`
on the same submissions, in one run, on one machine.

    .venv/bin/python benchmarks/grading.py [--skip-plain]

The class: the sample class (solutions, partly_wrong, blank) for every assignment, plus the adversarial
submissions of course_tests/adversarial (on its ASSIGNMENT). Plain nbgrader grades only the attacks that are safe to run
without a box (it would run the writer, the bombs and the endless loops with your permissions); the box grades all
of them, and the time for the unsafe ones is printed apart. Each mode starts from the same released course with no
stored results; the time is that of recording grades in the gradebook (plain: `nbgrader autograde` for every
assignment; boxed: the boxes, then `nbgrader autograde` with BoxedGrades), not of feedback or export.

Prints wall times, seconds per notebook and the ratios, and each attack's score under both graders. Figures only;
nothing here is a test.
"""
from __future__ import annotations

import argparse
import os
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trailblaze import data, pipeline  # noqa: E402
from trailblaze.coursedir import COURSE, CourseDirectory  # noqa: E402
from trailblaze.nbgrader_cli import Nbgrader  # noqa: E402
from trailblaze.options import GradingOptions  # noqa: E402
from trailblaze.stages import check, collect, export, record  # noqa: E402

data.use_offline_data()
from course_tests import adversarial  # noqa: E402
from gradebox import notebooks  # noqa: E402

UNSAFE_WITHOUT_A_BOX = {a.student for a in adversarial.ATTACKS  # writes outside, ends early or never, bombs,
                        if a.threat.startswith(("3", "4")) or a.plant}  # links and FIFOs (plain nbgrader opens them)


def build_class(root: Path) -> None:
    shutil.copytree(COURSE.source, root / "source")
    course = CourseDirectory(root)
    pipeline.prepare(course, say=lambda _: None)
    bases = pipeline.sample_submissions(adversarial.ASSIGNMENT, course)
    pipeline.write_attacks(course, bases, canary_port=9)  # nothing listens on port 9 here


def fresh_copy(template: Path, name: str, students: set[str] | None = None) -> Path:
    root = template.parent / name
    fifos = lambda folder, names: [n for n in names if stat.S_ISFIFO(os.lstat(Path(folder) / n).st_mode)]  # noqa: E731
    shutil.copytree(template, root, symlinks=True, ignore=fifos)  # a FIFO would block the copy
    if students is not None:
        for folder in (root / "submitted").iterdir():
            if folder.name not in students:
                shutil.rmtree(folder)
    return root


def record_grades(root: Path, plain: bool, options: GradingOptions) -> None:
    env = {"TRAILBLAZE_GRADER": "execute"} if plain else options.to_environment()
    refused = frozenset(collect.refused(CourseDirectory(root), COURSE.assignments(), options.max_notebook_mb))
    record.record(COURSE.assignments(), Nbgrader(CourseDirectory(root), env=env), refused)


def timed(label: str, action) -> float:
    start = time.perf_counter()
    action()
    seconds = time.perf_counter() - start
    print(f"  {label:<46} {seconds:7.1f} s", flush=True)
    return seconds


def boxed(root: Path, jobs: int) -> None:
    options = GradingOptions(jobs=jobs).resolved()
    refused = frozenset(collect.refused(CourseDirectory(root), COURSE.assignments(), options.max_notebook_mb))
    check.check_class(CourseDirectory(root), COURSE.assignments(), options, say=lambda _: None, refused=refused)
    record_grades(root, plain=False, options=options)


def count(root: Path) -> int:
    return sum(1 for _ in (root / "submitted").glob("*/*/*.ipynb"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-plain", action="store_true", help="time only the boxed runs")
    args = parser.parse_args()
    check.box_or_refuse(unboxed=False)
    with tempfile.TemporaryDirectory(prefix="trailblaze-bench-") as scratch:
        template = Path(scratch) / "class"
        build_class(template)
        everyone = {p.name for p in (template / "submitted").iterdir()}
        safe = everyone - UNSAFE_WITHOUT_A_BOX
        print(f"{os.cpu_count()} CPUs; the same {count(fresh_copy(template, 'probe', safe))} notebooks "
              f"({len(safe)} students) for every grader, then the {len(UNSAFE_WITHOUT_A_BOX)} unsafe attacks boxed")
        times = {}
        plain_root = fresh_copy(template, "plain", safe)
        if not args.skip_plain:
            times["plain"] = timed("plain nbgrader autograde",
                                   lambda: record_grades(plain_root, plain=True, options=GradingOptions()))
        for jobs in (1, 2):
            root = fresh_copy(template, f"boxed{jobs}", safe)
            times[f"jobs{jobs}"] = timed(f"boxed, --jobs {jobs}", lambda: boxed(root, jobs))
        unsafe_root = fresh_copy(template, "unsafe", UNSAFE_WITHOUT_A_BOX | {"solutions"})
        timed("boxed, --jobs 2, the unsafe attacks (+ solutions)", lambda: boxed(unsafe_root, 2))

        n = count(fresh_copy(template, "probe2", safe))
        print("\nper notebook: " + ", ".join(f"{k} {v / n:.2f} s" for k, v in times.items()))
        if "plain" in times:
            print(f"box cost: --jobs 1 / plain = {times['jobs1'] / times['plain']:.2f}x, "
                  f"--jobs 2 / plain = {times['jobs2'] / times['plain']:.2f}x")
        print(f"speed-up with 2 jobs: {times['jobs1'] / times['jobs2']:.2f}x")

        full = sum(notebooks.grade_cells(notebooks.read(COURSE.source_notebook(adversarial.ASSIGNMENT))).values())
        print(f"\nattack scores (of {full:g} on {adversarial.ASSIGNMENT}): plain nbgrader -> boxed")
        boxed_grades = exported(Path(scratch) / "boxed2") | exported(unsafe_root)
        plain_grades = exported(plain_root) if "plain" in times else {}
        for attack in adversarial.ATTACKS:
            plain_score = plain_grades.get(attack.student, {}).get(adversarial.ASSIGNMENT)
            shown = f"{plain_score[0]:g}" if plain_score else "(not run unboxed)"
            print(f"  {attack.student:<28} {shown:>18} -> {boxed_grades[attack.student][adversarial.ASSIGNMENT][0]:g}")


def exported(root: Path) -> dict:
    course = CourseDirectory(root)
    return export.export(course, Nbgrader(course, append=True))


if __name__ == "__main__":
    main()
