"""Grade collected submissions: student code computes in a box, the course's checks judge, nbgrader records.

    python -m trailblaze.grader [--jobs N] [--unboxed] [--assignment A]...    grades submitted/ as it is
    python3 course.py grade [--jobs N] [--unboxed]                           the main job: release, sample class, this

For every submitted/<student>/<assignment>/<notebook>.ipynb:
1. prepare  the notebook is sanitized in memory exactly as `nbgrader autograde` will sanitize it (the preprocessors of
            nbgrader_config.py: locked cells restored from the gradebook's checksums, deleted test cells put back,
            duplicate grade ids dropped). Submissions are never written.
2. box      its solution and provided cells run in a boxed child (course_tests.boxed); every check of every grade
            cell runs here, in the trusted process, against it. `--jobs N` notebooks at once, one box each. Each
            result is saved atomically as reports/results/<assignment>/<student>.json, keyed on a hash of those
            cells, of the harness (course_tests) and of the limits: a rerun, or a resume after kill -9, reuses it.
3. record   `nbgrader autograde` runs with BoxedGrades (trailblaze/nbgrader_ext.py) in place of Execute: each test
            cell gets its PASS/FAIL report and its score as outputs, so the gradebook, the formgrader, feedback and
            `nbgrader export` work as usual. Test cells never run.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path

from trailblaze import notebooks, paths

UNBOXED_VARIABLE = "TRAILBLAZE_UNBOXED"  # "1": grade without the box (the explicit, loud opt-out)
LIMITS_VARIABLE = "TRAILBLAZE_LIMITS"    # the box's Limits as JSON, when not the defaults (tests use shorter ones)


def limits_from_environment():
    from course_tests.boxed import Limits
    return Limits(**json.loads(os.environ[LIMITS_VARIABLE])) if os.environ.get(LIMITS_VARIABLE) else Limits()


class GradingError(RuntimeError):
    """Something the instructor must fix before grading can go on (never a student's mistake)."""


# --- results ------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def harness_digest() -> str:
    """Changes whenever a check, an adapter or the box changes, so stale results are never reused."""
    digest = hashlib.sha256()
    for path in sorted(paths.TESTS.rglob("*.py")):
        if "meta" not in path.relative_to(paths.TESTS).parts:
            digest.update(str(path.relative_to(paths.ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def result_key(assignment: str, cells: list[tuple[str, str]], limits, unboxed: bool, devices: list[str]) -> str:
    blob = json.dumps([assignment, cells, asdict(limits), unboxed, devices, harness_digest()])
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class Result:
    """One notebook's grades: grade_id -> {"earned", "total", "report"}."""
    key: str
    grades: dict
    seconds: float
    load_errors: list = field(default_factory=list)


class ResultStore:
    """reports/results/<assignment>/<student>.json, written atomically (a kill -9 leaves the old file or the new)."""

    def __init__(self, root: Path):
        self.folder = root / "reports" / "results"

    def path(self, assignment: str, student: str) -> Path:
        return self.folder / assignment / f"{student}.json"

    def load(self, assignment: str, student: str, key: str) -> Result | None:
        try:
            data = json.loads(self.path(assignment, student).read_text())
            result = Result(**data)
        except (OSError, ValueError, TypeError):
            return None
        return result if result.key == key else None

    def save(self, assignment: str, student: str, result: Result) -> None:
        target = self.path(assignment, student)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        with partial.open("w") as f:
            json.dump(asdict(result), f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, target)


# --- grading one notebook -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    student: str
    assignment: str
    cells: list
    key: str
    unboxed: bool
    limits: object
    devices: list  # the devices the checks run on: part of the key, so the grading and the key cannot disagree


def grade_notebook(job: Job) -> Result:
    """Run every grade cell's checks against the notebook's code in a box. Student code cannot make this raise."""
    from course_tests.boxed import Boxed
    from course_tests.grading import checks_for, grade_cell_report

    start = time.perf_counter()
    impl = Boxed(job.assignment, job.cells, origin=f"{job.student}/{job.assignment}", limits=job.limits,
                 unboxed=job.unboxed)
    try:
        grades = {}
        for grade_id in dict.fromkeys(c.grade_id for c in checks_for(job.assignment)):
            earned, total, report = grade_cell_report(impl, grade_id, job.devices)
            grades[grade_id] = {"earned": earned, "total": total, "report": report}
        load_errors = list(impl.load_errors)
    finally:
        impl.close()
    return Result(job.key, grades, round(time.perf_counter() - start, 2), load_errors)


def _start_worker(threads: int) -> None:
    import torch
    os.environ["OMP_NUM_THREADS"] = str(threads)  # the boxed child inherits it
    torch.set_num_threads(threads)


# --- preparing ----------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def nbgrader_config():
    from traitlets.config.loader import PyFileConfigLoader
    return PyFileConfigLoader("nbgrader_config.py", path=str(paths.ROOT)).load_config()


def sanitize(nb, root: Path, student: str, assignment: str, notebook_id: str):
    """The notebook as `nbgrader autograde` will grade it: nbgrader_config.py's sanitize preprocessors, the
    gradebook only read."""
    config = nbgrader_config()
    resources = {"nbgrader": {"student": student, "assignment": assignment, "notebook": notebook_id,
                              "db_url": f"sqlite:///{root / 'gradebook.db'}"}}
    for preprocessor in config.Autograde.sanitize_preprocessors:
        nb, resources = preprocessor(config=config).preprocess(nb, resources)
    return nb


def job_for(nb, student: str, assignment: str, unboxed: bool, limits) -> Job:
    from course_tests.framework import available_devices
    cells, devices = notebooks.implementation_sources(nb), available_devices()
    return Job(student, assignment, cells, result_key(assignment, cells, limits, unboxed, devices), unboxed, limits,
               devices)


def submissions(root: Path, assignments: list[str]) -> list[tuple[str, str]]:
    """(student, assignment) for every submission folder."""
    folder = root / "submitted"
    students = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.exists() else []
    return [(s, a) for a in assignments for s in students if (folder / s / a).is_dir()]


def result_for(root: Path, nb, student: str, assignment: str, unboxed: bool, limits=None, say=print) -> Result:
    """The stored result for this exact (sanitized) notebook, graded now where there is none."""
    from course_tests.boxed import Limits
    job = job_for(nb, student, assignment, unboxed, limits or Limits())
    store = ResultStore(root)
    result = store.load(assignment, student, job.key)
    if result is None:
        say(f"no prepared result for {student}/{assignment}: grading it now, in a box")
        result = grade_notebook(job)
        store.save(assignment, student, result)
    return result


# --- the whole class ----------------------------------------------------------------------------------------------
def box_or_refuse(unboxed: bool, say=print) -> None:
    from course_tests.boxed import box_problem
    problem = box_problem()
    if problem and not unboxed:
        raise GradingError(f"cannot build the grading box: {problem}.\nStudent code would run with your "
                           "permissions, able to read the solutions and rewrite the gradebook. Install bubblewrap "
                           "(`python3 course.py setup` does so where it can), or, for code you trust, pass "
                           "--unboxed.")
    if unboxed:
        say("\n" + "!" * 100 + "\n!! GRADING UNBOXED: student code runs without the box (still a separate process "
            "with limits), but it can\n!! read and write everything this user can: solutions, other submissions, the "
            "gradebook.\n" + "!" * 100 + "\n")


def box_class(root: Path, assignments: list[str], jobs: int, unboxed: bool, limits=None, say=print) -> dict:
    """Steps 1 and 2 for every submission: returns a summary (counts, seconds, grader faults)."""
    from tqdm import tqdm

    from course_tests.boxed import Limits
    limits = limits or Limits()
    store = ResultStore(root)
    pending, reused = [], 0
    for student, assignment in submissions(root, assignments):
        path = root / "submitted" / student / assignment / paths.source_notebook(assignment).name
        try:
            nb = sanitize(notebooks.read(path), root, student, assignment, path.stem)
        except Exception:  # unreadable, or nbgrader refuses it: nbgrader fails on it too, and the reason is reported
            continue
        job = job_for(nb, student, assignment, unboxed, limits)
        if store.load(assignment, student, job.key):
            reused += 1
        else:
            pending.append(job)
    start = time.perf_counter()
    failed: dict = {}
    bar = tqdm(total=len(pending), desc="grading in boxes", unit="notebook", file=sys.stdout,
               disable=not pending, mininterval=1.0)

    def finished(job: Job, result: Result | None, error: BaseException | None) -> None:
        if result is not None:
            store.save(job.assignment, job.student, result)
        else:  # a fault of the grader, not the student's: reported, not stored, so the next run retries it
            failed[(job.student, job.assignment)] = f"{type(error).__name__}: {error}"
        bar.set_postfix_str(f"{job.student}/{job.assignment}", refresh=False)
        bar.update()

    pending.sort(key=lambda j: j.assignment, reverse=True)  # later assignments take longest: start them first
    if jobs <= 1:
        for job in pending:
            try:
                finished(job, grade_notebook(job), None)
            except Exception as err:
                finished(job, None, err)
    elif pending:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_start_worker,
                                 initargs=(threads,)) as pool:
            futures = {pool.submit(grade_notebook, job): job for job in pending}
            for future in as_completed(futures):
                error = future.exception()
                finished(futures[future], None if error else future.result(), error)
    bar.close()
    summary = {"graded": len(pending) - len(failed), "reused": reused, "failed": failed,
               "seconds": time.perf_counter() - start}
    say(f"boxes: {summary['graded']} notebooks graded with --jobs {jobs} in {summary['seconds']:.1f} s, "
        f"{reused} unchanged results reused" + (f", {len(failed)} failed in the grader" if failed else ""))
    for (student, assignment), why in sorted(failed.items()):
        say(f"  grader fault (rerun to retry): {student}/{assignment}: {why}")
    return summary


class Nbgrader:
    """Runs nbgrader commands for one course root, logging their output to reports/nbgrader.log."""

    def __init__(self, root: Path, env: dict | None = None, append: bool = False):
        self.root = root
        self.env = dict(os.environ, HF_HUB_OFFLINE="1", **(env or {}))
        self.log = root / "reports" / "nbgrader.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.last_output = ""
        if not append:
            self.log.write_text("")

    def __call__(self, *args: str) -> list[str]:
        """Run one command. Returns the students nbgrader could not process (it carries on with the others and
        exits 1); any other failure stops the job."""
        cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={self.root}"]
        result = subprocess.run(cmd, cwd=paths.ROOT, capture_output=True, text=True, env=self.env)
        output = self.last_output = result.stdout + result.stderr
        with self.log.open("a") as log:
            log.write(f"$ nbgrader {' '.join(args)}\n{output}\n")
        failed = sorted(set(STUDENT_FAILURE.findall(output)))
        if result.returncode != 0 and not failed:
            tail = "\n".join(output.strip().splitlines()[-15:])
            raise GradingError(f"nbgrader {' '.join(args)} failed (exit {result.returncode}); full log in "
                               f"{self.log}:\n{tail}")
        return failed


STUDENT_FAILURE = re.compile(r"There was an error processing assignment '[^']+' for student '([^']+)'")


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


def grade(root: Path = paths.ROOT, assignments: list[str] | None = None, jobs: int = 1, unboxed: bool = False,
          say=print, limits=None, first: tuple[str, ...] = (), append_log: bool = False) -> dict:
    """Grade everything in root/submitted into the gradebook, feedback/ and reports/grades.csv."""
    assignments = assignments or paths.assignments()
    box_or_refuse(unboxed, say)
    env = {UNBOXED_VARIABLE: "1" if unboxed else "0", LIMITS_VARIABLE: json.dumps(asdict(limits)) if limits else ""}
    nbgrader = Nbgrader(root, env=env, append=append_log)  # BoxedGrades must compute the same result keys
    box_class(root, assignments, jobs, unboxed, limits, say)
    not_graded: dict[tuple[str, str], str] = {}
    for name, args in [("record grades", ("autograde", "--force")), ("feedback", ("generate_feedback", "--force"))]:
        start = time.perf_counter()
        for assignment in assignments:
            for student in nbgrader(args[0], assignment, *args[1:]):
                not_graded.setdefault((student, assignment), why_not_graded(root, student, assignment))
        say(f"{name:<20} {', '.join(assignments)}  ({time.perf_counter() - start:.1f} s)")
    grades_csv = root / "reports" / "grades.csv"
    nbgrader("export", f"--to={grades_csv}")
    grades = read_grades(grades_csv)
    say(f"grades: {grades_csv}\nfeedback: {root / 'feedback'}/<student>/<assignment>/\n")
    say(format_table(grades, assignments, first))
    for (student, assignment), reason in sorted(not_graded.items()):
        say(f"\nnot graded (0 points): {student} / {assignment}: {reason}")
    return grades


def default_jobs() -> int:
    """One box per CPU, at most 8 (each box and its worker hold about 1 GB). On 2 CPUs, 2 jobs grade the sample
    class 1.4x faster than 1 (benchmarks/grading.py)."""
    return max(1, min(8, os.cpu_count() or 1))


def arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--jobs", "-j", type=int, default=default_jobs(),
                        help="notebooks graded at once, one box each (default: %(default)s, one per CPU up to 8)")
    parser.add_argument("--unboxed", action="store_true",
                        help="grade without the box where bwrap is unavailable: only for code you trust")
    return parser


def main(argv: list[str] | None = None) -> None:
    from trailblaze import data
    parser = arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    parser.add_argument("--assignment", action="append", choices=paths.assignments(),
                        help="grade only this assignment (repeatable)")
    parser.add_argument("--root", type=Path, default=paths.ROOT,
                        help="the nbgrader course directory holding submitted/ and gradebook.db (default: this one)")
    args = parser.parse_args(argv)
    data.use_offline_data()
    try:
        grade(args.root.resolve(), args.assignment, args.jobs, args.unboxed)
    except GradingError as err:
        sys.exit(f"grading failed: {err}")


if __name__ == "__main__":
    main()
