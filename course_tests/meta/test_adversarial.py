"""The adversarial suite (course_tests/adversarial): one submission per attack in the threat model, graded in the
same run as the instructor's solutions (the `graded_class` fixture). Each scores no more than it deserves, exactly
what it deserves where its attack costs only the points it touches, with feedback that says what happened; the
grader survives all of them, and nothing outside the box is read, written or reached."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from course_tests import adversarial
from course_tests.meta.conftest import HOST_TMP_TARGET
from gradebox import notebooks
from trailblaze.coursedir import COURSE, REPO

ASSIGNMENT = adversarial.ASSIGNMENT  # every test here reads the graded class (its timeout: meta/conftest.py)


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


@pytest.mark.parametrize("attack", [a for a in adversarial.ATTACKS if a.refused], ids=lambda a: a.student)
def test_what_is_not_a_plain_file_is_refused_unopened(graded_class, attack):
    """Refused for that student alone, with the reason in the grader's report; nbgrader never saw it."""
    course = graded_class.course
    line = next((l for l in graded_class.report.splitlines()
                 if l.startswith(f"not graded (0 points): {attack.student} / {ASSIGNMENT}: refused: ")), "")
    assert re.search(attack.refused, line), graded_class.report
    assert not course.autograded_notebook(attack.student, ASSIGNMENT).parent.exists()
    assert not course.feedback_html(attack.student, ASSIGNMENT).exists()


class LiveParts(HTMLParser):
    """What in an HTML page could run: script text, on* handlers, javascript: URLs, frames, objects, forms."""

    def __init__(self):
        super().__init__()
        self.found, self.in_script = [], False

    def handle_starttag(self, tag, attrs):
        self.in_script = tag == "script"
        if tag in ("iframe", "frame", "object", "embed", "form", "svg"):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")

    def handle_data(self, data):
        if self.in_script and "pwned" in data:
            self.found.append(f"<script>{data.strip()[:60]}")

    def handle_endtag(self, tag):
        self.in_script = False


def test_student_html_is_inert_in_feedback(graded_class):
    """The student's markdown and raw HTML reach the page as text; nothing of it can run (the course's own page
    scripts, MathJax and the like, are not the student's)."""
    page = graded_class.course.feedback_html("adv_live_html", ASSIGNMENT).read_text()
    assert "&lt;script&gt;document.title" in page, "the attack's markdown did not reach the feedback page"
    parser = LiveParts()
    parser.feed(page)
    assert not parser.found, parser.found


@pytest.mark.parametrize("assignment", sorted({a for a, _, _ in adversarial.SHORTCUTS_THAT_PASS}))
def test_a_forbidden_shortcut_is_flagged_where_student_and_instructor_read(graded_class, assignment):
    """Under the course's policy ("flag", nbgrader_config.py), a right answer through a forbidden library call keeps
    its points, and both the student's feedback and the grader's summary name the call."""
    full = sum(notebooks.grade_cells(notebooks.read(COURSE.source_notebook(assignment))).values())
    assert graded_class.grades[adversarial.SHORTCUT_STUDENT][assignment] == (full, full), graded_class.report
    page = graded_class.course.feedback_html(adversarial.SHORTCUT_STUDENT, assignment).read_text()
    for a, cell, name in adversarial.SHORTCUTS_THAT_PASS:
        if a == assignment:
            assert f"FLAGGED  this exercise forbids {name}" in page, f"{cell}: no flag in the feedback"
            assert f"{adversarial.SHORTCUT_STUDENT} / {assignment} / {cell}_tests: {name}" in graded_class.report
    assert "forbidden call" not in graded_class.course.feedback_html("solutions", assignment).read_text()
