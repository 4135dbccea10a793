"""nbgrader extensions used by nbgrader_config.py, and the environment its notebook kernels need."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor

from trailblaze import notebooks, paths


def kernel_environment() -> dict[str, str]:
    """What nbgrader and its kernels need: this interpreter's scripts on PATH (nbgrader runs `alembic`), course_tests
    importable by the hidden tests, tiktoken offline, no plot windows."""
    def prepend(entry: str, variable: str) -> str:
        return os.pathsep.join(p for p in (entry, os.environ.get(variable, "")) if p)

    return {"PATH": prepend(str(Path(sys.executable).parent), "PATH"),
            "PYTHONPATH": prepend(str(paths.ROOT), "PYTHONPATH"),
            "TIKTOKEN_CACHE_DIR": os.environ.get("TIKTOKEN_CACHE_DIR", str(paths.TIKTOKEN_CACHE)),
            "MPLBACKEND": os.environ.get("MPLBACKEND", "Agg")}


class SkipDemoCells(NbGraderPreprocessor):
    """Demonstration cells (tag `demo`: downloads, plots, training runs) are not run when grading.

    Their code stays visible in the graded notebook, commented out. Notebooks must not define anything a test needs
    in a demo cell; the course's meta-tests check that grading the solutions still gives full marks.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and notebooks.kind(cell) == "demo":
            body = "\n".join(f"# {line}" if line else "#" for line in cell.source.splitlines())
            cell.source = "# [demo cell: not run when grading]\n" + body
        return cell, resources


class DemoteStderr(NbGraderPreprocessor):
    """nbgrader scores a test cell 0 when it wrote anything to stderr; a warning or a progress bar is not a failure.

    Runs after execution: stderr streams become stdout streams marked `[stderr]`, so feedback still shows them.
    Exceptions are `error` outputs, not streams, and still score 0.
    """

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                output["name"] = "stdout"
                output["text"] = "".join(f"[stderr] {line}" for line in output["text"].splitlines(keepends=True))
        return cell, resources
