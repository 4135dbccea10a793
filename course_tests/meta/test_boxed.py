"""Isolated grading (gradebox.box): every check runs unchanged against a boxed child, and what a student's
code does in the box (lie, crash, loop, snoop, hoard memory) costs only the checks it touches.

Where bwrap cannot build the box, these tests run the child unboxed (the explicit opt-out: still a separate
process with limits and a data-only boundary) and the tests that need the box itself are skipped, saying why."""
from __future__ import annotations

import copy
import json
import os
import time

import pytest
import torch

from course_tests import adapters_module
from course_tests.sandbox import box_view
from gradebox import notebooks
from gradebox.box import Boxed, box_problem
from gradebox.checks import checks_for
from gradebox.limits import Limits
from gradebox.runner import run_check
from gradebox.student import GraderFault, StudentError
from trailblaze.coursedir import COURSE, REPO

UNBOXED = box_problem() is not None
# In CI the box is part of what is tested (course.py setup installs bubblewrap): its absence fails, never skips.
needs_box = pytest.mark.skipif(UNBOXED and not os.environ.get("CI"), reason=f"no grading box here: {box_problem()}")


def boxed(assignment: str, nb=None, **limits) -> Boxed:
    nb = nb or notebooks.read(COURSE.source_notebook(assignment))
    return Boxed(assignment, notebooks.implementation_sources(nb), adapters_module(assignment), box_view(),
                 Limits(**limits), UNBOXED)


def outcomes(impl, assignment: str, grade_ids=None) -> dict[str, object]:
    return {c.name: run_check(c, impl, "cpu") for c in checks_for(assignment)
            if grade_ids is None or c.grade_id in grade_ids}


def with_cell(assignment: str, grade_id: str, source: str):
    nb = copy.deepcopy(notebooks.read(COURSE.source_notebook(assignment)))
    notebooks.find_cell(nb, grade_id).source = source
    return nb


def outcomes_with_cell(grade_id: str, source: str, grade_ids: set[str], **limits) -> dict[str, object]:
    """05_training's solution with one cell replaced, graded through the box on the given grade cells."""
    impl = boxed("05_training", with_cell("05_training", grade_id, source), **limits)
    try:
        return outcomes(impl, "05_training", grade_ids)
    finally:
        impl.close()


@pytest.mark.parametrize("assignment", COURSE.assignments())
def test_the_solution_passes_every_check_through_the_box(graded_class, assignment):
    """The graded class (meta/conftest.py) graded the instructor's solutions in boxes: every check passed."""
    grades = json.loads(graded_class.course.result(assignment, "solutions").read_text())["grades"]
    assert set(grades) == {c.grade_id for c in checks_for(assignment)}
    failed = {g: r["report"] for g, r in grades.items() if r["earned"] != r["total"] or "FAIL" in r["report"]}
    assert not failed, failed


LIAR = '''
import torch
torch.allclose = lambda *args, **kwargs: True  # lies to any check that runs in this process
torch.equal = lambda *args, **kwargs: True
import math
math.isclose = lambda *args, **kwargs: True

def lr_at(step, max_lr, min_lr, warmup_steps, total_steps):
    return 0.5
'''

EXITS = '''
def batch_loss(model, tokens):
    import os
    os._exit(0)
'''

LOOPS = '''
def lr_at(step, max_lr, min_lr, warmup_steps, total_steps):
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            pass
        except BaseException:
            pass
'''

SUBCLASS = '''
class Agreeable(torch.Tensor):
    def __eq__(self, other):
        return True

def batch_loss(model, tokens):
    logits = model(tokens[:, :-1])
    loss = F.cross_entropy(logits.flatten(0, 1), tokens[:, :-1].flatten())
    return loss.as_subclass(Agreeable)
'''

HOARDER = '''
def lr_at(step, max_lr, min_lr, warmup_steps, total_steps):
    hoard = []
    while True:
        hoard.append(bytes(1 << 26))  # calloc: address space grows at once, memory is never touched
'''


FORKS = '''
def lr_at(step, max_lr, min_lr, warmup_steps, total_steps):
    import os
    while True:
        try:
            os.fork()
        except OSError:
            pass
'''


@needs_box
def test_a_fork_bomb_is_stopped_at_the_process_limit_not_at_the_deadline():
    """The keeper sees the box full of processes and kills them all: the call fails in seconds, not at its 60 s
    deadline (spent on every CPU), the bomb is not set off again by the next check of the same function, and the
    box lives on for the rest."""
    impl = boxed("05_training", with_cell("05_training", "lr_at", FORKS), call_seconds=60, processes=64)
    try:
        start = time.monotonic()
        with pytest.raises(StudentError, match=r"killed while running lr_at: .*limit of 64 at once \(a fork bomb"):
            impl.call("lr_at", 0, 1.0, 0.1, 1, 10)
        assert time.monotonic() - start < 20, f"stopped after {time.monotonic() - start:.1f} s"
        box_pid, start = impl.process.pid, time.monotonic()
        with pytest.raises(StudentError, match="fork bomb"):
            impl.call("lr_at", 5, 1.0, 0.1, 1, 10)
        assert time.monotonic() - start < 1, "the bomb was set off again"
        assert impl.call("param_groups", 0, 0.1) and impl.process.pid == box_pid
    finally:
        impl.close()


def test_lies_told_in_the_child_do_not_reach_the_checks():
    got = outcomes_with_cell("lr_at", LIAR, {"lr_at_tests", "train_step_tests"})
    assert not any(o.passed for n, o in got.items() if n.startswith("lr_")), "a wrong lr_at passed"
    assert got["step_equals_zero_grad_backward_clip_step"].passed, "the other checks must still pass"


def test_an_exit_costs_only_the_checks_that_call_it():
    got = outcomes_with_cell("batch_loss", EXITS, {"batch_loss_tests", "lr_at_tests"})
    assert not got["loss_equals_cross_entropy_of_the_next_token"].passed
    assert "exit code 0" in got["loss_equals_cross_entropy_of_the_next_token"].message
    assert all(got[n].passed for n in got if n.startswith("lr_")), "the process is restarted for later checks"


TRACES = '''
import os, subprocess, sys
SEEN = os.path.expanduser("~/seen.txt"), "/tmp/seen.txt", "/dev/shm/seen.txt"
'''

LEAVES_TRACES = TRACES + '''
def batch_loss(model, tokens):  # leaves files and a process behind, then dies
    for path in SEEN:
        with open(path, "w") as f:
            f.write("from before the crash")
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    os._exit(3)
'''

LOOKS_FOR_TRACES = TRACES + '''
def lr_at(step, max_lr, min_lr, warmup_steps, total_steps):  # what the process finds
    others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid())]
    return [os.getpid(), len(others), sum(os.path.exists(p) for p in SEEN)]
'''


@needs_box
def test_after_a_crash_the_box_loads_the_notebook_again_as_new():
    """Boxed without a GPU, a crash costs a fork of the box's keeper, not a new box: the box lives on, and the new
    process finds nothing of the dead one (no file it wrote, no process it started)."""
    nb = with_cell("05_training", "batch_loss", LEAVES_TRACES)
    notebooks.find_cell(nb, "lr_at").source = LOOKS_FOR_TRACES
    impl = boxed("05_training", nb)
    try:
        first_pid, first_others, _ = impl.call("lr_at", 0, 1.0, 0.1, 1, 10)  # others: the keeper
        box_pid = impl.process.pid
        with pytest.raises(StudentError, match="exit code 3"):
            impl.call("batch_loss", 0, torch.zeros(1, 4, dtype=torch.long), "cpu")
        pid, others, traces = impl.call("lr_at", 0, 1.0, 0.1, 1, 10)
        assert impl.process is not None and impl.process.pid == box_pid, "a crash must not cost a new box"
        assert impl.warm and pid != first_pid, "the notebook must be served by a new process after the crash"
        assert (others, traces) == (first_others, 0), f"left over from the crash: {others} processes, {traces} files"
    finally:
        impl.close()


def test_an_endless_loop_is_stopped_at_the_deadline():
    got = outcomes_with_cell("lr_at", LOOPS, {"lr_at_tests", "param_groups_tests"}, call_seconds=3)
    assert not got["lr_without_warmup"].passed and "stopped after 3 s" in got["lr_without_warmup"].message
    assert got["groups_decay_matrices_and_spare_the_rest"].passed


def test_a_tensor_subclass_is_not_an_answer():
    got = outcomes_with_cell("batch_loss", SUBCLASS, {"batch_loss_tests"})
    message = got["loss_equals_cross_entropy_of_the_next_token"].message
    assert not got["loss_equals_cross_entropy_of_the_next_token"].passed and "torch.Tensor" in message, message


def test_a_memory_bomb_hits_the_limit():
    got = outcomes_with_cell("lr_at", HOARDER, {"lr_at_tests", "param_groups_tests"}, memory_bytes=4 << 30,
                             call_seconds=60)
    assert not got["lr_without_warmup"].passed, got["lr_without_warmup"]
    assert got["groups_decay_matrices_and_spare_the_rest"].passed


SNOOP = f'''
import os
def lr_at(step, max_lr, min_lr, warmup_steps, total_steps):
    seen = []
    for path in [{str(COURSE.source)!r}, {str(REPO / "course_tests" / "checks")!r},
                 {str(REPO / "course_tests" / "mutants")!r}, {str(COURSE.submitted)!r}]:
        try:
            seen += os.listdir(path)
        except OSError:
            pass
    if 0 in os.getresuid() or 0 in os.getresgid():
        seen.append("root")
    try:
        import socket
        socket.create_connection(("1.1.1.1", 53), timeout=2)
        seen.append("network")
    except OSError:
        pass
    if seen:
        raise RuntimeError("seen: " + ", ".join(sorted(seen)[:20]))
    return 1.0
'''


@needs_box
def test_the_box_hides_solutions_checks_other_students_and_the_network():
    assert not UNBOXED, f"no grading box here: {box_problem()}"
    impl = boxed("05_training", with_cell("05_training", "lr_at", SNOOP))
    try:
        got = impl.call("lr_at", 0, 1.0, 0.1, 10, 100)
    finally:
        impl.close()
    assert got == 1.0


def test_a_box_that_cannot_start_is_the_graders_fault_not_the_students():
    """Before any student code runs the child says it is ready; a box that never gets there (here: too little memory
    to import torch) raises GraderFault, which grading reports to the instructor instead of scoring a zero."""
    impl = boxed("01_setup", memory_bytes=64 << 20)
    try:
        with pytest.raises(GraderFault, match="did not start"):
            run_check(checks_for("01_setup")[0], impl, "cpu")
    finally:
        impl.close()


LISTER = '''
import os
def split_words(text):
    """Every file and folder under `text` that this process can read or enter, skipping the Python environment."""
    found = []
    for folder, dirs, files in os.walk(text):
        dirs[:] = [d for d in dirs if os.path.join(folder, d) not in {venv!r}]
        found += [os.path.join(folder, name) for name in files if os.access(os.path.join(folder, name), os.R_OK)]
        found += [os.path.join(folder, d) + "/" for d in dirs]
    return found
'''


def allowed_under(root, view) -> set[str]:
    """What the allow-list names under root: every file and folder of each readable path, and the folders above."""
    from gradebox.box import CHILD_SIDE
    allowed = set()
    for path in (*CHILD_SIDE, *view.readable):
        if not path.exists() or root not in path.parents:
            continue
        allowed |= {f"{parent}/" for parent in path.parents if root in parent.parents}
        if path.is_dir():
            allowed.add(f"{path}/")
            allowed |= {f"{p}/" if p.is_dir() else str(p) for p in path.rglob("*")}
        else:
            allowed.add(str(path))
    return allowed


@needs_box
def test_the_box_shows_exactly_its_allow_list_of_the_repository():
    """From inside a box, every path of the repository that the child can read, against the allow-list: the engine's
    child side, the adapters and what they import, the data; not the checks, planted bugs, source/ or anything
    added later."""
    import sys
    venv = {sys.prefix, sys.base_prefix}
    nb = with_cell("02_tokenization", "split_words", LISTER.format(venv=sorted(venv)))
    impl = boxed("02_tokenization", nb)
    try:
        seen = set(impl.call("split_words", str(REPO)))
    finally:
        impl.close()
    seen = {p for p in seen if "__pycache__" not in p}
    expected = {p for p in allowed_under(REPO, box_view()) if "__pycache__" not in p and
                not any(p.startswith(v) for v in venv)}
    assert seen == expected, (f"readable but not allowed: {sorted(seen - expected)[:20]}\n"
                              f"allowed but not readable: {sorted(expected - seen)[:20]}")
    assert not any("/checks" in p or "/mutants" in p or "/source/" in p or "/adversarial" in p for p in seen)
