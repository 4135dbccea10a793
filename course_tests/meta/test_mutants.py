"""Planted bugs prove the checks: the solution passes all, every mutant fails one, every check kills one; and
honest alternatives prove them fair: right code in another style passes all.

The kill matrix is computed once (on the CPU) and printed in the test report, so a failing run shows it whole.

A mutant runs only the checks that reach its cell: trailblaze.mutants.kill_matrix says why that is sound.
"""
from __future__ import annotations

import pytest

from gradebox.checks import checks_for
from gradebox import notebooks
from trailblaze import misconceptions, mutants
from trailblaze.coursedir import COURSE

ASSIGNMENTS = COURSE.assignments()  # every one: an assignment without planted bugs fails here, never drops out


# Each assignment's matrix is computed once, on one pytest-xdist worker (--dist loadgroup), for the tests that read it,
# on a student's inputs (gradebox.inputs), not the seeds as written: test_checks and test_nulls run those, and the
# graded class every sample student's own, so solutions, alternatives, planted bugs and nulls meet several seeds.
@pytest.fixture(scope="module", params=[pytest.param(a, marks=pytest.mark.xdist_group(f"mutants_{a}"))
                                        for a in ASSIGNMENTS])
def kill_matrix(request):
    """mutant id -> names of the checks that fail on it (only the checks that reach the mutated cell run)."""
    assignment = request.param
    return assignment, mutants.kill_matrix(assignment, key=misconceptions.signature_keys(assignment)[1])


def test_every_mutant_is_killed_by_the_checks_it_names(kill_matrix):
    assignment, matrix = kill_matrix
    problems = []
    for mutant in mutants.load(assignment):
        killers = matrix[mutant.id]
        if not killers:
            problems.append(f"{mutant.id} ({mutant.why}) survives every check")
        elif not set(mutant.killed_by) <= killers:
            problems.append(f"{mutant.id}: expected killers {sorted(set(mutant.killed_by) - killers)} "
                            f"let it pass (killed by {sorted(killers)})")
    assert not problems, "\n".join(problems)


def test_every_honest_alternative_passes_every_check(kill_matrix):
    """Right code in another style than the solution (a loop, a sampler, another formula) loses nothing."""
    assignment, matrix = kill_matrix
    alternatives = mutants.alternatives(assignment)
    assert alternatives, f"{assignment} has no honest alternatives: declare some beside its planted bugs"
    unfair = [f"{a.id} ({a.style}) fails {sorted(matrix[a.id])}" for a in alternatives if matrix[a.id]]
    assert not unfair, "honest code loses points:\n" + "\n".join(unfair)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_exercise_has_an_honest_alternative(assignment):
    """Each solution cell has at least one honest alternative, so no exercise's checks go unproven for fairness."""
    nb = notebooks.read(COURSE.source_notebook(assignment))
    exercises = [notebooks.grade_id(c) for c in nb.cells if notebooks.kind(c) == "solution"]
    covered = {a.cell for a in mutants.alternatives(assignment)}
    assert exercises and not set(exercises) - covered, \
        f"exercises of {assignment} without an honest alternative: {[e for e in exercises if e not in covered]}"


def test_the_stored_signatures_are_in_step_with_the_kill_matrix(kill_matrix):
    """What feedback and the class report match students against (trailblaze.misconceptions) is not stale."""
    assignment, matrix = kill_matrix
    problems = misconceptions.out_of_step(assignment, matrix)
    assert not problems, f"{misconceptions.SIGNATURES.name} is stale for {assignment}: run .venv/bin/python -m " \
        f"trailblaze.misconceptions --write --assignment {assignment}\n" + "\n".join(problems)


def test_no_planted_bug_is_caught_on_some_inputs_only():
    """Two students with the same mistake lose the same points, whatever their inputs (gradebox.inputs): each bug
    fails the same checks on every set of inputs the signatures were computed on."""
    varies = {a: {bug: sig["may_fail"] for bug, sig in misconceptions.stored(a).items() if sig["may_fail"]}
              for a in ASSIGNMENTS}
    assert not any(varies.values()), f"checks that catch a planted bug on some students' inputs only: {varies}"


def test_every_check_kills_a_mutant(kill_matrix):
    assignment, matrix = kill_matrix
    killing = set().union(*(matrix[m.id] for m in mutants.load(assignment)))
    idle = [c.name for c in checks_for(assignment) if c.name not in killing]
    assert not idle, f"{assignment}: these checks kill no planted bug (add a mutant or drop the check): {idle}"


def test_killed_by_names_real_checks():
    for assignment in ASSIGNMENTS:
        names = {c.name for c in checks_for(assignment)}
        for mutant in mutants.load(assignment):
            assert set(mutant.killed_by) <= names, f"{mutant.id}: unknown checks {set(mutant.killed_by) - names}"
            assert notebooks.kind(notebooks.find_cell(notebooks.read(COURSE.source_notebook(assignment)),
                                                      mutant.cell)) == "solution", f"{mutant.id}: not a solution cell"


def test_partly_wrong_sample_uses_declared_mutants():
    for assignment in ASSIGNMENTS:
        assert mutants.partly_wrong(assignment), f"{assignment}: [samples] partly_wrong is empty"
