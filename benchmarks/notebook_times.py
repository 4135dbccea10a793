"""Benchmark: how long each solved notebook takes to run top to bottom, every demo at full size, as a student runs it.

    .venv/bin/python benchmarks/notebook_times.py                   # every assignment
    .venv/bin/python benchmarks/notebook_times.py 05_training       # one
    .venv/bin/python benchmarks/notebook_times.py --keep /tmp/runs  # also keep the executed notebooks there

Runs each instructor notebook (the solutions filled in) in a fresh kernel with nbclient, without the course tests'
quick mode, and prints its wall time, the slowest cells and the kernel's peak memory. These are the minutes the
top of every notebook quotes (trailblaze/expectations.py): rerun this after changing a demo, on a 2-core machine.
Figures only; nothing here is a test.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nbclient  # noqa: E402

from gradebox import notebooks  # noqa: E402
from trailblaze.coursedir import COURSE  # noqa: E402
from trailblaze.nbgrader_ext import kernel_environment  # noqa: E402


def run(assignment: str, keep: Path | None) -> None:
    path = COURSE.source_notebook(assignment)
    nb = notebooks.read(path)
    times = []
    client = nbclient.NotebookClient(nb, timeout=1800, kernel_name="python3", allow_errors=True,
                                     resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        began = time.perf_counter()
        for index, cell in enumerate(nb.cells):
            start = time.perf_counter()
            client.execute_cell(cell, index)
            times.append((time.perf_counter() - start, index, notebooks.kind(cell), notebooks.grade_id(cell)))
        seconds = time.perf_counter() - began
    errors = [f"cell {i + 1}: {o.ename}" for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB, the largest kernel so far
    print(f"{assignment}: {seconds:.1f} s ({seconds / 60:.1f} min), largest kernel so far {peak:.2f} GiB"
          + (f"; ERRORS {errors}" if errors else ""))
    for took, index, kind, grade_id in sorted(times, reverse=True)[:4]:
        print(f"    {took:7.1f} s  cell {index + 1} ({kind}{' ' + grade_id if grade_id else ''})")
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
        notebooks.write(nb, keep / f"{assignment}.ipynb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", default=COURSE.assignments())
    parser.add_argument("--keep", type=Path, help="write the executed notebooks to this folder")
    args = parser.parse_args()
    os.environ.update(kernel_environment())
    for variable in ("TRAILBLAZE_QUICK", "MPLBACKEND"):  # full-size demos, figures drawn inline as in Jupyter
        os.environ.pop(variable, None)
    print(f"{os.cpu_count()} CPUs; full demos (no quick mode)")
    for assignment in args.assignments:
        run(assignment, args.keep)


if __name__ == "__main__":
    main()
