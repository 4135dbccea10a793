"""Fixtures for the course's meta-tests: executing notebooks as Jupyter would, and scratch course roots."""
from __future__ import annotations

import os
import shutil

import nbclient
import pytest

from trailblaze import notebooks, paths
from trailblaze.nbgrader_ext import kernel_environment


@pytest.fixture(scope="session")
def execute_notebook():
    """Run a notebook top to bottom in a real kernel (errors recorded, not raised); cached per path."""
    os.environ.update(kernel_environment(), TRAILBLAZE_QUICK="1")  # demos that train run for seconds
    cache = {}

    def run(path):
        if path not in cache:
            nb = notebooks.read(path)
            client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                                             resources={"metadata": {"path": str(path.parent)}})
            client.execute()
            cache[path] = nb
        return cache[path]
    return run


@pytest.fixture
def course_root(tmp_path):
    """A scratch course directory holding a copy of source/: nbgrader writes everything else there."""
    shutil.copytree(paths.SOURCE, tmp_path / "source")
    return tmp_path
