"""The options that travel together through every stage of grading, and to nbgrader's own process."""
from __future__ import annotations

import json
import os
import textwrap
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


def _size(n: int) -> str:
    """_size(8 << 30) == "8 GiB"; _size(64 << 20) == "64 MiB"."""
    return f"{n / (1 << 30):g} GiB" if n >= 1 << 30 else f"{n / (1 << 20):g} MiB"


def limits_for_students(options: GradingOptions = GradingOptions()) -> str:
    """The paragraph at the top of every assignment's notebook that tells students the limits grading puts on their
    code, from the course's own options (a meta-test compares each notebook with it)."""
    limits = options.limits
    text = (f"**Limits when graded.** Your code runs in a sandbox without network, on the CPU (and a GPU where your "
            f"course has one). Running your notebook's cells may take {limits.load_seconds:g} s, each call of one of "
            f"your functions {limits.call_seconds:g} s, and all the checks of the notebook {limits.total_seconds:g} s "
            f"together (after that the remaining checks fail). Your code may use {_size(limits.memory_bytes)} of "
            f"memory, {limits.cpu_seconds:g} s of CPU time, {limits.processes} processes, files of up to "
            f"{_size(limits.file_bytes)} and {_size(limits.disk_bytes)} of scratch space. A notebook over "
            f"{options.max_notebook_mb:g} MB is not graded: clear big outputs (Edit > Clear Outputs of All Cells) "
            f"before you submit.")
    return textwrap.fill(text, width=115, break_long_words=False, break_on_hyphens=False)
