"""Code the course gives students: each module here is the source of a locked, provided cell of the notebooks
(`python -m trailblaze.provided` writes it there; course_tests/meta/test_provided.py proves every copy current).
Unlike the rest of this package it is public, so nothing here may hold a check, a solution or a hidden input."""
