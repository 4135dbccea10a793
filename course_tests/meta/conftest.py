"""Fixtures for the course's meta-tests: executing notebooks as Jupyter would, scratch course roots, and one
graded class (the sample class, bad input and every adversarial submission, graded together in one run)."""
from __future__ import annotations

import ast
import hashlib
import os
import shutil
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import nbclient
import nbformat
import pytest

from course_tests import adversarial
from gradebox import notebooks
from gradebox.limits import Limits
from trailblaze import grader, pipeline
from trailblaze.coursedir import COURSE, CourseDirectory
from trailblaze.nbgrader_cli import Nbgrader
from trailblaze.nbgrader_ext import kernel_environment
from trailblaze.options import GradingOptions


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


GRADED_CLASS_SECONDS = 1200


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items):
    """Under `pytest -n N --dist loadgroup`, every test that reads the graded class runs on the one worker that graded
    it: the class is graded once per run. Whichever of them runs first waits for the whole class (about five
    minutes on 2 busy cores), so each may take up to 20 minutes, whatever file it is in and whichever runs first."""
    for item in items:
        if "graded_class" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("graded_class"))
            item.add_marker(pytest.mark.timeout(GRADED_CLASS_SECONDS))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """The grouping must really happen: pytest-xdist 3.8 cannot mark groups under pytest 9, and then the class would
    be graded once per worker, silently."""
    if getattr(session.config.option, "loadgroup", False) and os.environ.get("PYTEST_XDIST_WORKER"):
        ungrouped = [i.nodeid for i in session.items if "graded_class" in getattr(i, "fixturenames", ())
                     and not i.nodeid.endswith("@graded_class")]
        if ungrouped:
            raise pytest.UsageError(f"pytest-xdist did not group {ungrouped[0]} with the graded class: "
                                    "pytest and pytest-xdist are not the pinned versions (requirements.txt)")


def exercise_names(nb) -> dict[str, str]:
    """Each function or class a solution cell defines -> that cell's exercise (its grade_id), in notebook order."""
    return {node.name: notebooks.grade_id(cell) for cell in nb.cells if notebooks.kind(cell) == "solution"
            for node in ast.parse(notebooks.strip_magics(cell.source)).body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def with_solutions_replaced(source, definition: str):
    """A copy of a source notebook whose every solution function and class is replaced, by a last cell, with
    `_replacement(name, index)`, which `definition` (Python source) defines: nulls, echoes and the like."""
    names = list(exercise_names(source))
    nb = nbformat.from_dict(source)
    nb.cells.append(nbformat.v4.new_code_cell(
        f"{definition}\n\nfor _index, _name in enumerate({names!r}):\n    globals()[_name] = _replacement(_name, _index)\n"))
    return nb, names


# The course secret of the meta-tests' scratch courses and their other keyed runs (trailblaze/secret.py): fixed, so
# that a run can be repeated; a real course makes its own on first use.
META_SECRET = b"trailblaze meta-tests: not a course's secret"


def scratch_course(folder: Path) -> CourseDirectory:
    """A scratch course directory holding a copy of source/ and the meta-tests' course secret: nbgrader writes
    everything else there."""
    shutil.copytree(COURSE.source, folder / "source")
    course = CourseDirectory(folder)
    course.secret.write_text(META_SECRET.decode() + "\n")
    return course


@pytest.fixture
def course(tmp_path) -> CourseDirectory:
    return scratch_course(tmp_path)


RELEASED = "03_attention"  # the quickest assignment to box (no transformers to import): for pipeline runs


@pytest.fixture(scope="session")
def released_once(tmp_path_factory) -> CourseDirectory:
    course = scratch_course(tmp_path_factory.mktemp("released"))
    pipeline.release(Nbgrader(course), [RELEASED])
    pipeline.write_submissions(RELEASED, course)
    return course


@pytest.fixture
def released(released_once, tmp_path) -> CourseDirectory:
    """A scratch course with RELEASED released (gradebook included) and the sample class submitted, not graded: a
    copy for each test, released once."""
    shutil.copytree(released_once.root, tmp_path / "released")
    return CourseDirectory(tmp_path / "released")


# Shorter deadlines than the defaults so that the attacks that loop cost seconds, not minutes; the solutions need
# far less than these (the longest call of any solution takes under 4 s on 2 idle cores).
CLASS_OPTIONS = GradingOptions(jobs=2, limits=Limits(call_seconds=12, load_seconds=60, total_seconds=300))
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
    course: CourseDirectory
    grades: dict
    report: str
    files_before: dict  # folder -> file -> sha256, for submitted/, source/ and release/
    files_after: dict
    canary_hits: list
    regrades: dict  # the export after the second run (it regrades adversarial.ASSIGNMENT only)
    second_report: str


@pytest.fixture(scope="session")
def graded_class(tmp_path_factory) -> GradedClass:
    """The main job on a scratch course root with, beside the sample class: `broken` (not JSON), `deleted_test_cell`
    (partly_wrong with its last graded cell deleted), every adversarial submission and, on 03 and 04, the solutions
    done with forbidden shortcuts (adversarial.SHORTCUTS_THAT_PASS); then the grade command run a
    second time on the same submissions of adversarial.ASSIGNMENT."""
    course = scratch_course(tmp_path_factory.mktemp("course"))
    HOST_TMP_TARGET.unlink(missing_ok=True)
    lines: list[str] = []
    pipeline.prepare(course, say=lines.append)
    for assignment in course.assignments():
        broken = course.submitted_notebook("broken", assignment)
        broken.parent.mkdir(parents=True)
        broken.write_text('{"cells": [')
        tampered = pipeline.sample_submissions(assignment, course)["partly_wrong"]
        last_test = [c for c in tampered.cells if notebooks.kind(c) == "test"][-1]
        tampered.cells = [c for c in tampered.cells if c is not last_test]
        notebooks.write(tampered, course.submitted_notebook("deleted_test_cell", assignment))
    for assignment in sorted({a for a, _, _ in adversarial.SHORTCUTS_THAT_PASS}):
        solutions = pipeline.sample_submissions(assignment, course)["solutions"]
        notebooks.write(adversarial.shortcut_submission(solutions, assignment),
                        course.submitted_notebook(adversarial.SHORTCUT_STUDENT, assignment))
    bases = pipeline.sample_submissions(adversarial.ASSIGNMENT, course)
    source_nb = notebooks.read(course.source_notebook(adversarial.ASSIGNMENT))
    solutions = "\n\n".join(pipeline.strip_solution_markers(c.source) for c in source_nb.cells
                             if notebooks.kind(c) in ("solution", "provided"))
    canary = Canary(solutions)
    try:
        pipeline.write_attacks(course, bases, canary.port)
        before = {folder: tree_digest(course.root / folder) for folder in ("submitted", "source", "release")}
        grades = grader.grade(course, options=CLASS_OPTIONS, say=lines.append, first=pipeline.SAMPLE_STUDENTS,
                              append_log=True)
        after = {folder: tree_digest(course.root / folder) for folder in ("submitted", "source", "release")}
    finally:
        canary.close()
    second: list[str] = []  # again, on the assignment that holds the attacks (all five would only take longer)
    regrades = grader.grade(course, [adversarial.ASSIGNMENT], CLASS_OPTIONS, say=second.append,
                            first=pipeline.SAMPLE_STUDENTS)
    return GradedClass(course, grades, "\n".join(lines), before, after, canary.hits, regrades, "\n".join(second))


@dataclass
class DataMirror:
    """A local web server holding the pinned files the course-data cell downloads (TRAILBLAZE_MIRROR)."""
    folder: Path
    url: str
    requests: list


@pytest.fixture
def data_mirror(tmp_path) -> DataMirror:
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from course_tests.provided import course_data
    from trailblaze.coursedir import DOWNLOADS, GPT2_FILES

    folder = tmp_path / "mirror"
    folder.mkdir()
    for name in course_data.GPT2_SHA256:
        shutil.copy(GPT2_FILES / name, folder / name)
    shutil.copy(DOWNLOADS / course_data.CORPUS_ARCHIVE, folder / course_data.CORPUS_ARCHIVE)
    requests = []

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, format, *args):
            requests.append(self.path)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield DataMirror(folder, f"http://127.0.0.1:{server.server_address[1]}/", requests)
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]
