"""Misconceptions named by the planted bugs: a student's failed checks matched to the planted bug that fails them.

Each planted bug (course_tests/mutants/<assignment>.toml) fails an exact set of checks on the instructor's solution:
its signature. The signatures are stored in course_tests/mutants/signatures.json, written by

    .venv/bin/python -m trailblaze.misconceptions --write      (about two minutes: every kill matrix, on the CPU)

and course_tests/meta/test_mutants.py keeps them equal to the kill matrix, so a changed check or bug cannot leave
them stale. Feedback names a bug when a notebook fails exactly its checks in every grade cell it touches (`named`);
the class report counts those, and matches whole failure patterns to the bug they most resemble.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from functools import lru_cache

import course_tests.checks  # noqa: F401  (registers every check: the signatures name them)
from gradebox.box import CRASH_SAYS, TIMEOUT_SAYS
from gradebox.checks import checks_for
from gradebox.runner import failed_in
from gradebox.student import StudentError
from trailblaze.coursedir import COURSE, MUTANTS

SIGNATURES = MUTANTS / "signatures.json"
LIKELY = "LIKELY  "  # how the feedback line that names a known mistake starts


@dataclass(frozen=True)
class Signature:
    assignment: str
    bug: str
    cell: str  # the exercise (solution cell's grade_id) the bug is planted in
    why: str
    fails: frozenset[str]  # names of the checks that fail on it


def from_matrix(assignment: str, matrix: dict[str, set[str]]) -> dict[str, list[str]]:
    """bug id -> the checks failing on it, from a kill matrix (planted bugs only, not the honest alternatives)."""
    from trailblaze import mutants
    return {m.id: sorted(matrix[m.id]) for m in mutants.load(assignment)}


def stored(assignment: str) -> dict[str, list[str]]:
    return json.loads(SIGNATURES.read_text()).get(assignment, {}) if SIGNATURES.exists() else {}


@lru_cache(maxsize=None)
def signatures(assignment: str) -> tuple[Signature, ...]:
    from trailblaze import mutants
    known = stored(assignment)
    return tuple(Signature(assignment, m.id, m.cell, m.why, frozenset(known[m.id]))
                 for m in mutants.load(assignment) if known.get(m.id))


def resemblance(a: frozenset | set, b: frozenset | set) -> float:
    """Shared failures over all failures (Jaccard): resemblance({"x", "y"}, {"y", "z"}) == 1 / 3."""
    return len(a & b) / len(a | b) if a | b else 1.0


def named(assignment: str, grades: dict) -> dict[str, list[Signature]]:
    """grade_id -> the planted bugs whose failures a stored result shows exactly, to be told in that grade cell.

    `grades`: grade_id -> {"report", ...} (a stored Result's grades). A bug matches when every grade cell it fails
    checks in fails exactly those there, and neither those cells nor its own exercise hold code that gave no answer
    (not written, not defined, stopped at a deadline, crashed); a notebook that fails every check shows no mistake
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
        if touched and own not in absent and all(g not in absent and failed[g] == sig.fails & checks[g]
                                                 for g in touched):
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
    everything = json.loads(SIGNATURES.read_text()) if SIGNATURES.exists() else {}
    for assignment in assignments:
        everything[assignment] = from_matrix(assignment, mutants.kill_matrix(assignment))
        print(f"{assignment}: {len(everything[assignment])} planted bugs")
    SIGNATURES.write_text(json.dumps(everything, indent=1, sort_keys=True) + "\n")


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
