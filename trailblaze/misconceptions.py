"""Misconceptions named by the planted bugs: a student's failed checks matched to the planted bug that fails them.

Each planted bug (course_tests/mutants/<assignment>.toml) fails a set of checks on the instructor's solution: its
signature. Each student's checks draw their own inputs (gradebox.inputs), and a few checks catch a bug on some
inputs only, so a signature has the checks the bug fails on every input tried (`fails`) and those it fails on some
(`may_fail`). The signatures are stored in course_tests/mutants/signatures.json, written by

    .venv/bin/python -m trailblaze.misconceptions --write      (every kill matrix on len(INPUTS) sets of inputs)

and course_tests/meta/test_mutants.py keeps them in step with the kill matrix, so a changed check or bug cannot leave
them stale. Feedback names a bug when a notebook fails all of its sure checks, and no check it could not fail, in
every grade cell it touches (`named`); the class report counts those, and matches whole failure patterns to the bug
they most resemble.
"""
from __future__ import annotations

import argparse
import fcntl
import json
from dataclasses import dataclass
from functools import lru_cache

import course_tests.checks  # noqa: F401  (registers every check: the signatures name them)
from gradebox.box import CRASH_SAYS, TIMEOUT_SAYS
from gradebox.checks import checks_for
from gradebox.inputs import PUBLIC, student_key
from gradebox.runner import failed_in
from gradebox.student import StudentError
from trailblaze.coursedir import COURSE, MUTANTS

SIGNATURES = MUTANTS / "signatures.json"
LIKELY = "LIKELY  "  # how the feedback line that names a known mistake starts
SIGNATURE_SECRET = b"trailblaze signatures"  # public: these are inputs of no student, for the meta-tests too
INPUTS = ("as written", "inputs-1", "inputs-2")


def signature_keys(assignment: str) -> list[bytes]:
    """The inputs the signatures are computed on: the checks' seeds as written, and two students' that are no one's."""
    return [PUBLIC if name == "as written" else student_key(SIGNATURE_SECRET, name, assignment) for name in INPUTS]


@dataclass(frozen=True)
class Signature:
    assignment: str
    bug: str
    cell: str  # the exercise (solution cell's grade_id) the bug is planted in
    why: str
    fails: frozenset[str]  # names of the checks that fail on it, whatever the inputs
    may_fail: frozenset[str] = frozenset()  # and of those that fail on it on some inputs


def from_matrices(assignment: str, matrices: list[dict[str, set[str]]]) -> dict[str, dict[str, list[str]]]:
    """bug id -> {"fails": checks failing on every matrix, "may_fail": on some}, from kill matrices on different
    inputs (planted bugs only, not the honest alternatives)."""
    signatures = {}
    for m in _planted(assignment):
        always, ever = set.intersection(*(set(x[m.id]) for x in matrices)), set.union(*(set(x[m.id]) for x in matrices))
        signatures[m.id] = {"fails": sorted(always), "may_fail": sorted(ever - always)}
    return signatures


def out_of_step(assignment: str, matrix: dict[str, set[str]]) -> list[str]:
    """What a kill matrix on any inputs shows that the stored signatures do not allow: a check a bug failed that it
    may not, or one it passed that it must fail."""
    problems, known = [], stored(assignment)
    for bug, sig in known.items():
        got, must, may = set(matrix[bug]), set(sig["fails"]), set(sig["fails"]) | set(sig["may_fail"])
        if not must <= got <= may:
            problems.append(f"{bug}: fails {sorted(got)}; stored: fails {sorted(must)}, may fail {sorted(may - must)}")
    missing = {m.id for m in _planted(assignment)} - set(known)
    return problems + [f"{bug}: no stored signature" for bug in sorted(missing)]


def _planted(assignment: str):
    from trailblaze import mutants
    return mutants.load(assignment)


def stored(assignment: str) -> dict[str, dict[str, list[str]]]:
    return json.loads(SIGNATURES.read_text()).get(assignment, {}) if SIGNATURES.exists() else {}


@lru_cache(maxsize=None)
def signatures(assignment: str) -> tuple[Signature, ...]:
    known = stored(assignment)
    return tuple(Signature(assignment, m.id, m.cell, m.why, frozenset(known[m.id]["fails"]),
                           frozenset(known[m.id]["may_fail"]))
                 for m in _planted(assignment) if known.get(m.id) and known[m.id]["fails"])


def resemblance(a: frozenset | set, b: frozenset | set) -> float:
    """Shared failures over all failures (Jaccard): resemblance({"x", "y"}, {"y", "z"}) == 1 / 3."""
    return len(a & b) / len(a | b) if a | b else 1.0


def named(assignment: str, grades: dict) -> dict[str, list[Signature]]:
    """grade_id -> the planted bugs whose failures a stored result shows, to be told in that grade cell.

    `grades`: grade_id -> {"report", ...} (a stored Result's grades). A bug matches when every grade cell it surely
    fails checks in fails all of those there and nothing it could not fail (Signature.may_fail), and neither those
    cells nor its own exercise hold code that gave no answer (not written, not defined, stopped at a deadline,
    crashed); a notebook that fails every check shows no mistake
    in particular. A match whose failures another match's include is dropped: a bug in scaled_dot_product_attention
    also fails MultiHeadAttention, which is then not to blame. Each bug is told in its own exercise's grade cell, or,
    where it fails nothing there (softmax writing into its input breaks only gradients, later), the first it fails in.
    """
    if not checks_for(assignment):
        raise LookupError(f"no checks are registered for {assignment}")
    cells = list(grades)
    failed = {gid: frozenset(failed_in(g["report"], checks_for(assignment, gid))) for gid, g in grades.items()}
    absent = {gid for gid, g in grades.items()
              if any(w in g["report"] for w in (*StudentError.ABSENT_SAYS, *TIMEOUT_SAYS, *CRASH_SAYS))}
    checks = {gid: frozenset(c.name for c in checks_for(assignment, gid)) for gid in cells}
    if all(failed[gid] == checks[gid] for gid in cells):
        return {}
    matched = []
    for sig in signatures(assignment):
        touched = [gid for gid in cells if sig.fails & checks[gid]]
        own = f"{sig.cell}_tests"
        if touched and own not in absent and all(g not in absent and sig.fails & checks[g] <= failed[g]
                                                 <= (sig.fails | sig.may_fail) & checks[g] for g in touched):
            matched.append((own if own in touched else touched[0], sig))
    told: dict[str, list[Signature]] = {}
    for gid, sig in matched:
        if not any(sig.fails < other.fails for _, other in matched):
            told.setdefault(gid, []).append(sig)
    return told


def closest(assignment: str, failed: set[str], at_least: float = 0.5) -> tuple[float, list[Signature]]:
    """The bugs whose signature most resembles a whole notebook's failures, and how much (none under `at_least`)."""
    scored = [(resemblance(frozenset(failed), s.fails), s) for s in signatures(assignment)]
    best = max((r for r, _ in scored), default=0.0)
    return (best, [s for r, s in scored if r == best]) if failed and best >= at_least else (0.0, [])


def likely_line(found: list[Signature]) -> str:
    """The feedback line naming the known mistakes a grade cell's failures are those of (`named`), or ""."""
    if not found:
        return ""
    whys = "; or ".join(dict.fromkeys(f"{s.why} (in {s.cell})" for s in found))
    return f"{LIKELY}these failures are those of a known mistake: {whys}"


def write(assignments: list[str]) -> None:
    from trailblaze import mutants  # the kill matrix runs every check: only needed when signatures are written
    for assignment in assignments:
        matrices = [mutants.kill_matrix(assignment, key=key) for key in signature_keys(assignment)]
        found = from_matrices(assignment, matrices)
        with open(SIGNATURES.with_suffix(".lock"), "w") as lock:  # one writer at a time: one process per assignment
            fcntl.flock(lock, fcntl.LOCK_EX)
            everything = json.loads(SIGNATURES.read_text()) if SIGNATURES.exists() else {}
            everything[assignment] = found
            SIGNATURES.write_text(json.dumps(everything, indent=1, sort_keys=True) + "\n")
        varies = sum(1 for sig in found.values() if sig["may_fail"])
        print(f"{assignment}: {len(found)} planted bugs, {varies} failing more checks on some inputs")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the planted bugs' signatures (the checks each one fails).")
    parser.add_argument("--write", action="store_true", help=f"compute and write {SIGNATURES.name}")
    parser.add_argument("--assignment", action="append", choices=COURSE.assignments())
    args = parser.parse_args(argv)
    if args.write:
        write(args.assignment or COURSE.assignments())


if __name__ == "__main__":
    from trailblaze import data
    data.use_offline_data()
    main()
