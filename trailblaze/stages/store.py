"""Stage 3: each notebook's result on disk, reports/results/<assignment>/<student>.json, written atomically (a kill -9
leaves the old file or the new), and reused only under the key it was made with."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from functools import lru_cache

from course_tests import PACKAGE
from gradebox import ENGINE
from trailblaze.coursedir import REPO, CourseDirectory
from trailblaze.options import GradingOptions

NOT_GRADING = ("meta", "adversarial")  # parts of course_tests that never decide a grade


@lru_cache(maxsize=1)
def harness_digest() -> str:
    """Changes whenever the engine, a check or an adapter changes, so stale results are never reused."""
    digest = hashlib.sha256()
    files = [*ENGINE.rglob("*.py"), *(p for p in PACKAGE.rglob("*.py")
                                      if not set(p.relative_to(PACKAGE).parts) & set(NOT_GRADING))]
    for path in sorted(files):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def result_key(assignment: str, cells: list[tuple[str, str]], options: GradingOptions,
               inputs: bytes = b"") -> str:
    """Everything that decides a notebook's result: its code, the harness, the box's limits, the devices, and the
    key of the student's hidden inputs (b"": the code's alone)."""
    blob = json.dumps([assignment, cells, asdict(options.limits), options.unboxed, list(options.devices),
                       harness_digest(), hashlib.sha256(inputs).hexdigest()])
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class Result:
    """One notebook's grades: grade_id -> {"earned", "total", "report"}; forbidden: grade_id -> the library calls
    its exercise forbids that its cell refers to (gradebox.forbidden; the policy prices them when recorded)."""
    key: str
    grades: dict
    seconds: float
    load_errors: list = field(default_factory=list)
    forbidden: dict = field(default_factory=dict)


class ResultStore:
    def __init__(self, course: CourseDirectory):
        self.course = course

    def load(self, assignment: str, student: str, key: str | None = None) -> Result | None:
        """The stored result, if it was made with `key` (None: whatever its key, for reports)."""
        try:
            result = Result(**json.loads(self.course.result(assignment, student).read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return result if key is None or result.key == key else None

    def students(self, assignment: str) -> list[str]:
        return sorted(p.stem for p in (self.course.results / assignment).glob("*.json"))

    def save(self, assignment: str, student: str, result: Result) -> None:
        target = self.course.result(assignment, student)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        with partial.open("w") as f:
            json.dump(asdict(result), f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, target)
