"""Student-chosen text in feedback: nothing derived from a hidden input reaches it.

Every function a notebook defines is replaced by one that echoes its arguments four ways: a ValueError formatted
from them, a KeyError keyed by them, int() of them, and a torch IndexError whose index is computed from them. The
checks then run as grading runs them; no piece of any argument may appear in the report a student reads. (The
messages still reach the checks: `char_rejects_unknown_characters` reads which character was named.)
"""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from course_tests import adapters_for
from course_tests.meta.conftest import with_solutions_replaced
from gradebox import notebooks
from gradebox.checks import checks_for
from gradebox.runner import grade
from gradebox.student import cut_values, load_cells
from trailblaze.coursedir import COURSE

ECHO = '''
import torch as _torch
_SEEN = []


def _replacement(name, index):
    how = index % 4

    def echoed(*args, **kwargs):
        text = repr(args) + repr(kwargs)
        _SEEN.append(text)
        if how == 0:
            raise ValueError(f"{name} was called with {text}")
        if how == 1:
            return {}[text]
        if how == 2:
            return int(text)
        return _torch.zeros(1)[sum(map(ord, text)) + 2]
    return echoed
'''


def pieces(text: str) -> set[str]:
    """Every 12-character window of the start of an argument's repr, and every number of 3 or more digits there. A
    message is cut at 500 characters before anything reads it, so only the start of the repr could reach it."""
    text = text[:600]
    return {text[i:i + 12] for i in range(len(text) - 11)} | set(re.findall(r"\d{3,}", text))


@pytest.mark.parametrize("assignment", COURSE.assignments())
def test_no_piece_of_a_hidden_input_reaches_feedback(assignment):
    echoing, names = with_solutions_replaced(notebooks.read(COURSE.source_notebook(assignment)), ECHO)
    impl = load_cells(echoing, assignment, adapters_for(assignment))
    assert not impl.load_errors, impl.load_errors
    _, lines = grade(impl, checks_for(assignment), ["cpu"])
    report = "\n".join(lines)
    seen = impl.student.namespace["_SEEN"]
    assert len(seen) >= len(names) // 2, "the checks called too few of the echoing functions to prove anything"
    public = "".join(Path(inspect.getsourcefile(c.func)).read_text() for c in checks_for(assignment))  # the checks' words
    leaked = sorted({p for text in set(seen) for p in pieces(text) if p in report and p not in public})
    assert not leaked, f"pieces of hidden inputs in the feedback: {leaked[:5]}\n{report}"
    assert "was called with" in report, "the student's own words still reach the report"


def test_values_are_cut_from_what_python_and_torch_say():
    assert cut_values("index 1234 is out of bounds for dimension 0 with size 1") == \
        "index \u2026 is out of bounds for dimension \u2026 with size \u2026"
    assert cut_values("invalid literal for int() with base 10: \"('secret text',){}\"") == \
        "invalid literal for int() with base \u2026: \u2026"
    assert cut_values("mat1 and mat2 shapes cannot be multiplied (4x8 and 16x8)") == \
        "mat1 and mat2 shapes cannot be multiplied (\u2026 and \u2026)"
