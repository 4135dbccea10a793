"""Every assignment has all of its parts (trailblaze/assignments.py), and a scaffolded one fits together: its solution
passes its check, its planted bug is caught, and nbgrader releases it with the solution stripped."""
from __future__ import annotations

import importlib.util
import sys

import pytest

import course_tests.checks  # noqa: F401  (registers every check)
from gradebox import notebooks
from gradebox.checks import REGISTRY, checks_for
from gradebox.runner import run_check
from gradebox.student import load_cells
from trailblaze import mutants, scaffold
from trailblaze.assignments import all_assignments
from trailblaze.checklists import unstated
from trailblaze.coursedir import COURSE, CourseDirectory
from trailblaze.nbgrader_cli import Nbgrader
from trailblaze.options import limits_for_students


@pytest.mark.parametrize("assignment", all_assignments(), ids=lambda a: a.id)
def test_every_assignment_has_all_its_parts(assignment):
    missing = [f"{part} ({path})" for part, path in assignment.files().items() if not path.exists()]
    assert not missing, f"{assignment.id} lacks: {missing}"
    assert assignment.points > 0
    assert checks_for(assignment.id), f"{assignment.checks_file} registers no check for {assignment.id}"
    assert mutants.load(assignment.id) and mutants.partly_wrong(assignment.id), \
        f"{assignment.mutants_file}: planted bugs and [samples] partly_wrong"


def limits_told(nb) -> bool:
    """The notebook's first cell states the limits grading puts on student code, as the course's options set them."""
    return limits_for_students() in nb.cells[0].source


@pytest.mark.parametrize("assignment", all_assignments(), ids=lambda a: a.id)
def test_the_notebook_tells_students_the_limits_of_grading(assignment):
    assert limits_told(notebooks.read(assignment.source_notebook)), \
        f"{assignment.source_notebook}: its first cell must end with trailblaze.options.limits_for_students()"


def import_file(name: str, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the check decorator looks the module's ASSIGNMENT up there
    spec.loader.exec_module(module)
    return module


def test_a_scaffolded_assignment_fits_together(tmp_path):
    assignment = "99_example"
    course, package = CourseDirectory(tmp_path / "course"), tmp_path / "course_tests"
    written = scaffold.scaffold(assignment, "Assignment 99 · Example", course, package)
    assert all(p.exists() for p in written) and len(written) == 4
    with pytest.raises(FileExistsError):
        scaffold.scaffold(assignment, "again", course, package)
    before = list(REGISTRY)
    try:
        import_file("scaffold_checks", package / "checks" / "example.py")
        adapters = import_file("scaffold_adapters", package / "adapters" / "example.py")
        checks = checks_for(assignment)
        assert checks
        source = notebooks.read(course.source_notebook(assignment))
        assert limits_told(source)
        assert not unstated(assignment, source), "the template's check names a phrase its exercise lacks"
        solved = load_cells(source, assignment, adapters)
        assert all(run_check(c, solved, "cpu").passed for c in checks)
        for spec in mutants.parse(package / "mutants" / f"{assignment}.toml", assignment):
            broken = load_cells(mutants.apply(source, [spec]), assignment, adapters)
            assert {c.name for c in checks if not run_check(c, broken, "cpu").passed} >= set(spec.killed_by)
        honest = mutants.parse_alternatives(package / "mutants" / f"{assignment}.toml", assignment)
        assert honest
        for alternative in honest:
            other = load_cells(mutants.substitute(source, alternative), assignment, adapters)
            assert all(run_check(c, other, "cpu").passed for c in checks), alternative.id
    finally:
        REGISTRY[:] = before
        for name in ("scaffold_checks", "scaffold_adapters"):
            sys.modules.pop(name, None)
    Nbgrader(course)("generate_assignment", assignment, "--force")
    release = notebooks.read(course.release_notebook(assignment))
    assert "raise NotImplementedError" in notebooks.find_cell(release, "scale").source
    assert "x * factor" not in "".join(c.source for c in release.cells)


def test_the_scaffold_refuses_a_bad_id():
    with pytest.raises(ValueError, match="two digits"):
        scaffold.scaffold("Example", "x", COURSE)
