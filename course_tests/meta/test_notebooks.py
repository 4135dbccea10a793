"""The course notebooks are well-formed nbgrader assignments that agree with their checks and the README."""
from __future__ import annotations

import ast
import contextlib
import io
import re

import nbformat
import pytest
from nbgrader.utils import determine_grade

from course_tests import adapters_for
from course_tests.meta.conftest import exercise_names
from gradebox import notebooks
from gradebox.checks import BUILDS_ON, checks_for
from gradebox.runner import FAIL, PASS, failed_in
from gradebox.student import load_cells
from trailblaze import expectations, mutants
from trailblaze.checklists import checklist, exercise_texts, plain, unstated
from trailblaze.coursedir import COURSE, REPO

ASSIGNMENTS = COURSE.assignments()
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


def source(assignment):
    return notebooks.read(COURSE.source_notebook(assignment))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_metadata_is_valid_and_grade_ids_unique(assignment):
    nb = source(assignment)
    nbformat.validate(nb)
    ids = [notebooks.grade_id(c) for c in nb.cells if notebooks.nbgrader_meta(c)]
    assert len(ids) == len(set(ids)), f"duplicate grade_ids: {sorted({i for i in ids if ids.count(i) > 1})}"
    for cell in nb.cells:
        meta = notebooks.nbgrader_meta(cell)
        if not meta:
            continue
        assert meta.get("schema_version") == 3 and meta.get("grade_id"), f"incomplete nbgrader metadata: {meta}"
        kind = notebooks.kind(cell)
        if kind == "solution":
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, meta["grade_id"]
        if kind == "test":
            assert meta.get("locked") and meta.get("points", 0) > 0, f"{meta['grade_id']}: locked, with points"
        if kind in ("provided", "visible"):
            assert meta.get("locked"), f"{meta['grade_id']}: provided code and visible tests are read-only"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_grade_cell_runs_exactly_its_checks(assignment):
    """Each hidden block calls grade_cell for its own assignment and grade_id; points equal its checks' points."""
    nb = source(assignment)
    cells = notebooks.grade_cells(nb)
    for cell in nb.cells:
        if notebooks.kind(cell) != "test":
            continue
        gid = notebooks.grade_id(cell)
        hidden = HIDDEN.findall(cell.source)
        assert len(hidden) == 1, f"{gid}: one hidden block expected"
        calls = [n for n in ast.walk(ast.parse(hidden[0])) if isinstance(n, ast.Call)
                 and getattr(n.func, "id", "") == "grade_cell"]
        assert len(calls) == 1, f"{gid}: the hidden block must call grade_cell once"
        args = [a.value for a in calls[0].args[:2]]
        assert args == [assignment, gid], f"{gid}: grade_cell is called with {args}"
        assert hidden[0].strip().endswith(")"), f"{gid}: grade_cell must be the cell's last value (partial credit)"
        points = sum(c.points for c in checks_for(assignment, gid))
        assert cells[gid] == points, f"{gid}: the cell is worth {cells[gid]} points, its checks {points}"
    orphans = {c.grade_id for c in checks_for(assignment)} - set(cells)
    assert not orphans, f"checks for grade cells that do not exist: {orphans}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_a_report_names_each_check_it_fails(assignment):
    """Within a grade cell, check titles are unique, so a stored report says exactly which checks failed."""
    for grade_id in dict.fromkeys(c.grade_id for c in checks_for(assignment)):
        checks = checks_for(assignment, grade_id)
        titles = [c.title for c in checks]
        assert len(set(titles)) == len(titles), f"{grade_id}: two checks share a title"
        report = "\n".join(f"{FAIL if i % 2 else PASS}{c.title}\n      why" for i, c in enumerate(checks))
        assert failed_in(report, checks) == [c.name for i, c in enumerate(checks) if i % 2]


def test_readme_states_the_points_checks_and_planted_bugs_of_every_assignment():
    readme = (REPO / "README.md").read_text()
    row = re.compile(r"^\|[^`\n]*`(\d\d_\w+)`[^\n]*" + r"\|\s*(\d+)\s*" * 4 + r"\|\s*$", re.M)
    stated = {m[0]: tuple(int(n) for n in m[1:]) for m in row.findall(readme)}
    actual = {a: (int(sum(notebooks.grade_cells(source(a)).values())), len(checks_for(a)), len(mutants.load(a)),
                  len(mutants.alternatives(a))) for a in ASSIGNMENTS}
    assert stated == actual, "the README's assignments table (points, checks, planted bugs, honest alternatives) " \
                             "disagrees with the course"


# The tests that read a source notebook's executed outputs run on one worker per notebook: it executes once.
SOURCE_RUNS = [pytest.param(a, marks=pytest.mark.xdist_group(f"source_notebook_{a}")) for a in ASSIGNMENTS]


@pytest.mark.parametrize("assignment", SOURCE_RUNS)
def test_source_runs_top_to_bottom_and_passes_its_own_tests(assignment, execute_notebook):
    nb = execute_notebook(COURSE.source_notebook(assignment))
    errors = [(notebooks.grade_id(c) or f"cell {i + 1}", o.ename, o.evalue) for i, c in enumerate(nb.cells)
              if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, f"the instructor's notebook raised: {errors}"
    for cell in nb.cells:
        if notebooks.kind(cell) == "test":
            score, max_score = determine_grade(cell)
            assert score == max_score, f"{notebooks.grade_id(cell)}: {score}/{max_score}\n" + "".join(
                o.get("text", "") for o in cell.outputs)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_top_of_each_notebook_says_what_to_expect(assignment):
    """Time, memory, hardware, the hours of the exercises and the results, before the limits of grading."""
    first = source(assignment).cells[0].source
    assert expectations.paragraph(assignment) in first, \
        "run `python -m trailblaze.expectations`, then `python3 course.py grade`, and commit"
    assert first.index(expectations.HEADING) < first.index(expectations.LIMITS)


def squash(text: str) -> str:
    return re.sub(r"[ \t]+", " ", text)


@pytest.mark.parametrize("assignment", SOURCE_RUNS)
def test_every_number_the_top_quotes_is_one_the_notebook_prints(assignment, execute_notebook):
    """Each number of the expectations paragraph (trailblaze.expectations.Quote) is in the output line of the
    notebook that computes it, in the course tests' quick run (the quoted numbers do not depend on it)."""
    nb = execute_notebook(COURSE.source_notebook(assignment))
    printed = squash("".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                             if o.output_type == "stream"))
    quotes = expectations.MEASURED[assignment].quotes
    assert quotes, f"{assignment}'s expectations quote no number the notebook computes"
    missing = [q.line for q in quotes if squash(q.line) not in printed]
    assert not missing, f"the top of {assignment} quotes numbers its outputs do not show: {missing}"
    wrong = expectations.Quote("9" + quotes[0].number, quotes[0].output)
    assert squash(wrong.line) not in printed, "the search for quoted numbers finds anything"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_runs_with_exercises_failing_cleanly(assignment, execute_notebook):
    """Only NotImplementedError, and only where student code is called; provided code never fails."""
    nb = execute_notebook(COURSE.release_notebook(assignment))
    raised = set()
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type != "error":
                continue
            where = notebooks.grade_id(cell) or f"cell {i + 1}"
            assert notebooks.kind(cell) in ("visible", "demo"), f"{where} ({notebooks.kind(cell)}) raised {out.ename}"
            assert out.ename == "NotImplementedError", f"{where} raised {out.ename}: {out.evalue}"
            raised.add(notebooks.kind(cell))
    assert "visible" in raised, "the visible checks of an unsolved release should fail"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_test_cell_says_what_its_hidden_checks_verify(assignment):
    """Under each exercise the student reads the titles of its hidden checks (trailblaze.checklists), in step with
    the registry: a check added, renamed or removed shows in the release."""
    release = notebooks.read(COURSE.release_notebook(assignment))
    stale = [notebooks.grade_id(c) for c in release.cells if notebooks.kind(c) == "test"
             and c.source.strip() != checklist(assignment, notebooks.grade_id(c))]
    assert not stale, f"run `python -m trailblaze.checklists`, then `python3 course.py grade`, and commit: {stale}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_check_enforces_only_what_its_exercise_states(assignment):
    """Each check names the phrases of its contract (gradebox.checks), and each phrase is in the text its student
    reads for that exercise in the release notebook: the introduction, the prose and the solution's docstring."""
    missing = unstated(assignment, notebooks.read(COURSE.release_notebook(assignment)))
    assert not missing, "checks enforce what the release does not say: " + "; ".join(
        f"{check.id} names no phrase" if not phrase else f"{check.id}: {phrase!r}" for check, phrase in missing)


def test_a_phrase_counts_only_in_its_own_exercise_and_only_while_it_is_there():
    """The contract test can fail: a phrase deleted from the release is reported, and one exercise's text is not
    another's (softmax's rule about its input is not read into causal_mask's exercise)."""
    nb = notebooks.read(COURSE.release_notebook("03_attention"))
    texts = exercise_texts(nb)
    assert plain("Leave x unchanged") in texts["softmax_tests"]
    assert plain("Leave x unchanged") not in texts["causal_mask_tests"]
    for cell in nb.cells:
        cell.source = cell.source.replace("Leave x unchanged", "Feel free to change x")
    assert [(c.name, p) for c, p in unstated("03_attention", nb)] == [("softmax_matches_torch", "Leave x unchanged")]


def borrowed_names(nb) -> dict[str, list[str]]:
    """Each visible test's exercise -> the other exercises' functions and classes its own code names."""
    defined, borrowed = exercise_names(nb), {}
    for cell in nb.cells:
        if notebooks.kind(cell) == "visible":
            own = notebooks.grade_id(cell).removesuffix("_visible")
            names = {n.id for n in ast.walk(ast.parse(cell.source)) if isinstance(n, ast.Name)}
            borrowed[own] = sorted(n for n in names if defined.get(n, own) != own)
    return borrowed


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_visible_test_needs_only_its_own_exercise(assignment):
    """A student stuck on one exercise can still check the next: a visible test builds its inputs with course code
    or a stand-in written in the test (merges written out, a tiktoken-backed tokenizer, a bigram model, a training
    step spelled out), never with another exercise's solution, unless its exercise's contract builds on that one
    (gradebox.checks.builds_on: FeedForward uses your gelu)."""
    unmet = {own: [n for n in names if n not in BUILDS_ON.get((assignment, f"{own}_tests"), ())]
             for own, names in borrowed_names(source(assignment)).items()}
    unmet = {own: names for own, names in unmet.items() if names}
    assert not unmet, f"visible tests that need other exercises' code: {unmet}"


def test_a_visible_test_that_borrows_is_found():
    """The scan above can fail: 05's train_step test, given an optimizer over param_groups, borrows it."""
    nb = source("05_training")
    cell = notebooks.find_cell(nb, "train_step_visible")
    cell.source = cell.source.replace("AdamW(model.parameters(),", "AdamW(param_groups(model, 0.1),")
    assert borrowed_names(nb)["train_step"] == ["param_groups"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_visible_assert_says_what_was_expected_and_what_came_back(assignment):
    """Each visible assert has a message, and each message can be computed where its assert stands: every cell's
    statements run in order on the solutions (provided and solution cells loaded first), and before each assert its
    message is evaluated. A cell that needs a demo's variables stops there; its messages were still compiled."""
    bare, broken, evaluated = [], [], 0
    impl = load_cells(source(assignment), assignment, adapters_for(assignment))
    for cell in source(assignment).cells:
        if notebooks.kind(cell) != "visible":
            continue
        tree = ast.parse(notebooks.strip_magics(cell.source))
        bare += [f"{notebooks.grade_id(cell)}: {ast.get_source_segment(cell.source, n).splitlines()[0]}"
                 for n in ast.walk(tree) if isinstance(n, ast.Assert) and n.msg is None]
        namespace = dict(impl.student.namespace)
        for statement in tree.body:
            if isinstance(statement, ast.Assert) and statement.msg is not None:
                try:
                    message = eval(compile(ast.Expression(statement.msg), "<message>", "eval"), namespace)
                except Exception as err:  # noqa: BLE001 - whatever a message raises is the finding
                    broken.append(f"{notebooks.grade_id(cell)}: {ast.unparse(statement.msg)[:80]} raised {err!r}")
                    continue
                evaluated += 1
                assert isinstance(message, str) and message.strip()
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(ast.Module([statement], []), "<visible>", "exec"), namespace)
            except NameError:
                break  # a variable of a demo cell: the notebook has it, this test does not
    assert not bare, "visible asserts without a message:\n" + "\n".join(bare)
    assert not broken, "messages that cannot be computed:\n" + "\n".join(broken)
    assert evaluated, f"no visible message of {assignment} could be evaluated"
