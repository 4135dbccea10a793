"""The check harness: finding a student's notebooks, loading them safely, and reporting in words and points."""
from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

from gradebox import student as implementation
from course_tests.conftest import resolve_submission
from course_tests.grading import grade_cell
from gradebox.checks import checks_for
from gradebox.runner import run_check
from course_tests import adapters_for
from gradebox import notebooks
from trailblaze import pipeline
from trailblaze.coursedir import COURSE, REPO

SETUP = "01_setup"
NAME = COURSE.notebook_name(SETUP)
CLI = "03_attention"  # the command line is the same for every assignment: this one is the quickest to check


@pytest.fixture(scope="module")
def solved():
    """The instructor's solutions as a student would submit them (release cells, solved)."""
    return pipeline.sample_submissions(SETUP, COURSE)["solutions"]


def outcomes(impl):
    return {c.name: run_check(c, impl, "cpu") for c in checks_for(SETUP)}


def test_submission_resolves_a_folder_a_notebook_and_refuses_strangers(tmp_path):
    nested = tmp_path / "alice" / "anything" / NAME
    nested.parent.mkdir(parents=True)
    nested.write_text("{}")
    assert resolve_submission(tmp_path / "alice") == {SETUP: nested}
    assert resolve_submission(nested) == {SETUP: nested}
    assert resolve_submission(None) == {a: COURSE.source_notebook(a) for a in COURSE.assignments()}
    (tmp_path / "other.ipynb").write_text("{}")
    with pytest.raises(pytest.UsageError, match="not one of the course notebooks"):
        resolve_submission(tmp_path / "other.ipynb")
    with pytest.raises(pytest.UsageError, match="no such file"):
        resolve_submission(tmp_path / "missing")


def test_unreadable_notebook_fails_every_check_with_the_same_advice(tmp_path):
    path = tmp_path / NAME
    path.write_text('{"cells": [')
    results = outcomes(implementation.load_notebook(path, SETUP, adapters_for(SETUP)))
    assert results and not any(r.passed for r in results.values())
    assert all("not a readable Jupyter notebook" in r.message and "Re-download" in r.message
               for r in results.values())


def test_deleted_solution_cell_costs_only_its_checks(solved, tmp_path):
    nb = nbformat.from_dict(solved)
    nb.cells = [c for c in nb.cells if notebooks.grade_id(c) != "apply_temperature"]
    path = tmp_path / NAME
    notebooks.write(nb, path)
    results = outcomes(implementation.load_notebook(path, SETUP, adapters_for(SETUP)))
    temperature = {c.name for c in checks_for(SETUP, "apply_temperature_tests")}
    for name, r in results.items():
        if name in temperature:
            assert not r.passed and "`apply_temperature` is not defined" in r.message, r.message
    assert all(results[c.name].passed for c in checks_for(SETUP, "count_parameters_tests"))


def test_crashing_and_looping_cells_are_recorded_and_loading_goes_on(solved, monkeypatch):
    monkeypatch.setattr(implementation, "CELL_SECONDS", 1)
    nb = nbformat.from_dict(solved)
    crash = notebooks.find_cell(nb, "greedy_next_token")
    crash.source = "1 / 0\n" + crash.source
    loop = notebooks.find_cell(nb, "apply_temperature")
    loop.source = "while True:\n    pass\n" + loop.source
    impl = implementation.load_cells(nb, SETUP, adapters_for(SETUP))
    assert any("greedy_next_token raised ZeroDivisionError" in e for e in impl.load_errors), impl.load_errors
    assert any("apply_temperature raised TimeoutError" in e for e in impl.load_errors), impl.load_errors
    results = outcomes(impl)
    assert "ZeroDivisionError" in results["greedy_picks_highest"].message
    assert results["counts_every_parameter_once"].passed


def test_student_exceptions_name_the_cell_and_line(solved):
    nb = nbformat.from_dict(solved)
    cell = notebooks.find_cell(nb, "top_k_filter")
    cell.source = cell.source.replace("k = min(k, logits.size(-1))", "k = min(k, logits.size(-1)) + undefined_name")
    message = outcomes(implementation.load_cells(nb, SETUP, adapters_for(SETUP)))["top_k_keeps_exactly_k"].message
    assert "top_k_filter raised NameError" in message and "cell top_k_filter, line" in message, message


def test_grade_cell_prints_a_report_and_returns_partial_credit(solved, capsys):
    impl = implementation.load_cells(solved, SETUP, adapters_for(SETUP))
    namespace = dict(impl.student.namespace)
    assert grade_cell(SETUP, "greedy_next_token_tests", namespace, devices=["cpu"]) == 2.0
    namespace["greedy_next_token"] = lambda logits: logits.argmin(dim=-1)
    assert grade_cell(SETUP, "greedy_next_token_tests", namespace, devices=["cpu"]) == 1.0
    out = capsys.readouterr().out
    assert "FAIL  greedy_next_token picks the highest logit" in out and "1 of 2 points" in out


def test_a_bug_in_a_check_is_reported_as_internal(solved):
    from gradebox.checks import Check

    def broken(impl, device):
        raise KeyError("oops")
    impl = implementation.load_cells(solved, SETUP, adapters_for(SETUP))
    outcome = run_check(Check(SETUP, "x", "broken", 1.0, broken), impl, "cpu")
    assert not outcome.passed and outcome.message.startswith("internal error in the check")


def test_a_check_that_trips_over_a_students_answer_tells_the_student(solved):
    """The check reads a key the student's answer lacks: that is the student's to fix, not the instructor's."""
    from gradebox.checks import Check

    def reads_a_key(impl, device):
        impl.call("count_parameters", dict(seed=1))["W_query.weight"]  # an int has no such key
    impl = implementation.load_cells(solved, SETUP, adapters_for(SETUP))
    outcome = run_check(Check(SETUP, "x", "reads_a_key", 1.0, reads_a_key), impl, "cpu")
    assert not outcome.passed and outcome.message.startswith("the check could not use what your code returned")
    assert "internal error" not in outcome.message


def _pytest_submission(path, scores):
    return subprocess.run([sys.executable, "-m", "pytest", "course_tests", "--submission", str(path),
                           "--scores-json", str(scores), "-q", "-p", "no:randomly"],
                          cwd=REPO, capture_output=True, text=True)


def test_command_line_grades_a_blank_release_zero_and_says_why(tmp_path):
    scores = tmp_path / "scores.json"
    run = _pytest_submission(COURSE.release_notebook(CLI), scores)
    assert run.returncode == 1, run.stdout[-2000:]
    assert "is not implemented yet" in run.stdout
    points = json.loads(scores.read_text())[CLI]
    assert points and all(cell["points"] == 0 and cell["max_points"] > 0 for cell in points.values())


def test_command_line_grades_a_solved_folder_full_marks(tmp_path):
    solved = pipeline.sample_submissions(CLI, COURSE)["solutions"]
    notebooks.write(solved, tmp_path / "bob" / CLI / COURSE.notebook_name(CLI))
    scores = tmp_path / "scores.json"
    run = _pytest_submission(tmp_path / "bob", scores)
    assert run.returncode == 0, run.stdout[-3000:]
    points = json.loads(scores.read_text())[CLI]
    assert all(cell["points"] == cell["max_points"] and not cell["failed"] for cell in points.values())
    assert sum(c["max_points"] for c in points.values()) == sum(notebooks.grade_cells(solved).values())


def test_cell_time_limit_keeps_an_outer_timer_running():
    """pytest-timeout arms SIGALRM too: the loader's limit must hand it back with the time it had left."""
    import signal

    signal.setitimer(signal.ITIMER_REAL, 100)
    try:
        with implementation.time_limit(5):
            pass
        left = signal.getitimer(signal.ITIMER_REAL)[0]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    assert 90 < left <= 100


def test_cells_load_as_a_module_so_dataclasses_work_and_nothing_stays_registered():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from dataclasses import dataclass\n\n@dataclass\nclass Config:\n    width: int = 4\n\nconfig = Config()")])
    impl = implementation.load_cells(nb, SETUP, adapters_for(SETUP))
    assert not impl.load_errors
    config = impl.student.namespace["config"]
    assert config.width == 4
    # what else got imported on the way (torch's lazy modules) depends on the tests before; the submission's own
    # module is what must be gone
    module = type(config).__module__
    assert module.startswith("submission_"), module
    assert module not in sys.modules, "the submission's module must not stay in sys.modules"
    assert not [name for name in sys.modules if name.startswith("submission_")]
