"""Stage 2: run each notebook's solution and provided cells in a box, and every check of every grade cell here, in
the trusted process, against it, on its student's own inputs (trailblaze.secret). `--jobs N` boxes at once, in
spawned worker processes; notebooks with the same code share one box."""
from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context

import course_tests.checks  # noqa: F401  (registers every check)
from course_tests import adapters_module
from course_tests.sandbox import box_view
from gradebox import forbidden, notebooks
from gradebox.box import Boxed, box_problem
from gradebox.runner import grade_every_cell
from trailblaze.coursedir import CourseDirectory
from trailblaze.nbgrader_cli import GradingError
from trailblaze.options import GradingOptions
from trailblaze.secret import inputs_key
from trailblaze.stages.collect import sanitized, submissions
from trailblaze.stages.store import Result, ResultStore, result_key


@dataclass(frozen=True)
class Job:
    student: str
    assignment: str
    cells: list
    inputs: bytes  # the key of the student's hidden inputs (trailblaze.secret)
    key: str       # of the result: the code, the harness, the options and the inputs
    options: GradingOptions  # resolved: its devices are those the key was made with

    @property
    def code(self) -> str:
        """What decides the box's work: notebooks with the same code share one box, each graded on its own inputs."""
        return result_key(self.assignment, self.cells, self.options)


def job_for(course: CourseDirectory, nb, student: str, assignment: str, options: GradingOptions) -> Job:
    cells, options = notebooks.implementation_sources(nb), options.resolved()
    drawn = inputs_key(course, student, assignment)
    return Job(student, assignment, cells, drawn, result_key(assignment, cells, options, drawn), options)


def grade_now(course: CourseDirectory, nb, student: str, assignment: str, options: GradingOptions,
              store: ResultStore) -> Result:
    """Grade one notebook in this process (one box) and store its result."""
    job = job_for(course, nb, student, assignment, options)
    (result,) = grade_notebooks([job])
    store.save(assignment, student, result)
    return result


def grade_notebooks(jobs: list[Job]) -> list[Result]:
    """Every grade cell's checks, for each job on its own inputs, against the code they share, loaded once in a box.
    Student code cannot make this raise."""
    first = jobs[0]
    start = time.perf_counter()
    impl = Boxed(first.assignment, first.cells, adapters_module(first.assignment), box_view(), first.options.limits,
                 first.options.unboxed)
    results, uses = [], forbidden.found_in(first.assignment, first.cells)  # the same code: read once
    try:
        for job in jobs:
            grades = grade_every_cell(impl, list(job.options.devices), job.inputs)
            results.append(Result(job.key, grades, round(time.perf_counter() - start, 2), list(impl.load_errors),
                                  uses))
            start = time.perf_counter()
    finally:
        impl.close()
    return results


def box_or_refuse(unboxed: bool, say=print) -> None:
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


def _start_worker(threads: int) -> None:
    import torch
    os.environ["OMP_NUM_THREADS"] = str(threads)  # the boxed child inherits it
    torch.set_num_threads(threads)


def check_class(course: CourseDirectory, assignments: list[str], options: GradingOptions, say=print,
                refused: frozenset[tuple[str, str]] = frozenset()) -> dict:
    """Every submission (but the `refused`) without a stored result for its exact code is graded and stored. Returns
    a summary: graded, reused, failed (student/assignment -> the grader's fault, which is not stored so that a rerun
    retries it)."""
    from tqdm import tqdm

    options, store = options.resolved(), ResultStore(course)
    pending, reused = [], 0
    for student, assignment in submissions(course, assignments):
        if (student, assignment) in refused:
            continue
        nb = sanitized(course, student, assignment)
        if nb is None:
            continue
        job = job_for(course, nb, student, assignment, options)
        if store.load(assignment, student, job.key):
            reused += 1
        else:
            pending.append(job)
    # Notebooks with the same code (untouched releases, copies) share one box; each is checked on its own inputs.
    groups: dict[str, list[Job]] = {}
    for job in sorted(pending, key=lambda j: j.assignment, reverse=True):  # later assignments take longest: first
        groups.setdefault(job.code, []).append(job)
    start, failed = time.perf_counter(), {}
    bar = tqdm(total=len(pending), desc="grading in boxes", unit="notebook", file=sys.stdout,
               disable=not pending, mininterval=1.0)

    def finished(key: str, results: list[Result] | None, error: BaseException | None) -> None:
        for job, result in zip(groups[key], results or [None] * len(groups[key])):
            if result is not None:
                store.save(job.assignment, job.student, result)
            else:  # a fault of the grader, not the student's: not stored, so the next run retries it
                failed[(job.student, job.assignment)] = f"{type(error).__name__}: {error}"
        bar.set_postfix_str(f"{groups[key][0].student}/{groups[key][0].assignment}", refresh=False)
        bar.update(len(groups[key]))

    if options.jobs <= 1:
        for key, jobs in groups.items():
            try:
                finished(key, grade_notebooks(jobs), None)
            except Exception as err:
                finished(key, None, err)
    elif groups:
        threads = max(1, (os.cpu_count() or 1) // options.jobs)
        with ProcessPoolExecutor(options.jobs, mp_context=get_context("spawn"), initializer=_start_worker,
                                 initargs=(threads,)) as pool:
            futures = {pool.submit(grade_notebooks, jobs): key for key, jobs in groups.items()}
            for future in as_completed(futures):
                error = future.exception()
                finished(futures[future], None if error else future.result(), error)
    bar.close()
    summary = {"graded": len(pending) - len(failed), "reused": reused, "failed": failed}
    say(f"boxes: {summary['graded']} notebooks graded ({len(groups)} distinct) with --jobs {options.jobs} in "
        f"{time.perf_counter() - start:.1f} s, {reused} unchanged results reused"
        + (f", {len(failed)} failed in the grader" if failed else ""))
    for (student, assignment), why in sorted(failed.items()):
        say(f"  grader fault (rerun to retry): {student}/{assignment}: {why}")
    return summary
