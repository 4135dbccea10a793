"""What the grading box shows of the course: an allow-list, never a deny-list.

The boxed child imports the adapters of one assignment and what they import (models, datafiles), and reads the
prepared data. Everything else here (checks, planted bugs, the adversarial suite, meta-tests) holds references,
hidden inputs or answers, and stays out of the box because it is not named below: a file added later is hidden
until someone names it.
"""
from __future__ import annotations

from gradebox.box import BoxView

from course_tests import PACKAGE, datafiles

CHILD_SIDE = ("__init__.py", "adapters", "models.py", "datafiles.py")


def box_view() -> BoxView:
    return BoxView(readable=(*(PACKAGE / name for name in CHILD_SIDE), *datafiles.child_reads()),
                   import_root=PACKAGE.parent,
                   environment=((datafiles.DATA_VARIABLE, str(datafiles.data_dir())), ("HF_HUB_OFFLINE", "1"),
                                ("TRANSFORMERS_OFFLINE", "1"), ("MPLBACKEND", "Agg")),
                   home_copies=(("TIKTOKEN_CACHE_DIR", datafiles.tiktoken_cache()),))
