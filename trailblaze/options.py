"""The options that travel together through every stage of grading, and to nbgrader's own process."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace

from gradebox.limits import Limits

VARIABLE = "TRAILBLAZE_GRADING"  # GradingOptions as JSON, for the BoxedGrades inside `nbgrader autograde`


def default_jobs() -> int:
    """One box per CPU, at most 8 (each box and its worker hold about 1 GB)."""
    return max(1, min(8, os.cpu_count() or 1))


def detected_devices() -> list[str]:
    from gradebox.tensors import available_devices  # imports torch: only when no devices were given
    return available_devices()


@dataclass(frozen=True)
class GradingOptions:
    jobs: int = field(default_factory=default_jobs)   # notebooks graded at once, one box each
    unboxed: bool = False                              # the explicit, loud opt-out where no box can be built
    limits: Limits = Limits()
    devices: tuple[str, ...] = ()                      # the checks' devices; () = every device found here
    max_notebook_mb: float = 20.0                      # a bigger submitted notebook is refused, never opened

    def resolved(self) -> "GradingOptions":
        """With the devices named, so that every stage and nbgrader's process compute the same result keys."""
        return self if self.devices else replace(self, devices=tuple(detected_devices()))

    def to_environment(self) -> dict[str, str]:
        return {VARIABLE: json.dumps(asdict(self.resolved()))}

    @classmethod
    def from_environment(cls) -> "GradingOptions":
        if not os.environ.get(VARIABLE):
            return cls().resolved()
        raw = json.loads(os.environ[VARIABLE])
        return cls(raw["jobs"], raw["unboxed"], Limits(**raw["limits"]), tuple(raw["devices"]),
                   raw["max_notebook_mb"])
