"""The instructor's main job, end to end, in a scratch course root: release, sample class, boxed grades, feedback.

The class (the `graded_class` fixture in conftest.py) also holds bad input, which must cost only its owner: a
notebook that is not JSON, and the partly wrong notebook with its last graded cell deleted (nbgrader must put the
cell back, hidden checks included, so that it scores exactly what the partly wrong student scores). The
adversarial students of the same run are judged in test_adversarial.py.
"""
from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from course_tests.meta.conftest import RELEASED
from gradebox import notebooks
from trailblaze import grader, misconceptions, pipeline
from trailblaze.coursedir import COURSE, REPO
from trailblaze.nbgrader_cli import GradingError
from trailblaze.options import GradingOptions
from trailblaze.stages.export import read_grades
from trailblaze.stages.store import ResultStore

# The class fixture grades ~40 notebooks, attacks included, twice: minutes, not the default 300 s.
pytestmark = pytest.mark.timeout(1200)


def test_sample_class_is_ranked(graded_class):
    grades, report = graded_class.grades, graded_class.report
    for assignment in graded_class.course.assignments():
        score = {s: grades[s][assignment] for s in pipeline.SAMPLE_STUDENTS}
        full = score["solutions"][1]
        assert full > 0 and score["solutions"][0] == full, report
        assert score["blank"][0] == 0, report
        assert 0 < score["partly_wrong"][0] < full, report


def test_bad_input_costs_only_its_owner(graded_class):
    grades, report = graded_class.grades, graded_class.report
    for assignment in graded_class.course.assignments():
        assert grades["broken"][assignment][0] == 0
        assert grades["deleted_test_cell"][assignment] == grades["partly_wrong"][assignment], \
            "a deleted graded cell must be restored from the gradebook, hidden checks included, and graded"
    assert "not graded (0 points): broken" in report and "not a readable Jupyter notebook" in report, report


def test_outputs_exist(graded_class):
    course, report = graded_class.course, graded_class.report
    assert course.grades_csv.exists()
    for student in pipeline.SAMPLE_STUDENTS:
        for assignment in course.assignments():
            assert course.feedback_html(student, assignment).exists(), f"no feedback for {student}/{assignment}"
    table = report[report.index("student"):]
    assert all(s in table for s in pipeline.SAMPLE_STUDENTS), report


def test_every_notebook_was_graded_in_a_box_before_nbgrader_recorded_it(graded_class):
    log = graded_class.course.nbgrader_log.read_text()
    assert "no prepared result" not in log, "BoxedGrades had to grade a notebook itself: the keys disagree"
    assert "boxes: " in graded_class.report and "failed in the grader" not in graded_class.report, graded_class.report
    counts = re.search(r"boxes: (\d+) notebooks graded \((\d+) distinct\)", graded_class.report)
    graded, distinct = int(counts[1]), int(counts[2])
    assert distinct < graded, "copies of the same code (deleted_test_cell is partly_wrong's code) are boxed once"


def test_graded_output_explains_failures_without_printing_tensors(graded_class):
    """Check messages name what is wrong but never print a value: no tensor repr in any graded cell's output."""
    for assignment in graded_class.course.assignments():
        nb = notebooks.read(graded_class.course.autograded_notebook("partly_wrong", assignment))
        outputs = "".join(o.get("text", "") for c in nb.cells if notebooks.kind(c) == "test" for o in c.outputs)
        assert "FAIL" in outputs and "PASS" in outputs, outputs
        assert "tensor(" not in outputs, outputs


def test_grading_twice_gives_identical_grades_and_reuses_every_result(graded_class):
    """The second run regrades the attacks' assignment (the sample class and every attack); the export holds all
    assignments."""
    assert graded_class.regrades == graded_class.grades
    assert "boxes: 0 notebooks graded" in graded_class.second_report, graded_class.second_report


def full_marks(assignment: str) -> float:
    return sum(notebooks.grade_cells(notebooks.read(COURSE.source_notebook(assignment))).values())


def test_an_interrupted_run_resumes_without_regrading_finished_notebooks(released):
    """kill -9 in the middle of grading, then the same command again: the notebooks finished before the kill are
    reused, the rest graded, and the grades are those of an uninterrupted run."""
    course, assignment, full = released, RELEASED, full_marks(RELEASED)
    command = [sys.executable, "-m", "trailblaze.grader", "--root", str(course.root), "--assignment", assignment,
               "--jobs", "1"]
    results = course.results / assignment
    first = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    deadline = time.monotonic() + 240
    while not list(results.glob("*.json")) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    finished = {p.name: p.read_bytes() for p in results.glob("*.json")}
    assert 1 <= len(finished) < len(pipeline.SAMPLE_STUDENTS), f"killed too late or too early: {sorted(finished)}"
    assert all(json.loads(b)["key"] for b in finished.values()), "a result was left half written"
    second = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"{len(finished)} unchanged results reused" in second.stdout, second.stdout
    assert all((results / name).read_bytes() == data for name, data in finished.items()), "a finished result was redone"
    grades = read_grades(course.grades_csv)
    assert grades["solutions"][assignment] == (full, full) and grades["blank"][assignment][0] == 0
    assert 0 < grades["partly_wrong"][assignment][0] < full


def test_without_a_box_grading_stops_before_it_starts_unless_told_to_grade_unboxed(course, released, monkeypatch):
    from gradebox import box
    monkeypatch.setattr(box, "box_problem", lambda: "bwrap is not installed (simulated)")
    monkeypatch.setattr(grader.check, "box_problem", box.box_problem)
    with pytest.raises(GradingError, match="(?s)bwrap is not installed.*--unboxed"):
        pipeline.run(course)
    assert not course.release.exists(), "the main job must refuse before it writes anything"
    with pytest.raises(GradingError, match="cannot build the grading box"):
        grader.grade(released, [RELEASED])
    assert not released.autograded.exists() and not released.results.exists()
    lines: list[str] = []
    grades = grader.grade(released, [RELEASED], GradingOptions(unboxed=True), say=lines.append)
    assert "GRADING UNBOXED" in "\n".join(lines)
    full = full_marks(RELEASED)
    assert grades["solutions"][RELEASED] == (full, full) and grades["blank"][RELEASED][0] == 0


def test_the_class_report_and_lms_grades_come_with_every_grading_run(graded_class):
    """The grade command writes the class report, names where it is, and tells partly_wrong, in its feedback, each
    known mistake its stored results show (trailblaze.misconceptions)."""
    course = graded_class.course
    assert f"class report: {course.class_report}" in graded_class.report
    summaries = {s["assignment"]: s for s in json.loads((course.class_report.parent / "report.json").read_text())}
    assert set(summaries) == set(course.assignments()), "the second run (one assignment) dropped the others"
    told = 0
    for assignment in course.assignments():
        assert (course.lms / f"canvas_{assignment}.csv").exists() and (course.lms / f"moodle_{assignment}.csv").exists()
        result = ResultStore(course).load(assignment, "partly_wrong")
        page = course.feedback_html("partly_wrong", assignment).read_text()
        for found in misconceptions.named(assignment, result.grades).values():
            line = misconceptions.likely_line(found)
            assert html.escape(line, quote=False) in page or html.escape(line) in page, \
                f"{assignment}: the feedback does not say {line!r}"
            assert any("partly_wrong" in m["students"] for m in summaries[assignment]["misconceptions"])
            told += 1
        assert misconceptions.LIKELY not in course.feedback_html("solutions", assignment).read_text()
    assert told >= 3, "the sample class's planted bugs are named in fewer than three exercises"
