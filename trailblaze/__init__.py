"""Instructor tooling for the TrailblazeGPT course: offline data, notebooks, mutants and the grading pipeline.

Nothing in this package is shipped to students: it never contains solutions, but it is not installed by
requirements.txt either. It is imported from the repository root (the course scripts put it on sys.path).
"""
