"""What the class's people do from a shell on the hub, each as their own Unix user (root runs it for them)."""
from __future__ import annotations

from pathlib import Path

from trailblaze.classroom import Classroom
from trailblaze.classroom.provision import as_user


def run_as(room: Classroom, user: str, *cmd, cwd: Path | None = None) -> str:
    """`cmd` as `user`, with the classroom environment first on PATH; its output."""
    return as_user(user, *cmd, cwd=cwd, env={"PATH": f"{room.env / 'bin'}:/usr/local/bin:/usr/bin:/bin"}).stdout


def nbgrader(room: Classroom, user: str, *args: str) -> str:
    """nbgrader as `user`: the instructor's from their course directory, a student's from their home."""
    cwd = room.course.root if user == room.instructor else None
    return run_as(room, user, room.python, "-m", "nbgrader", *args, cwd=cwd)


def release(room: Classroom, assignments: list[str]) -> None:
    """The instructor makes each student version (and its gradebook entry) and puts it in the exchange."""
    for assignment in assignments:
        nbgrader(room, room.instructor, "generate_assignment", assignment, "--force")
        nbgrader(room, room.instructor, "release_assignment", assignment, "--force")


def grade(room: Classroom, assignments: list[str], *options: str) -> str:
    """The instructor collects and grades with the course's grader: student code runs in boxes as the
    instructor's own user (an unprivileged user namespace), then the gradebook, feedback and reports. `options`
    go to the grader (--jobs N, --call-seconds S)."""
    for assignment in assignments:
        nbgrader(room, room.instructor, "collect", assignment)
    args = [a for assignment in assignments for a in ("--assignment", assignment)]
    return run_as(room, room.instructor, room.python, "-m", "trailblaze.grader", *args, *options,
                  cwd=room.course.root)
