"""The grading engine: checks that judge student code without trusting it.

It knows nothing of any course. A course brings its checks (functions registered with `gradebox.checks.check`),
its adapters (the only code that calls student functions) and its data; the engine loads student code, runs it in
a box, carries plain data across, and turns check outcomes into points and messages.

    checks.py     the check registry (what a grade cell runs)
    expect.py     expectations with student-facing messages, tolerances per dtype and device
    runner.py     running checks into outcomes and points
    forbidden.py  library calls an exercise forbids, found in the student's cell; what they cost
    student.py    student code: loading a notebook's cells, calling its functions, errors as plain data
    notebooks.py  notebooks as data: which cells are solutions, tests, demos, provided code
    tensors.py    helpers that the checks and the adapters both use (devices, probe_loss)
    inputs.py     the checks' random inputs: seeds mixed with a key per student, so each student's differ
    box.py        the trusted side of isolated grading: the bwrap box and its allow-list, `Boxed`
    limits.py     the limits a box runs under
    child.py      the boxed side: runs the cells, serves adapter calls
    wire.py       the data-only boundary between the two

Only the child side (child, wire, student, notebooks, tensors, inputs) is visible inside the box.
"""
from pathlib import Path

ENGINE = Path(__file__).resolve().parent
