"""Running nbgrader's commands for one course directory, with their output kept in reports/nbgrader.log."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from trailblaze.coursedir import REPO, CourseDirectory


class GradingError(RuntimeError):
    """Something the instructor must fix before grading can go on (never a student's mistake)."""


STUDENT_FAILURE = re.compile(r"There was an error processing assignment '([^']+)' for student '([^']+)'")


class Nbgrader:
    """`nbgrader(*args)` runs one command; `over(command, assignments)` runs it for some assignments."""

    def __init__(self, course: CourseDirectory, env: dict | None = None, append: bool = False):
        self.course = course
        self.env = dict(os.environ, HF_HUB_OFFLINE="1", **(env or {}))
        self.log = course.nbgrader_log
        self.log.parent.mkdir(parents=True, exist_ok=True)
        if not append:
            self.log.write_text("")

    def patterns(self, assignments: list[str]) -> list[str]:
        """nbgrader's assignment argument for these assignments: "*" (one process, which nbgrader globs) when they are
        all of the course's, else each one."""
        return ["*"] if sorted(assignments) == self.course.assignments() else list(assignments)

    def over(self, command: str, assignments: list[str], *args: str,
             refused: frozenset[tuple[str, str]] = frozenset()) -> list[tuple[str, str]]:
        """`command` for these assignments, in as few processes as patterns() allows, leaving out the `refused`
        (student, assignment) pairs; the pairs it could not process. A student with a refused submission is left
        out of the main run and run alone for each of their other submissions."""
        students = sorted({student for student, _ in refused})
        exclude = [f"--CourseDirectory.student_id_exclude={','.join(students)}"] if students else []
        failed = [pair for pattern in self.patterns(assignments) for pair in self(command, pattern, *args, *exclude)]
        for student in students:
            for assignment in assignments:
                if (student, assignment) not in refused and self.course.submission(student, assignment).is_dir():
                    failed += self(command, assignment, f"--student={student}", *args)
        return failed

    def __call__(self, *args: str) -> list[tuple[str, str]]:
        """Returns the (student, assignment) pairs nbgrader could not process (it carries on with the others and
        exits 1); any other failure stops the job."""
        return self.run(*args)[0]

    def run(self, *args: str) -> tuple[list[tuple[str, str]], str]:
        """(the (student, assignment) pairs nbgrader could not process, its output)."""
        cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={self.course.root}"]
        result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=self.env)
        output = result.stdout + result.stderr
        with self.log.open("a") as log:
            log.write(f"$ nbgrader {' '.join(args)}\n{output}\n")
        failed = sorted({(student, assignment) for assignment, student in STUDENT_FAILURE.findall(output)})
        if result.returncode != 0 and not failed:
            tail = "\n".join(output.strip().splitlines()[-15:])
            raise GradingError(f"nbgrader {' '.join(args)} failed (exit {result.returncode}); full log in "
                               f"{self.log}:\n{tail}")
        return failed, output
