"""The instructor's main job, end to end, in a scratch course root: release, sample class, grades, feedback.

Besides the three sample students, two more show that bad input costs only its owner: a notebook that is not JSON,
and the partly wrong notebook with its last graded cell deleted: nbgrader must put the cell back, hidden checks
included, so that it scores exactly what the partly wrong student scores.
"""
from __future__ import annotations

import pytest

from trailblaze import notebooks, paths, pipeline


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("course")
    shutil.copytree(paths.SOURCE, root / "source")
    for assignment in paths.assignments():
        name = paths.source_notebook(assignment).name
        broken = root / "submitted" / "broken" / assignment / name
        broken.parent.mkdir(parents=True)
        broken.write_text('{"cells": [')
        # built from the committed release, which test_release proves is what the pipeline generates
        tampered = pipeline.sample_submissions(assignment, paths.ROOT)["partly_wrong"]
        last_test = [c for c in tampered.cells if notebooks.kind(c) == "test"][-1]
        tampered.cells = [c for c in tampered.cells if c is not last_test]
        notebooks.write(tampered, root / "submitted" / "deleted_test_cell" / assignment / name)
    lines = []
    grades = pipeline.run(root, say=lines.append)
    return root, grades, "\n".join(lines)


def test_sample_class_is_ranked(graded):
    _, grades, report = graded
    for assignment in paths.assignments():
        score = {s: grades[s][assignment] for s in grades}
        full = score["solutions"][1]
        assert full > 0 and score["solutions"][0] == full, report
        assert score["blank"][0] == 0, report
        assert 0 < score["partly_wrong"][0] < full, report


def test_bad_input_costs_only_its_owner(graded):
    _, grades, report = graded
    for assignment in paths.assignments():
        assert grades["broken"][assignment][0] == 0
        assert grades["deleted_test_cell"][assignment] == grades["partly_wrong"][assignment], \
            "a deleted graded cell must be restored from the gradebook, hidden checks included, and graded"
    assert "not graded (0 points): broken" in report and "not a readable Jupyter notebook" in report, report


def test_outputs_exist(graded):
    root, grades, report = graded
    assert (root / "reports" / "grades.csv").exists()
    for student in pipeline.SAMPLE_STUDENTS:
        for assignment in paths.assignments():
            feedback = root / "feedback" / student / assignment / paths.source_notebook(assignment).name
            assert feedback.with_suffix(".html").exists(), f"no feedback for {student}/{assignment}"
    table = report[report.index("student"):]
    assert all(s in table for s in pipeline.SAMPLE_STUDENTS), report


def test_graded_output_explains_failures_without_printing_tensors(graded):
    """Check messages name what is wrong but never print a value: no tensor repr in any graded cell's output."""
    root, _, _ = graded
    for assignment in paths.assignments():
        nb = notebooks.read(root / "autograded" / "partly_wrong" / assignment / paths.source_notebook(assignment).name)
        outputs = "".join(o.get("text", "") for c in nb.cells if notebooks.kind(c) == "test" for o in c.outputs)
        assert "FAIL" in outputs and "PASS" in outputs, outputs
        assert "tensor(" not in outputs, outputs
