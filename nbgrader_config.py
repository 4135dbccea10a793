"""nbgrader configuration for the TrailblazeGPT course (run nbgrader from this folder)."""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from nbconvert.preprocessors import ClearMetadataPreprocessor  # noqa: E402
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, Execute, LimitOutput,  # noqa: E402
                                    SaveAutoGrades)

from trailblaze.nbgrader_ext import DemoteStderr, SkipDemoCells, kernel_environment  # noqa: E402

# Grading kernels inherit this: the hidden part of each grade cell imports course_tests from the repository.
os.environ.update(kernel_environment())

c = get_config()  # noqa: F821

c.CourseDirectory.course_id = "trailblaze-gpt"
c.CourseDirectory.root = str(ROOT)

# A cell that runs longer than this is interrupted and scores 0 (the largest graded cell needs a few seconds).
c.Execute.timeout = 120
# A student who deletes a test cell gets it back, from the gradebook, before grading.
c.OverwriteCells.add_missing_cells = True

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
