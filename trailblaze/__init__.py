"""Instructor tooling for the TrailblazeGPT course: the course's paths and assignments, offline data, planted bugs,
the grading pipeline and its stages, and nbgrader's extensions.

Nothing in this package is shipped to students, nor installed by requirements.txt: it is imported from the repository
root (the course scripts put it on sys.path). It uses the course content (course_tests) and the engine (gradebox);
neither of those imports it.
"""
