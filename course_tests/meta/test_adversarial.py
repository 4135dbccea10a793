"""The adversarial suite (course_tests/adversarial): one submission per attack in the threat model, graded in the
same run as the instructor's solutions (the `graded_class` fixture). Each scores no more than it deserves, exactly
what it deserves where its attack costs only the points it touches, with feedback that says what happened; the
grader survives all of them, and nothing outside the box is read, written or reached."""
from __future__ import annotations

import re

import pytest

from course_tests import adversarial
from course_tests.meta.conftest import HOST_TMP_TARGET
from gradebox import notebooks
from trailblaze.coursedir import COURSE, REPO

ASSIGNMENT = adversarial.ASSIGNMENT
pytestmark = pytest.mark.timeout(1200)  # the first test waits for the whole class to be graded


def points() -> dict[str, float]:
    return notebooks.grade_cells(notebooks.read(COURSE.source_notebook(ASSIGNMENT)))


def test_the_solution_keeps_full_marks_beside_the_attacks(graded_class):
    score, full = graded_class.grades["solutions"][ASSIGNMENT]
    assert score == full == sum(points().values()), graded_class.report


@pytest.mark.parametrize("attack", adversarial.ATTACKS, ids=lambda a: a.student)
def test_an_attack_scores_no_more_than_it_deserves(graded_class, attack):
    score, full = graded_class.grades[attack.student][ASSIGNMENT]
    deserved = adversarial.deserved(attack, points())
    assert full == sum(points().values()), f"{attack.student} changed what the assignment is worth"
    if attack.costs is None:
        assert score == 0, f"{attack.student} ({attack.how}) scored {score}"
    else:
        assert score == deserved, f"{attack.student} ({attack.how}) scored {score}, deserves exactly {deserved}"


@pytest.mark.parametrize("attack", [a for a in adversarial.ATTACKS if a.says], ids=lambda a: a.student)
def test_feedback_says_what_happened(graded_class, attack):
    path = graded_class.course.autograded_notebook(attack.student, ASSIGNMENT)
    text = "".join(o.get("text", "") for c in notebooks.read(path).cells if notebooks.kind(c) == "test"
                   for o in c.get("outputs", []))
    assert re.search(attack.says, text), text


def test_nothing_outside_the_box_was_read_written_or_reached(graded_class):
    for folder, before in graded_class.files_before.items():
        assert graded_class.files_after[folder] == before, f"grading changed a file in {folder}/"
    assert not graded_class.canary_hits, f"a submission reached the grader's network: {graded_class.canary_hits}"
    assert not HOST_TMP_TARGET.exists(), "a submission wrote into the host's /tmp"
    assert not (REPO / "course_tests" / "pwned.py").exists(), "a submission wrote into the course"
    assert not (graded_class.course.source / ASSIGNMENT / "pwned.txt").exists()
