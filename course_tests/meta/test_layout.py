"""The import rule of the repository's three layers, read from the code itself (every import, at any depth):

    tooling (trailblaze/)  ->  course content (course_tests/: checks, adapters, adversarial ...)  ->  engine (gradebox/)
    tooling                ->  engine

Nothing imports back up. And what runs in the grading box imports only what the box shows: the engine's child side
and the course's (course_tests/sandbox.py), so that the allow-list is complete.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from course_tests import PACKAGE, sandbox
from gradebox import ENGINE
from gradebox.box import CHILD_SIDE
from trailblaze.coursedir import REPO

TOOLING = REPO / "trailblaze"
TESTS = ("conftest.py", "test_checks.py", "meta")  # the course's own tests may use everything


def imported(path: Path) -> set[str]:
    """Top-level package-qualified names a module imports (absolute imports only; the project uses no other)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def modules(folder: Path, skip=()) -> list[Path]:
    return [p for p in sorted(folder.rglob("*.py")) if not set(p.relative_to(folder).parts) & set(skip)]


def layer_of(name: str) -> str | None:
    return {"gradebox": "engine", "course_tests": "content", "trailblaze": "tooling"}.get(name.split(".")[0])


def offending(paths: list[Path], forbidden: set[str]) -> list[str]:
    return [f"{p.name} imports {name}" for p in paths for name in sorted(imported(p)) if layer_of(name) in forbidden]


def test_the_engine_imports_no_course_and_no_tooling():
    assert modules(ENGINE)
    assert not offending(modules(ENGINE), {"content", "tooling"})


def test_course_content_never_imports_the_tooling():
    content = modules(PACKAGE, skip=TESTS)
    assert any("checks" in p.parts for p in content) and any("adversarial" in p.parts for p in content)
    assert not offending(content, {"tooling"})


def test_the_rule_would_catch_an_import_back_up(tmp_path):
    """An import deferred into a function counts as much as one at the top."""
    (tmp_path / "bad.py").write_text("import torch\n\ndef f():\n    from trailblaze.coursedir import REPO\n")
    assert offending([tmp_path / "bad.py"], {"tooling"}) == ["bad.py imports trailblaze.coursedir",
                                                             "bad.py imports trailblaze.coursedir.REPO"]


def child_side_files() -> set[Path]:
    files = set(CHILD_SIDE)
    for name in sandbox.CHILD_SIDE:
        path = PACKAGE / name
        files |= set(path.rglob("*.py")) if path.is_dir() else {path}
    return files


def module_file(name: str) -> Path | None:
    """The repository file of a dotted module name (a package's __init__.py), or None outside the repository."""
    if layer_of(name) in (None, "tooling"):
        return None if layer_of(name) is None else REPO / "trailblaze"
    base = REPO.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None  # `from package import name` where name is not a module


@pytest.mark.parametrize("path", sorted(child_side_files()), ids=lambda p: str(p.relative_to(REPO)))
def test_what_runs_in_the_box_imports_only_what_the_box_shows(path):
    shown = child_side_files()
    missing = [name for name in sorted(imported(path)) if (f := module_file(name)) is not None and f not in shown]
    assert not missing, f"{path.relative_to(REPO)} imports {missing}, which the box does not show"
