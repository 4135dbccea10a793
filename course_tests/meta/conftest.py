"""Fixtures for the course's meta-tests: executing notebooks as Jupyter would, scratch course roots, and one
graded class (the sample class, bad input and every adversarial submission, graded together in one run)."""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import nbclient
import pytest

from course_tests import adversarial
from course_tests.boxed import Limits
from trailblaze import grader, notebooks, paths, pipeline
from trailblaze.nbgrader_ext import kernel_environment


@pytest.fixture(scope="session")
def execute_notebook():
    """Run a notebook top to bottom in a real kernel (errors recorded, not raised); cached per path."""
    os.environ.update(kernel_environment(), TRAILBLAZE_QUICK="1")  # demos that train run for seconds
    cache = {}

    def run(path):
        if path not in cache:
            nb = notebooks.read(path)
            client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                                             resources={"metadata": {"path": str(path.parent)}})
            client.execute()
            cache[path] = nb
        return cache[path]
    return run


@pytest.fixture
def course_root(tmp_path):
    """A scratch course directory holding a copy of source/: nbgrader writes everything else there."""
    shutil.copytree(paths.SOURCE, tmp_path / "source")
    return tmp_path


# Shorter deadlines than the defaults so that the attacks that loop cost seconds, not minutes; the solutions need
# far less than these.
CLASS_LIMITS = Limits(call_seconds=20, load_seconds=60, total_seconds=300)
HOST_TMP_TARGET = Path("/tmp/trailblaze-pwned")  # adversarial.WRITER tries to create it


class Canary:
    """A server on the grader's loopback that hands the instructor's solutions to whoever connects."""

    def __init__(self, payload: str):
        self.payload, self.hits = payload.encode(), []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, address = self.server.accept()
            except OSError:
                return
            self.hits.append(address)
            with conn:
                conn.sendall(self.payload)

    def close(self):
        self.server.close()


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@dataclass
class GradedClass:
    root: Path
    grades: dict
    report: str
    files_before: dict  # folder -> file -> sha256, for submitted/, source/ and release/
    files_after: dict
    canary_hits: list
    regrades: dict  # the export after the second run (it regrades 01_setup only)
    second_report: str


@pytest.fixture(scope="session")
def graded_class(tmp_path_factory) -> GradedClass:
    """The main job on a scratch course root with, beside the sample class: `broken` (not JSON), `deleted_test_cell`
    (partly_wrong with its last graded cell deleted) and every adversarial submission; then the grade command run a
    second time on the same submissions of 01_setup."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(paths.SOURCE, root / "source")
    HOST_TMP_TARGET.unlink(missing_ok=True)
    lines: list[str] = []
    pipeline.prepare(root, say=lines.append)
    for assignment in paths.assignments():
        name = paths.source_notebook(assignment).name
        broken = root / "submitted" / "broken" / assignment / name
        broken.parent.mkdir(parents=True)
        broken.write_text('{"cells": [')
        tampered = pipeline.sample_submissions(assignment, root)["partly_wrong"]
        last_test = [c for c in tampered.cells if notebooks.kind(c) == "test"][-1]
        tampered.cells = [c for c in tampered.cells if c is not last_test]
        notebooks.write(tampered, root / "submitted" / "deleted_test_cell" / assignment / name)
    bases = pipeline.sample_submissions(adversarial.ASSIGNMENT, root)
    source_nb = notebooks.read(paths.source_notebook(adversarial.ASSIGNMENT))
    solutions = "\n\n".join(pipeline.strip_solution_markers(c.source) for c in source_nb.cells
                             if notebooks.kind(c) in ("solution", "provided"))
    canary = Canary(solutions)
    try:
        adversarial.write_attacks(root, bases, canary.port)
        before = {folder: tree_digest(root / folder) for folder in ("submitted", "source", "release")}
        grades = grader.grade(root, jobs=2, say=lines.append, limits=CLASS_LIMITS, first=pipeline.SAMPLE_STUDENTS,
                              append_log=True)
        after = {folder: tree_digest(root / folder) for folder in ("submitted", "source", "release")}
    finally:
        canary.close()
    second: list[str] = []  # again, on the assignment that holds the attacks (all five would only take longer)
    regrades = grader.grade(root, [adversarial.ASSIGNMENT], jobs=2, say=second.append, limits=CLASS_LIMITS,
                            first=pipeline.SAMPLE_STUDENTS)
    return GradedClass(root, grades, "\n".join(lines), before, after, canary.hits, regrades, "\n".join(second))
