"""Adapters: the only code that calls student functions. One module per assignment, named without its number.

Each adapter takes the student's code (`StudentCode`) and plain inputs, builds what the student's function needs,
calls it, and returns plain values and tensors. They are the part of the harness that would run next to the
student's code in an isolated child process.
"""
