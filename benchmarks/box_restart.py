"""Benchmark: what a box costs per notebook, and what a crash costs, warm (a fork of the box's keeper) against cold
(a new box: bwrap, the interpreter, torch and the adapters imported again).

    .venv/bin/python benchmarks/box_restart.py                  # every assignment
    .venv/bin/python benchmarks/box_restart.py 01_setup

For each assignment: the first start (box, imports, the solution's cells), then the mean of three reloads after a
crash, warm and cold. Prints figures only; nothing here is a test.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_tests import adapters_module  # noqa: E402
from course_tests.sandbox import box_view  # noqa: E402
from gradebox import notebooks  # noqa: E402
from gradebox.box import Boxed, box_problem  # noqa: E402
from trailblaze import data  # noqa: E402
from trailblaze.coursedir import COURSE  # noqa: E402

RELOADS = 3


def reloads(assignment: str, warm: bool) -> tuple[float, list[float]]:
    cells = notebooks.implementation_sources(notebooks.read(COURSE.source_notebook(assignment)))
    impl = Boxed(assignment, cells, adapters_module(assignment), box_view())
    impl.warm = warm and impl.warm
    try:
        start = time.perf_counter()
        impl.start()
        first, times = time.perf_counter() - start, []
        for _ in range(RELOADS):
            if warm:  # what the keeper does after a worker died: a fresh fork loads the cells
                impl.loaded = False
            else:  # what a crash costs without the keeper: a new box
                impl.stop()
            start = time.perf_counter()
            impl.start() if impl.process is None else impl.load()
            times.append(time.perf_counter() - start)
        return first, times
    finally:
        impl.close()


def main(assignments: list[str]) -> None:
    if box_problem():
        sys.exit(f"no box here: {box_problem()}")
    data.use_offline_data()
    print(f"{'assignment':<16} {'first start':>12} {'reload, cold':>13} {'reload, warm':>13} {'ratio':>7}")
    for assignment in assignments:
        first, cold = reloads(assignment, warm=False)
        _, warm = reloads(assignment, warm=True)
        c, w = statistics.mean(cold), statistics.mean(warm)
        print(f"{assignment:<16} {first:>11.2f}s {c:>12.2f}s {w:>12.2f}s {c / w:>6.1f}x")


if __name__ == "__main__":
    main(sys.argv[1:] or COURSE.assignments())
