"""Hidden inputs per student (gradebox.inputs, trailblaze.secret): two students are checked on different inputs, a
rerun on the same ones, and the solutions pass on anyone's. The course secret is made once, readable by its owner
only, and can be given instead. (The kill matrix runs on a student's inputs, the nulls on two sets, the graded class
on each sample student's own: tests/meta/test_mutants.py, test_nulls.py, conftest.py.)"""
from __future__ import annotations

import hashlib
import stat

import pytest
import torch

from course_tests import adapters_for
from course_tests.meta.conftest import META_SECRET
from gradebox import inputs, notebooks
from gradebox.checks import checks_for
from gradebox.runner import run_check
from gradebox.student import load_cells
from trailblaze import secret
from trailblaze.coursedir import COURSE, CourseDirectory


def digest(value, h) -> None:
    if isinstance(value, torch.Tensor):
        raw = value.detach().cpu().contiguous().reshape(-1).view(torch.uint8)  # any dtype, bfloat16 too
        h.update(repr((value.dtype, tuple(value.shape))).encode() + raw.numpy().tobytes())
    elif isinstance(value, dict):
        for k in sorted(value, key=repr):
            h.update(repr(k).encode())
            digest(value[k], h)
    elif isinstance(value, (list, tuple)):
        for v in value:
            digest(v, h)
    else:
        h.update(repr(value).encode())


class Recording:
    """The solution, with the inputs of every call it is given recorded (as one digest per check)."""

    def __init__(self, impl):
        self.impl, self.seen = impl, hashlib.sha256()

    def call(self, adapter: str, *args, **kwargs):
        digest((adapter, args, kwargs), self.seen)
        return self.impl.call(adapter, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.impl, name)


def inputs_seen(assignment: str, key: bytes, monkeypatch) -> tuple[dict[str, str], set[str]]:
    """(check name -> digest of every input its calls carried, the checks that drew a seed), on the solution; each
    check passes."""
    solved = load_cells(notebooks.read(COURSE.source_notebook(assignment)), assignment, adapters_for(assignment))
    seen, drew, seed = {}, set(), inputs.seed
    for check in checks_for(assignment):
        recording, draws = Recording(solved), []
        monkeypatch.setattr(inputs, "seed", lambda number: draws.append(number) or seed(number))
        outcome = run_check(check, recording, "cpu", key)
        monkeypatch.setattr(inputs, "seed", seed)
        assert outcome.passed, f"the solution fails {check.name} on a student's inputs: {outcome.message}"
        seen[check.name] = recording.seen.hexdigest()
        if draws:
            drew.add(check.name)
    return seen, drew


@pytest.mark.parametrize("assignment", COURSE.assignments())
def test_each_student_is_checked_on_their_own_inputs_and_a_rerun_on_the_same(assignment, monkeypatch):
    ada, bo = (inputs.student_key(META_SECRET, student, assignment) for student in ("ada", "bo"))
    (first, drew), (again, _), (other, _) = (inputs_seen(assignment, key, monkeypatch) for key in (ada, ada, bo))
    assert first == again, f"a rerun drew other inputs for {sorted(k for k in first if first[k] != again[k])}"
    # Checks on fixed cases (edge cases, named texts, the corpus) draw no seed; every one that does must differ.
    assert drew, f"no check of {assignment} draws its inputs from a seed"
    same = sorted(name for name in drew if first[name] == other[name])
    assert not same, f"these checks drew the same inputs for two students: {same}"


def test_the_course_secret_is_made_once_for_its_owner_and_can_be_given(tmp_path, monkeypatch):
    monkeypatch.delenv(secret.VARIABLE, raising=False)
    course = CourseDirectory(tmp_path)
    made = secret.course_secret(course)
    assert len(made) == 64 and secret.course_secret(course) == made
    assert stat.S_IMODE(course.secret.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [course.secret.name]  # no scratch file left beside it
    ada = secret.inputs_key(course, "ada", "03_attention")
    assert ada != secret.inputs_key(course, "bo", "03_attention") != secret.inputs_key(course, "ada", "04_gpt")
    monkeypatch.setenv(secret.VARIABLE, "shared by the course's graders")
    assert secret.course_secret(course) == b"shared by the course's graders"
    assert secret.inputs_key(course, "ada", "03_attention") != ada
    monkeypatch.delenv(secret.VARIABLE)
    course.secret.write_text("\n")
    with pytest.raises(secret.SecretError, match="is empty"):
        secret.course_secret(course)


def test_no_key_draws_the_seeds_as_written():
    assert inputs.seed(7) == 7 and torch.equal(torch.randn(3, generator=inputs.make_generator(7)),
                                               torch.randn(3, generator=torch.Generator().manual_seed(7)))
    with inputs.drawn_for(inputs.student_key(b"s", "ada", "03_attention"), "03_attention/softmax"):
        mixed = inputs.seed(7)
    assert mixed != 7 and 0 <= mixed < 2 ** 63 and inputs.seed(7) == 7
