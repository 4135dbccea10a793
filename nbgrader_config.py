"""nbgrader configuration for the TrailblazeGPT course (run nbgrader from this folder)."""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from nbconvert.preprocessors import ClearMetadataPreprocessor  # noqa: E402
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput,  # noqa: E402
                                    DeduplicateIds, Execute, LimitOutput, OverwriteKernelspec, SaveAutoGrades)

from trailblaze.nbgrader_ext import (DemoteStderr, RestoreMissingCells, SkipDemoCells,  # noqa: E402
                                     kernel_environment)

# Grading kernels inherit this: the hidden part of each grade cell imports course_tests from the repository.
os.environ.update(kernel_environment())

c = get_config()  # noqa: F821

c.CourseDirectory.course_id = "trailblaze-gpt"
c.CourseDirectory.root = str(ROOT)

# A cell that runs longer than this is interrupted and scores 0 (the largest graded cell needs a few seconds).
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

# nbgrader's own list, with demo cells skipped before execution and stderr demoted to stdout after it
# (replacing IgnorePattern, which would delete those outputs instead).
c.Autograde.autograde_preprocessors = [
    SkipDemoCells,
    Execute,
    DemoteStderr,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
