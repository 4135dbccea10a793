"""The course's secret: what each student's hidden inputs are derived from (gradebox.inputs), so that two students
get different inputs and a rerun the same ones. It is made on first use beside the gradebook (course_secret.key,
readable by its owner only, gitignored), or given in TRAILBLAZE_COURSE_SECRET (several graders of one course must
share it). It never enters release/, the box or a student's feedback. Change it and every result is graded again.
"""
from __future__ import annotations

import os
import secrets

from gradebox import inputs
from trailblaze.coursedir import CourseDirectory

VARIABLE = "TRAILBLAZE_COURSE_SECRET"


class SecretError(RuntimeError):
    pass


def course_secret(course: CourseDirectory) -> bytes:
    given = os.environ.get(VARIABLE)
    if given:
        return given.encode()
    path = course.secret
    if not path.exists():  # written whole, then linked into place: a grader that starts beside us reads one secret
        fresh = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        try:
            os.link(fresh, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(fresh)
    secret = path.read_text().strip()
    if not secret:
        raise SecretError(f"{path} is empty: delete it (a new secret is made, and every result graded again) or "
                          f"set {VARIABLE}")
    return secret.encode()


def inputs_key(course: CourseDirectory, student: str, assignment: str) -> bytes:
    """The key `student`'s hidden inputs on `assignment` are drawn with."""
    return inputs.student_key(course_secret(course), student, assignment)
