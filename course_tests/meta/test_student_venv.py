"""A student's own machine: every release notebook, solved, runs top to bottom in a fresh virtualenv holding only
requirements-student.txt, away from the course's folder and its prepared data.

- Online, the course-data cell downloads the pinned files, here from a local mirror (TRAILBLAZE_MIRROR), and keeps
  them in the student's cache; a proxy that refuses every connection stands for the rest of the internet, and the
  model hub is off (01 and 04 fall back to random weights, as their prose says).
- With no data and no network, the cells that read the data stop with the course-data message, and nothing else
  fails: every exercise and every visible test that reads no data still runs.
The virtualenv is built once, on one worker, for the whole group.
"""
from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbclient
import pytest

from course_tests.provided import course_data
from gradebox import notebooks
from trailblaze import pipeline, provided
from trailblaze.coursedir import COURSE, REPO

pytestmark = [pytest.mark.xdist_group("student_venv"), pytest.mark.timeout(900)]
ASSIGNMENTS = COURSE.assignments()
KERNEL = "trailblaze-student"
MISSING = course_data.CourseDataMissing.__name__


@pytest.fixture(scope="session")
def student_kernels(tmp_path_factory) -> Path:
    """A fresh virtualenv with the student requirements, and a Jupyter kernel spec for it: the JUPYTER_PATH entry."""
    root = tmp_path_factory.mktemp("student")
    venv = root / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile",
                              "-r", str(REPO / "requirements-student.txt")], capture_output=True, text=True)
    assert install.returncode == 0, f"pip install -r requirements-student.txt failed:\n{install.stderr[-3000:]}"
    spec = root / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    return root / "jupyter"


@pytest.fixture
def laptop(student_kernels, tmp_path, monkeypatch, closed_port):
    """The environment a student's kernel starts in: an empty home, none of the course's variables, no internet."""
    for name in ("PYTHONPATH", "TRAILBLAZE_DATA", "TIKTOKEN_CACHE_DIR", "XDG_CACHE_HOME", course_data.MIRROR):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    refused = f"http://127.0.0.1:{closed_port}"
    for name, value in {"HOME": str(home), "JUPYTER_PATH": str(student_kernels), "PATH": "/usr/bin:/bin",
                        "TRAILBLAZE_QUICK": "1", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg",
                        "HTTP_PROXY": refused, "HTTPS_PROXY": refused, "NO_PROXY": "127.0.0.1,localhost"}.items():
        monkeypatch.setenv(name, value)
    return home


def solved_release(assignment: str, folder: Path) -> Path:
    """What a student who solved everything has: the release folder, each solution cell filled in."""
    shutil.copytree(COURSE.release / assignment, folder)
    nb = pipeline.fill_solutions(notebooks.read(COURSE.release_notebook(assignment)),
                                 notebooks.read(COURSE.source_notebook(assignment)))
    path = folder / COURSE.notebook_name(assignment)
    notebooks.write(nb, path)
    return path


def run(path: Path):
    nb = notebooks.read(path)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name=KERNEL, allow_errors=True,
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return nb


def errors(nb) -> list[tuple[str, str, str, str]]:
    """(cell, kind, exception, message) of every cell that raised."""
    return [(notebooks.grade_id(c) or f"cell {i + 1}", notebooks.kind(c), o.ename, o.evalue)
            for i, c in enumerate(nb.cells) if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]


def calls_for_data(cell) -> bool:
    return any(f"{name}(" in cell.source for name in provided.NEEDS_DATA)


def assigned(cell) -> set[str]:
    """The names a cell's top-level statements bind."""
    tree = ast.parse(notebooks.strip_magics(cell.source))
    return {t.id for node in tree.body for t in ast.walk(node) if isinstance(t, ast.Name)
            and isinstance(t.ctx, ast.Store)}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_a_solved_notebook_runs_in_the_student_environment_downloading_its_data(assignment, laptop, tmp_path,
                                                                              data_mirror, monkeypatch):
    monkeypatch.setenv(course_data.MIRROR, data_mirror.url)
    nb = run(solved_release(assignment, tmp_path / assignment))
    assert not errors(nb), f"the solved release raised in the student's environment: {errors(nb)}"
    visible = [c for c in nb.cells if notebooks.kind(c) == "visible"]
    assert visible and all("visible checks passed" in "".join(o.get("text", "") for o in c.outputs)
                           for c in visible), "every visible test says it passed"
    cache = laptop / ".cache" / "trailblaze-gpt"
    if not provided.needs_data(nb):
        assert not cache.exists() and not data_mirror.requests
        return
    kept = {str(p.relative_to(cache)): course_data._sha256(p.read_bytes()) for p in cache.rglob("*") if p.is_file()}
    pinned = {**{f"gpt2/{n}": d for n, d in course_data.GPT2_SHA256.items()},
              **{f"tiktoken/{course_data.tiktoken_cache_name(n)}": d for n, d in course_data.GPT2_SHA256.items()},
              **{f"shakespeare/{n}": d for n, d in course_data.CORPUS_SHA256.items()}}
    assert kept.items() <= pinned.items(), "every file kept matches its pin"
    assert {f"gpt2/{n}" for n in course_data.GPT2_SHA256} <= set(kept), "GPT-2's files were downloaded and kept"


@pytest.mark.parametrize("assignment", [a for a in ASSIGNMENTS
                                        if provided.needs_data(notebooks.read(COURSE.source_notebook(a)))])
def test_with_no_data_only_the_cells_that_read_it_stop_and_they_say_why(assignment, laptop, tmp_path, closed_port,
                                                                      monkeypatch):
    monkeypatch.setenv(course_data.MIRROR, f"http://127.0.0.1:{closed_port}")
    nb = run(solved_release(assignment, tmp_path / assignment))
    labels = {notebooks.grade_id(c) or f"cell {i + 1}": c for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    raised = errors(nb)
    assert any(name == MISSING for _, _, name, _ in raised), "the cells that read the data should stop"
    unbound: set[str] = set()  # what the stopped cells would have defined, in the order they ran
    for cell, kind, name, message in raised:
        assert kind in ("demo", "visible"), f"{cell} ({kind}) raised {name}: {message}"
        if name == MISSING:
            assert "Connect to the internet" in message, message
        else:
            assert name == "NameError" and any(f"'{n}'" in message for n in unbound), \
                f"{cell} raised {name}, not for want of the data: {message}"
        unbound |= assigned(labels[cell])
    for label, cell in labels.items():
        if notebooks.kind(cell) == "visible" and not calls_for_data(cell):
            assert "visible checks passed" in "".join(o.get("text", "") for o in cell.outputs), \
                f"{label} reads no data, yet did not pass"
