"""The class report (trailblaze.stages.report), its misconceptions and similar pairs, and the grades for an LMS, on a
generated class of 03_attention (course_tests/meta/generated_class.py) whose planted bugs are known."""
from __future__ import annotations

import csv
import json
from html.parser import HTMLParser

import pytest

from course_tests.meta import generated_class as generated
from gradebox.checks import checks_for
from trailblaze import lms, misconceptions, mutants, similarity
from trailblaze.stages import report

A = generated.ASSIGNMENT


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course, grades, given = generated.build(tmp_path_factory.mktemp("generated"))
    summaries = report.write(course, [A], grades)
    return course, grades, given, summaries[0]


def test_the_class_is_big_enough_and_graded_as_expected(graded):
    _, grades, given, summary = graded
    assert len(grades) >= 30 and len(summary["students"]) == len(grades)
    full = sum(c.points for c in checks_for(A))
    for student, bugs in given.items():
        score = grades[student][A][0]
        if student.startswith(("copy_", "honest_")):
            assert score == full, f"{student}: right code in another style scored {score}"
        elif bugs:
            assert score < full, f"{student}: planted {bugs}, yet full marks"


def test_the_report_names_every_planted_bug_it_was_given(graded):
    """Each student with planted bugs is listed under each of them: alone, or with the bugs that fail the very same
    checks (their whys shown together), whatever other exercise a bug also breaks."""
    _, _, given, summary = graded
    listed = {(bug, s) for m in summary["misconceptions"] for bug in m["bugs"] for s in m["students"]}
    missing = [(bug, s) for s, bugs in given.items() for bug in bugs if (bug, s) not in listed]
    assert not missing, missing
    assert {bug for bugs in given.values() for bug in bugs} == {m.id for m in mutants.load(A)}


def test_no_mistake_is_named_where_none_was_made(graded):
    """Honest code passes; blank code is absent, not mistaken; a bug upstream is not blamed on the cells it breaks."""
    _, _, given, summary = graded
    named = {s for m in summary["misconceptions"] for s in m["students"]}
    assert not {s for s, bugs in given.items() if not bugs} & named
    for m in summary["misconceptions"]:
        for s in m["students"]:
            assert set(m["bugs"]) & set(given[s]), f"{s} is told {m['bugs']}, planted {given[s]}"


def test_a_single_bugs_failure_pattern_is_matched_to_it_exactly(graded):
    _, _, given, summary = graded
    for pattern in summary["patterns"]:
        singles = [s for s in pattern["students"] if len(given[s]) == 1]
        if singles and pattern["count"] == len(singles):
            assert pattern["resemblance"] == 1.0, pattern
            assert {given[s][0] for s in singles} <= {b["bug"] for b in pattern["resembles"]}, pattern


def test_a_disguised_copy_is_flagged_and_provided_code_alone_is_not(graded):
    _, _, _, summary = graded
    pairs = {(p["a"], p["b"]): p for p in summary["similar"]}
    assert ("copy_a", "copy_b") in pairs, "renamed variables and reordered methods hid a copy"
    assert any(line.strip().startswith("q, k, v = heads(") for line in pairs[("copy_a", "copy_b")]["lines_a"])
    own_family, blanks = {"copy_a", "copy_b"}, {"blank_1", "blank_2", generated.HTML_STUDENT}
    for a, b in pairs:
        assert not {a, b} & blanks, f"{a} and {b} share only the release's code, yet are flagged"
        assert (a in own_family) == (b in own_family), f"{a} and {b} wrote their code apart, yet are flagged"
    assert any(similarity.SOLUTION in pair for pair in pairs), "copies of the instructor's solution are not flagged"


def test_the_same_code_in_another_layout_is_as_similar_as_itself():
    code = "\n\n".join(generated.OWN.values())
    pairs = similarity.similar_pairs({"a": code, "b": generated.disguised(code), "c": "x = 1\n"}, "", threshold=0.0)
    assert [(p.a, p.b) for p in pairs] == [("a", "b")] and pairs[0].similarity > 0.9


class Live(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "iframe", "object", "embed", "form"):
            self.found.append(tag)
        for name, value in attrs:
            if name.startswith("on") or (name in ("src", "href") and not (value or "").startswith(("data:", "#"))):
                self.found.append(f"{tag} {name}={value!r}")


def test_the_page_opens_offline_and_nothing_a_student_chose_can_run(graded):
    course, _, _, _ = graded
    page = course.class_report.read_text()
    assert "eve&lt;img src=x onerror=alert(1)&gt;" in page, "the student with an HTML id is not listed as text"
    parser = Live()
    parser.feed(page)
    assert not parser.found, parser.found  # no script, no handler, nothing fetched: plots are inline PNGs
    assert page.count('src="data:image/png;base64,') == 2


def test_the_data_files_hold_what_the_page_shows(graded):
    course, _, _, summary = graded
    folder = course.class_report.parent
    assert json.loads((folder / "report.json").read_text())[0]["misconceptions"] == summary["misconceptions"]
    rows = list(csv.DictReader((folder / "checks.csv").open()))
    assert len(rows) == len(checks_for(A)) and all(int(r["graded"]) == len(summary["students"]) for r in rows)
    assert len(list(csv.DictReader((folder / "misconceptions.csv").open()))) == len(summary["misconceptions"])


def test_grades_for_canvas_and_moodle_use_the_instructors_map(graded):
    course, grades, _, _ = graded
    course.lms_students.write_text("\ufeffstudent_id,name,canvas_id,sis_login_id,section,moodle_idnumber,email\n"
                                   "copy_a,Ada Lovelace,101,alove,S1,u101,ada@example.edu\n")
    unnamed = lms.write(course, [A], grades)
    assert "copy_a" not in unnamed and "blank_1" in unnamed
    canvas = list(csv.reader((course.lms / f"canvas_{A}.csv").open()))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", A]
    assert canvas[1][0] == "Points Possible" and float(canvas[1][5]) == grades["copy_a"][A][1]
    rows = {r[0]: r for r in canvas[2:]}
    assert rows["Ada Lovelace"] == ["Ada Lovelace", "101", "", "alove", "S1", f"{grades['copy_a'][A][0]:g}"]
    assert rows["blank_1"][3] == "blank_1", "an unmapped student is written with their nbgrader id as the login"
    moodle = {r["Email address"] or r["Username"]: r for r in csv.DictReader((course.lms / f"moodle_{A}.csv").open())}
    assert moodle["ada@example.edu"]["ID number"] == "u101" and moodle["blank_1"][A] == "0"
    assert len(canvas) - 2 == len(moodle) == len(grades)


def test_a_map_with_unknown_columns_is_refused_with_the_columns_it_may_have(tmp_path):
    path = tmp_path / "lms_students.csv"
    path.write_text("student,canvas\nalice,1\n")
    with pytest.raises(ValueError, match="must have student_id and only these columns.*unknown: canvas, student"):
        lms.read_map(path)


def test_feedback_names_a_mistake_only_from_the_cells_failures():
    """The line a student reads: the bug's own words, for a cell failing exactly its checks."""
    softmax_checks = {c.name for c in checks_for(A, "softmax_tests")}
    sig = next(s for s in misconceptions.signatures(A) if s.cell == "softmax" and s.fails <= softmax_checks)
    gid = "softmax_tests"
    report_text = "\n".join(f"FAIL  {c.title}" if c.name in sig.fails else f"PASS  {c.title}"
                            for c in checks_for(A, gid))
    found = misconceptions.named(A, {gid: {"report": report_text}})
    assert sig in found[gid]
    assert sig.why in misconceptions.likely_line(found[gid])
    blank = report_text + "\n      softmax is not implemented yet (its cell still raises NotImplementedError)"
    assert misconceptions.named(A, {gid: {"report": blank}}) == {}
