"""The limits a box runs student code under (plain data: the grader's options carry them without importing torch)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    start_seconds: float = 60.0      # wall time for the box and the child's imports, before any student code
    load_seconds: float = 120.0      # wall time to run the notebook's cells
    call_seconds: float = 60.0       # wall time per adapter call
    cpu_seconds: int = 600           # CPU time of the child over its life
    memory_bytes: int = 8 << 30      # address space (torch alone maps ~2 GiB); with a GPU, RLIMIT_DATA
    processes: int = 256             # RLIMIT_NPROC of the box's own uid
    open_files: int = 256
    file_bytes: int = 64 << 20       # the largest file it may write (its output log included)
    total_seconds: float = 600.0     # wall time for all of one notebook's checks; later calls fail at once
    disk_bytes: int = 512 << 20      # each writable place in the box (its home, /tmp, /dev/shm) is a tmpfs this big
