"""Student code, and the one thin layer between checks and it.

Checks never touch a student's objects directly. They call `impl.call("adapter_name", *plain_args)`; the adapter
(a function of the course's adapters module for that assignment) builds what the student's function needs from
plain inputs (tensors, numbers, model specs), calls it, and returns plain values and tensors. `InProcess` runs the
adapters in this process (pytest on a trusted notebook, the grade cells of plain nbgrader); `gradebox.box.Boxed`
runs the same adapters in a boxed child and ships only data across.
"""
from __future__ import annotations

import contextlib
import dis
import io
import itertools
import re
import signal
import sys
import threading
import time
import traceback
import types
from pathlib import Path

from gradebox import notebooks

_LOADS = itertools.count()
CELL_SECONDS = 60  # a provided or solution cell that runs longer than this when loaded is stopped


class StudentError(Exception):
    """Student code raised. Carries plain data only: the exception's type name, its message (for the checks, which
    may read it), where it happened, and `shown`: the message as feedback may show it (shown_message), which is the
    message itself when the grader wrote it."""

    def __init__(self, type_name: str, message: str, where: str = "", shown: str | None = None):
        super().__init__(type_name, message, where)
        self.type_name, self.message, self.where = type_name, message, where
        self.shown = message if shown is None else shown

    # Not a wrong answer but no answer: the code is missing, unreadable or not written yet. The first two carry a
    # message that needs no function name in front of it.
    SELF_EXPLAINED = ("MissingDefinition", "NotebookError")
    ABSENT = (*SELF_EXPLAINED, "NotImplementedError")
    ABSENT_SAYS = ("is not implemented yet", "is not defined", "should be a function", "is not a readable Jupyter")

    @property
    def absent(self) -> bool:
        return self.type_name in self.ABSENT

    def explain(self, function: str) -> str:
        if self.type_name in self.SELF_EXPLAINED:
            return self.shown
        if self.type_name == "NotImplementedError":
            return f"{function} is not implemented yet (its cell still raises NotImplementedError)"
        where = f" ({self.where})" if self.where else ""
        return f"{function} raised {self.type_name}: {self.shown}{where}"


class GraderFault(RuntimeError):
    """The grader could not run the student's code at all (the box failed to start, say). Never a student's fault:
    it is reported to the instructor and nothing is recorded, so a rerun grades that notebook again."""


def _student_location(exc: BaseException) -> str:
    """The innermost line of student code in a traceback, e.g. 'cell top_k_filter, line 6'."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<cell ")]
    return f"{frames[-1].filename[1:-1]}, line {frames[-1].lineno}" if frames else ""


CUT = "\u2026"  # what stands where a value was cut out of a message
# Quoted strings with their escapes (to the end where the closing quote was cut off), the insides of [] and {}
# (innermost first), and numbers (shapes like 4x8 as one), but not the digits of a name such as mat1.
VALUES = re.compile(r"""'(?:[^'\\]|\\.)*(?:'|$)|"(?:[^"\\]|\\.)*(?:"|$)|\[[^\[\]]*\]|\{[^{}]*\}"""
                    r"""|(?<![A-Za-z_])[-+]?\d[\d_.]*(?:e[-+]?\d+)?(?:x\d+)*""")


def cut_values(message: str) -> str:
    """A message with its quoted strings, bracketed contents and numbers cut out: what Python or a library said.

    >>> cut_values("index 57 is out of bounds for dimension 0 with size 50")
    'index \u2026 is out of bounds for dimension \u2026 with size \u2026'
    """
    previous = None
    while previous != message:  # nested brackets go from the inside out
        previous, message = message, VALUES.sub(CUT, message)
    return re.sub(f"{CUT}(?:[ ,x]*{CUT})+", CUT, message)


def literal_parts(message: str, literals: list[str]) -> str:
    """The parts of `message` that are literals of the code that raised it; whatever was formatted in is cut.

    >>> literal_parts("unknown token hello in line", ["unknown token ", " in line"])
    'unknown token \u2026 in line'
    """
    covered = [False] * len(message)
    for literal in (text for text in literals if len(text) >= 3):
        start = message.find(literal)
        while start != -1:
            covered[start:start + len(literal)] = [True] * len(literal)
            start = message.find(literal, start + 1)
    shown = "".join(ch if keep else "\0" for ch, keep in zip(message, covered))
    return re.sub("\0+", CUT, shown)


def shown_message(exc: BaseException) -> str:
    """What of an exception's message feedback may show: nothing its code formatted in from the inputs (a hidden
    input must not reach any student's feedback). Raised by a `raise` in the student's cells: only the literal text
    of that code. Raised by an operation (Python, torch, a library): the message with its values cut out."""
    message = str(exc)[:500]
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None and tb.tb_frame.f_code.co_filename.startswith("<cell "):
        code = tb.tb_frame.f_code
        if any(i.offset == tb.tb_lasti and i.opname == "RAISE_VARARGS" for i in dis.get_instructions(code)):
            return literal_parts(message, [c for c in code.co_consts if isinstance(c, str)])
    return cut_values(message)


def as_student_error(exc: BaseException) -> StudentError:
    return StudentError(type(exc).__name__, str(exc)[:500], _student_location(exc), shown_message(exc))


class StudentCode:
    """The names a notebook defined, looked up with messages a student can act on."""

    def __init__(self, namespace: dict, load_errors: list[str]):
        self.namespace, self.load_errors = namespace, load_errors

    def function(self, name: str):
        fn = self.namespace.get(name)
        if fn is None:
            hint = ("; while loading the notebook: " + "; ".join(self.load_errors)) if self.load_errors else \
                ": is the cell that defines it missing or renamed?"
            raise StudentError("MissingDefinition", f"`{name}` is not defined{hint}")
        if not callable(fn):
            raise StudentError("MissingDefinition", f"`{name}` should be a function, but it is a "
                                                    f"{type(fn).__name__}")
        return fn

    def call(self, name: str, *args, **kwargs):
        fn = self.function(name)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise as_student_error(exc) from None


class Implementation:
    """An assignment's student code, reachable only through adapter calls."""

    def __init__(self, assignment: str):
        self.assignment = assignment

    def call(self, adapter: str, *args, **kwargs):
        raise NotImplementedError


class InProcess(Implementation):
    """`adapters`: the module whose functions `call` names (the course's adapters for this assignment)."""

    def __init__(self, assignment: str, adapters: types.ModuleType, namespace: dict,
                 load_errors: list[str] | None = None):
        super().__init__(assignment)
        self.student = StudentCode(namespace, list(load_errors or []))
        self.adapters = adapters

    @property
    def load_errors(self) -> list[str]:
        return self.student.load_errors

    def call(self, adapter: str, *args, **kwargs):
        fn = getattr(self.adapters, adapter)
        try:
            return fn(self.student, *args, **kwargs)
        except StudentError:
            raise
        except Exception as exc:  # the adapter tripped over what the student's code returned
            raise as_student_error(exc) from None


class Unloadable(Implementation):
    """A submission that could not be read at all: every check fails with the same actionable message."""

    def __init__(self, assignment: str, reason: str):
        super().__init__(assignment)
        self.reason = reason
        self.load_errors = [reason]

    def call(self, adapter: str, *args, **kwargs):
        raise StudentError("NotebookError", self.reason)


@contextlib.contextmanager
def time_limit(seconds: float):
    """Stop a runaway cell with SIGALRM (main thread only). An outer timer on the same signal (pytest-timeout's) is
    saved and restored with the time it had left, so this never switches it off."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise TimeoutError(f"stopped after {seconds:g} s")

    outer_delay, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    previous = signal.signal(signal.SIGALRM, on_alarm)
    start = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, min(seconds, outer_delay) if outer_delay > 0 else seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay > 0:
            left = outer_delay - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), outer_interval)


def load_notebook(path: Path, assignment: str, adapters: types.ModuleType) -> Implementation:
    """Execute a notebook's solution and provided cells (never its tests or demos) into a fresh namespace.

    A cell that fails is recorded and loading goes on, as in Jupyter: the checks of the functions it should have
    defined then fail with that error in their message, and every other check still runs.
    """
    try:
        nb = notebooks.read(path)
    except notebooks.NotebookError as err:
        return Unloadable(assignment, str(err))
    return load_cells(nb, assignment, adapters)


def load_cells(nb, assignment: str, adapters: types.ModuleType) -> InProcess:
    """`load_notebook` for a notebook already in memory (a mutant, say)."""
    return load_sources(notebooks.implementation_sources(nb), assignment, adapters)


def load_sources(cells: list[tuple[str, str]], assignment: str, adapters: types.ModuleType) -> InProcess:
    """Run (label, source) cells in order into a fresh namespace, recording the errors of failing cells."""
    module = types.ModuleType(f"submission_{assignment}_{next(_LOADS)}")
    namespace, errors = module.__dict__, []
    # While the cells run, the namespace is a registered module: @dataclass (and pickle) look classes up there.
    sys.modules[module.__name__] = module
    try:
        for label, source in cells:
            try:
                code = compile(source, f"<cell {label}>", "exec")
                with time_limit(CELL_SECONDS), contextlib.redirect_stdout(io.StringIO()), \
                        contextlib.redirect_stderr(io.StringIO()):
                    exec(code, namespace)
            except (Exception, SystemExit) as exc:
                err = as_student_error(exc)
                errors.append(f"{label} raised {err.type_name}: {err.shown}")
    finally:
        del sys.modules[module.__name__]
    return InProcess(assignment, adapters, namespace, errors)
