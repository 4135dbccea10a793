"""The hidden part of every grade cell is two lines:

    from course_tests.grading import grade_cell
    grade_cell("01_setup", "top_k_filter_tests", globals())

It runs the registered checks of that cell against the notebook's own definitions (in the notebook's process: this
is plain nbgrader's path; the course's grader runs the same checks against a box instead), prints one line per
check, and returns the points earned, which nbgrader reads as the cell's (partial) credit.
"""
from __future__ import annotations

import importlib

import course_tests.checks  # noqa: F401  (registers every check)
from course_tests import adapters_module
from gradebox.runner import grade_cell_report
from gradebox.student import InProcess
from gradebox.tensors import available_devices


def grade_cell(assignment: str, grade_id: str, namespace: dict, devices: list[str] | None = None) -> float:
    impl = InProcess(assignment, importlib.import_module(adapters_module(assignment)), namespace)
    earned, _, report = grade_cell_report(impl, grade_id, devices or available_devices())
    print(report)
    return earned
