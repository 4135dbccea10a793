"""The cells the course provides (trailblaze/provided.py) and what a student installs: in step, and working.

The course-data cell downloads from a local mirror here (TRAILBLAZE_MIRROR): no test reaches the internet.
"""
from __future__ import annotations

import ast
import doctest
import importlib.metadata
import os
import re
import sys
from pathlib import Path

import pytest

from course_tests.provided import course_data
from gradebox import notebooks
from trailblaze import provided
from trailblaze.coursedir import COURSE, REPO

ASSIGNMENTS = COURSE.assignments()
STUDENT_REQUIREMENTS = REPO / "requirements-student.txt"


def pins(path) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return dict(line.split("==") for line in lines if line)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_notebook_has_its_provided_cells_current(assignment):
    nb = notebooks.read(COURSE.source_notebook(assignment))
    assert not provided.with_provided_cells(COURSE, assignment, nb), \
        "run `python -m trailblaze.provided`, then `python3 course.py grade`, and commit"
    for grade_id, _, _ in provided.wanted(COURSE, assignment, nb):
        assert notebooks.kind(notebooks.find_cell(nb, grade_id)) == "provided", f"{grade_id}: locked, provided"
    if "colab" in [notebooks.grade_id(c) for c in nb.cells]:
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert notebooks.grade_id(first_code) == "colab", "Colab's installs must come before the imports"


def test_the_readme_has_a_colab_badge_for_every_notebook():
    readme = (REPO / "README.md").read_text()
    assert provided.readme_with_badges(readme, COURSE) == readme, "run `python -m trailblaze.provided`"
    for assignment in ASSIGNMENTS:
        assert f"({provided.colab_url(COURSE, assignment)})" in readme
        assert COURSE.release_notebook(assignment).exists()


def test_colab_fetches_every_file_that_comes_with_a_notebook_and_installs_at_the_pins():
    nb = notebooks.read(COURSE.source_notebook("05_training"))
    source = notebooks.find_cell(nb, "colab").source
    ast.parse(source)
    assert '["trainer.py"]' in source and provided.raw_url("05_training", "") in source
    assert f'"tiktoken=={pins(REPO / "requirements.txt")["tiktoken"]}"' in source
    assert provided.colab_source(COURSE, "03_attention", notebooks.read(COURSE.source_notebook("03_attention"))) \
        is None, "03 imports nothing Colab lacks and ships no other file"


def test_the_course_data_cell_imports_only_the_standard_library_and_tiktoken():
    tree = ast.parse(provided.course_data_source())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert names - set(sys.stdlib_module_names) == {"tiktoken"}


def test_the_course_data_examples_hold():
    result = doctest.testmod(course_data)
    assert result.attempted >= 2 and not result.failed


def test_student_requirements_pin_what_the_release_notebooks_import_as_the_course_does():
    student, course = pins(STUDENT_REQUIREMENTS), pins(REPO / "requirements.txt")
    assert {name: course.get(name) for name in student} == student, "a student pin differs from requirements.txt"
    distributions = importlib.metadata.packages_distributions()
    imported, shipped = set(), set()
    for assignment in ASSIGNMENTS:
        imported |= provided.imports(notebooks.read(COURSE.release_notebook(assignment)))
        for extra in provided.companions(COURSE, assignment):
            imported |= provided.imports_of((COURSE.release / assignment / extra).read_text())
            shipped.add(extra.removesuffix(".py"))
    third_party = imported - set(sys.stdlib_module_names) - shipped
    needed = {canonical(distributions[name][0]) for name in third_party}
    installed = installed_with(student)
    assert needed <= installed, f"the notebooks import {sorted(needed - installed)}, which the student file lacks"
    assert not {"nbgrader", "pytest", "hypothesis", "copydetect"} & set(student), "no grading tools for students"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_with(requirements) -> set[str]:
    """The distributions pip installs for these requirements: them and, recursively, what they require (in the
    course's environment, which holds them all)."""
    from packaging.requirements import Requirement

    seen, todo = set(), [canonical(r) for r in requirements]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in importlib.metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonical(requirement.name))
    return seen


@pytest.fixture
def student_cache(tmp_path, monkeypatch, data_mirror):
    """A student's machine: no prepared data, a cache in an empty home, the mirror instead of the internet."""
    for name in ("TRAILBLAZE_DATA", "TIKTOKEN_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(course_data.MIRROR, data_mirror.url)
    return tmp_path / ".cache" / "trailblaze-gpt"


def test_missing_data_is_downloaded_once_checked_and_kept(student_cache, data_mirror):
    text = course_data.read_corpus("val")
    assert course_data._sha256(text.encode()) == course_data.CORPUS_SHA256["val.txt"]
    assert sorted(p.name for p in (student_cache / "shakespeare").iterdir()) == ["train.txt", "val.txt"]
    enc = course_data.gpt2_encoding()
    assert enc.decode(enc.encode(text[:5000])) == text[:5000] and enc.n_vocab == 50257
    assert len(list((student_cache / "tiktoken").iterdir())) == 2
    served = len(data_mirror.requests)
    course_data.read_corpus("train"), course_data.gpt2_files(), course_data.gpt2_encoding()
    assert len(data_mirror.requests) == served == 3, data_mirror.requests  # the archive and GPT-2's two files


def test_a_download_that_does_not_match_its_pin_is_never_kept(student_cache, data_mirror):
    (data_mirror.folder / "vocab.bpe").write_bytes(b"#version: 0.2\nnot GPT-2's merges\n")
    with pytest.raises(course_data.CourseDataMissing, match="is not the pinned vocab.bpe"):
        course_data.gpt2_files()
    assert not (student_cache / "gpt2" / "vocab.bpe").exists()


def test_offline_the_message_says_what_to_do(student_cache, monkeypatch, closed_port):
    monkeypatch.setenv(course_data.MIRROR, f"http://127.0.0.1:{closed_port}")
    with pytest.raises(course_data.CourseDataMissing) as raised:
        course_data.read_corpus("val")
    message = str(raised.value)
    for words in ("could not be downloaded", "Connect to the internet", "python3 course.py setup", "TRAILBLAZE_DATA",
                  "Your exercises do not need the data"):
        assert words in message
    assert not student_cache.exists() or not any(student_cache.rglob("*.txt"))


def test_in_the_course_environment_nothing_is_downloaded(monkeypatch, closed_port):
    monkeypatch.setenv(course_data.MIRROR, f"http://127.0.0.1:{closed_port}")  # any download would fail
    prepared = Path(os.environ["TRAILBLAZE_DATA"])  # set for the course's .venv by its setup
    assert course_data.course_file("shakespeare/val.txt") == prepared / "shakespeare" / "val.txt"
    assert course_data.gpt2_files()[0] == prepared / "gpt2" / "vocab.bpe"
    assert course_data.gpt2_encoding().encode("Hello world") == [15496, 995]


def test_a_name_outside_the_course_data_is_refused():
    with pytest.raises(ValueError, match="not a course data file"):
        course_data.course_file("../etc/passwd")
