"""nbgrader configuration for the TrailblazeGPT course (run nbgrader from this folder)."""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from nbconvert.preprocessors import ClearMetadataPreprocessor  # noqa: E402
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput,  # noqa: E402
                                    DeduplicateIds, Execute, LimitOutput, OverwriteKernelspec, SaveAutoGrades)

from trailblaze.nbgrader_ext import (BoxedGrades, DemoteStderr, RestoreMissingCells, SkipDemoCells,  # noqa: E402
                                     kernel_environment)

# Grading kernels inherit this: the hidden part of each grade cell imports course_tests from the repository.
os.environ.update(kernel_environment())

c = get_config()  # noqa: F821

c.CourseDirectory.course_id = "trailblaze-gpt"
c.CourseDirectory.root = str(ROOT)

# Plain nbgrader only: a cell that runs longer than this is interrupted and scores 0.
c.Execute.timeout = 120
# A student who deletes a test cell gets it back, from the gradebook, before grading (RestoreMissingCells
# fixes where nbgrader 0.9.6 puts it back; see trailblaze/nbgrader_ext.py).
c.OverwriteCells.add_missing_cells = True
c.Autograde.sanitize_preprocessors = [
    ClearOutput,
    DeduplicateIds,
    OverwriteKernelspec,
    RestoreMissingCells,
    CheckCellMetadata,
]

# nbgrader's own list with Execute replaced by BoxedGrades: student code runs in a box, the course's checks run
# in the grader, and each test cell gets its report and points as outputs (see trailblaze/stages/). Demo cells
# are skipped and stderr is demoted to stdout (replacing IgnorePattern, which would delete those outputs instead).
# TRAILBLAZE_GRADER=execute selects plain nbgrader (every cell executed in one kernel, the hidden tests in the same
# process as student code): only benchmarks/grading.py uses it, to measure what the box costs.
PLAIN_NBGRADER = os.environ.get("TRAILBLAZE_GRADER") == "execute"
# What a library call that an exercise forbids (its instructions name them: torch.softmax in 03's softmax,
# nn.LayerNorm in 04's LayerNorm, tiktoken in 02's BPE, ...) costs that exercise's cell: "flag" keeps the points and
# names the use in the student's feedback and the grader's summary; "zero" scores the cell 0.
c.BoxedGrades.forbidden_calls = "flag"
c.Autograde.autograde_preprocessors = [
    SkipDemoCells,
    Execute if PLAIN_NBGRADER else BoxedGrades,
    DemoteStderr,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]

# Student HTML is inert wherever nbgrader renders a notebook (feedback pages, the formgrader, both HTMLExporter):
# markdown is rendered, then cleaned by bleach; raw cells and rich outputs are cleaned before rendering. A <script>,
# an event handler or an iframe a student writes shows as text, and never runs in a student's or the instructor's
# browser. (nbconvert's own `sanitize_html` is not enough, as nbgrader's templates render markdown without it, and
# too much elsewhere: its allow-list escapes headings and paragraphs.)
c.HTMLExporter.filters = {"markdown2html": "trailblaze.nbgrader_ext.inert_markdown2html"}
c.HTMLExporter.preprocessors = ["trailblaze.nbgrader_ext.InertRawCellsAndOutputs"]
