"""Running checks: every way student code can fail becomes a message, and passing checks become points."""
from __future__ import annotations

import traceback
from dataclasses import dataclass

from gradebox.checks import Check, builds_on_note, checks_for, devices_for, exercise
from gradebox.expect import CheckFailure
from gradebox.inputs import PUBLIC, drawn_for
from gradebox.student import GraderFault, Implementation, StudentError
from gradebox.tensors import prepare_device


@dataclass(frozen=True)
class Outcome:
    passed: bool
    message: str = ""


class Answered:
    """An implementation that counts the answers its student code gave (what a check then reads)."""

    def __init__(self, impl: Implementation):
        self.impl, self.answers = impl, 0

    def call(self, adapter: str, *args, **kwargs):
        value = self.impl.call(adapter, *args, **kwargs)
        self.answers += 1
        return value

    def __getattr__(self, name):
        return getattr(self.impl, name)


def run_check(check: Check, impl: Implementation, device: str, key: bytes = PUBLIC) -> Outcome:
    """Run one check, its inputs drawn for the student whose `key` it is (gradebox.inputs.student_key; PUBLIC: the
    seeds as written); every way student code can fail becomes a message, never a crash of the grader.

    A check that raises after the student's code answered tripped over that answer (a key, a type, a shape it did
    not expect): the student reads what it could not use. One that raises before any answer has a bug of its own:
    the message says to tell the instructor."""
    prepare_device(device)
    answered = Answered(impl)
    try:
        with drawn_for(key, f"{check.assignment}/{check.name}"):
            check.func(answered, device)
    except CheckFailure as failure:
        return Outcome(False, str(failure))
    except StudentError as err:
        return Outcome(False, err.explain(exercise(check.grade_id)))
    except GraderFault:
        raise
    except Exception as exc:
        what = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:300]
        if answered.answers:
            return Outcome(False, f"the check could not use what your code returned ({what}): compare what it "
                                  "returns with what the exercise asks for (names, types, shapes)")
        return Outcome(False, f"internal error in the check (tell your instructor): {what}")
    return Outcome(True)


PASS, FAIL = "PASS  ", "FAIL  "  # how a report line starts: the check's title follows


def failed_in(report: str, checks: list[Check]) -> list[str]:
    r"""The names of `checks` that a grade cell's report (as `grade` writes it) shows failing, in their order.

    Titles are unique within a grade cell (course_tests/meta/test_notebooks.py), so the report names each check.
    >>> failed_in("PASS  softmax equals torch.softmax along any axis, ...\nFAIL  softmax of a half-precision tensor is "
    ...           "computed and returned in that dtype\n      it returned float32",
    ...           checks_for("03_attention", "softmax_tests"))
    ['softmax_keeps_half_precision']
    """
    failing = {line.removeprefix(FAIL) for line in report.splitlines() if line.startswith(FAIL)}
    return [c.name for c in checks if c.title in failing]


def grade(impl: Implementation, checks: list[Check], devices: list[str],
          key: bytes = PUBLIC) -> tuple[float, list[str]]:
    """Points earned (a check counts only if it passes on every device) and one report line per check."""
    earned, lines = 0.0, []
    for check in checks:
        failures = [(d, o.message) for d in devices_for(check, devices) for o in [run_check(check, impl, d, key)]
                    if not o.passed]
        if not failures:
            earned += check.points
            lines.append(f"{PASS}{check.title}")
            continue
        lines.append(f"{FAIL}{check.title}")
        for device, message in failures:
            lines.append(f"      [{device}] {message}" if len(devices) > 1 else f"      {message}")
    return earned, lines


def grade_cell_report(impl: Implementation, grade_id: str, devices: list[str],
                      key: bytes = PUBLIC) -> tuple[float, float, str]:
    """(points earned, points possible, the report a student reads) for one grade cell of impl's assignment."""
    checks = checks_for(impl.assignment, grade_id)
    if not checks:
        raise LookupError(f"no checks are registered for {impl.assignment}/{grade_id}")
    earned, lines = grade(impl, checks, devices, key)
    total = sum(c.points for c in checks)
    note = builds_on_note(impl.assignment, grade_id)
    if earned < total and note:
        lines.append(note)
    lines.append(f"{earned:g} of {total:g} points")
    return earned, total, "\n".join(lines)


def grade_every_cell(impl: Implementation, devices: list[str], key: bytes = PUBLIC) -> dict[str, dict]:
    """grade_id -> {"earned", "total", "report"} for every grade cell of impl's assignment, in notebook order."""
    grades = {}
    for grade_id in dict.fromkeys(c.grade_id for c in checks_for(impl.assignment)):
        earned, total, report = grade_cell_report(impl, grade_id, devices, key)
        grades[grade_id] = {"earned": earned, "total": total, "report": report}
    return grades
