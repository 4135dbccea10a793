"""Benchmark: the planted-bug kill matrix with every check run on every mutant, and with only the checks that reach
the mutated cell (what course_tests/meta/test_mutants.py runs). Prints both times and every difference.

    .venv/bin/python benchmarks/kill_matrix.py                  # every assignment
    .venv/bin/python benchmarks/kill_matrix.py 02_tokenization

A difference (a kill the selection misses) would make the selection unsound for the course's reports; the meta-test
itself can only fail because of one. Prints figures only; nothing here is a test.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trailblaze import data, mutants  # noqa: E402
from trailblaze.coursedir import COURSE  # noqa: E402


def main(assignments: list[str]) -> None:
    data.use_offline_data()
    for assignment in assignments:
        timings, matrices = {}, {}
        for select in (False, True):
            start = time.perf_counter()
            matrices[select] = mutants.kill_matrix(assignment, select=select)
            timings[select] = time.perf_counter() - start
        missed = {m: sorted(matrices[False][m] - matrices[True][m]) for m in matrices[False]
                  if matrices[False][m] != matrices[True][m]}
        print(f"{assignment}: {len(matrices[False])} mutants; every check {timings[False]:.1f} s, selected "
              f"{timings[True]:.1f} s ({timings[False] / timings[True]:.1f}x); differences: {missed or 'none'}",
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or COURSE.assignments())
