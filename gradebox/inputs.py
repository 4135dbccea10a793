"""Hidden inputs per student. A check draws its random inputs from seeds it names (`make_generator(7)`,
`Random(2)`); while a student is graded, each seed is mixed with a key made from the course's secret, the student,
the assignment and the check (an HMAC), so two students get different inputs and a rerun the same ones. With no key
(PUBLIC: `pytest --submission`, the meta-tests' default) the seeds are used as written.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
import random

PUBLIC = b""
_KEY: contextvars.ContextVar[bytes] = contextvars.ContextVar("hidden_inputs_key", default=PUBLIC)


def student_key(secret: bytes, student: str, assignment: str) -> bytes:
    """The key of one student's hidden inputs on one assignment.

    >>> ada, bo = student_key(b"secret", "ada", "03_attention"), student_key(b"secret", "bo", "03_attention")
    >>> ada == student_key(b"secret", "ada", "03_attention") and ada != bo
    True
    """
    return _mac(secret, f"student\0{assignment}\0{student}")


def _mac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


@contextlib.contextmanager
def drawn_for(key: bytes, check: str):
    """Within this block, the seeds of `check` are mixed with `key` (PUBLIC: left as written)."""
    token = _KEY.set(_mac(key, f"check\0{check}") if key else PUBLIC)
    try:
        yield
    finally:
        _KEY.reset(token)


def seed(number: int) -> int:
    """The seed a check's `number` stands for now.

    >>> seed(7)   # no student key set: as written
    7
    """
    key = _KEY.get()
    if not key:
        return number
    return int.from_bytes(_mac(key, f"seed\0{number}")[:8], "big") >> 1  # torch takes seeds below 2**63


def make_generator(number: int):
    """A torch generator for a check's own inputs, on the CPU (then moved: CPU and CUDA random streams differ). A
    seed that crosses into the box (an adapter builds weights from it) is passed as seed(number) instead: the box
    knows no key, and its adapters use gradebox.tensors.make_generator."""
    import torch  # here: the grader's recording process derives keys without importing torch
    return torch.Generator().manual_seed(seed(number))


def Random(number: int) -> random.Random:  # noqa: N802 (stands in for random.Random)
    return random.Random(seed(number))
