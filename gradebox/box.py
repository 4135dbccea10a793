"""The trusted side of isolated grading: student code runs in a boxed child process, checks run here.

`Boxed` is an `Implementation` like `InProcess`, so every check runs unchanged: `impl.call(adapter, ...)` sends
the adapter's name and plain inputs to the child (gradebox.child) and gets plain data back (gradebox.wire).
The checks, their references, hidden inputs and the gradebook never enter the child.

The box (`bwrap`, Debian package `bubblewrap`) shows the child an allow-list and nothing else: the system
(/usr, /etc, ...), the Python environment, the engine's child side (CHILD_SIDE) and what the course names in its
`BoxView` (its adapters, the modules they import, its data), all read-only at their own paths. Its home, /tmp and
/dev/shm are private size-limited tmpfs mounts. New mount, PID, network, IPC and UTS namespaces: no network, its
own PIDs; as root the child drops to a uid of its own (`box_uid`), unprivileged a user namespace maps it. Resource
limits (`Limits`); the whole process tree killed at each deadline.
Where `bwrap` cannot run, `box_problem()` says why and `Boxed(..., unboxed=True)` is the explicit opt-out: the
child is still a separate process with the same limits and data-only boundary, but it sees the whole disk.
"""
from __future__ import annotations

import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from gradebox import ENGINE, wire
from gradebox.limits import Limits
from gradebox.student import GraderFault, Implementation, StudentError
# The modules the child imports of the engine: the rest (the checks' registry, expectations, runner, this file)
# never runs next to student code.
CHILD_SIDE = tuple(ENGINE / name for name in ("__init__.py", "child.py", "wire.py", "student.py", "notebooks.py",
                                              "tensors.py", "inputs.py"))


@dataclass(frozen=True)
class BoxView:
    """What a course shows the child besides the system, the Python environment and CHILD_SIDE: an allow-list.

    readable     host files and folders the child may read, bound read-only at their own paths (its adapters, the
                 modules they import, the data they read)
    import_root  put on the child's sys.path: the folder that holds the course's packages
    environment  variables the child gets, as (name, value)
    home_copies  (variable, host folder): the folder is copied into the child's home before any student code runs,
                 and the variable names the copy (for libraries that write beside what they read)
    """
    readable: tuple[Path, ...]
    import_root: Path
    environment: tuple[tuple[str, str], ...] = ()
    home_copies: tuple[tuple[str, Path], ...] = ()


@lru_cache(maxsize=1)
def box_problem() -> str | None:
    """None when bwrap can build the box here; otherwise why not, in words an instructor can act on."""
    if not shutil.which("bwrap"):
        return "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", *namespaces(), "--die-with-parent", "--", "true"],
                           capture_output=True, text=True)
    if probe.returncode:
        return f"bwrap cannot create namespaces here: {probe.stderr.strip()[:300]}"
    return None


BOX_UID_BASE = 60000  # as root, each box's child runs as BOX_UID_BASE + (grader pid % 30000), a uid no one else has


def box_uid() -> int | None:
    """The host uid a box's child drops to when the grader runs as root (None: it keeps the grader's own, non-root
    uid, mapped by an unprivileged user namespace). One uid per grading process, so RLIMIT_NPROC, which the kernel
    counts per uid, confines a fork bomb to its own box."""
    return BOX_UID_BASE + os.getpid() % 30000 if os.geteuid() == 0 else None


def namespaces() -> list[str]:
    """As root: new mount, PID, network, IPC, UTS and cgroup namespaces, but no user namespace, because inside one
    the child's uid would map back to root on the host (exempt from RLIMIT_NPROC); the child drops to box_uid()
    itself, with the only two capabilities it is given. Unprivileged: a user namespace is what makes bwrap work."""
    if os.geteuid() == 0:
        return ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    return ["--unshare-all"]


SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc")  # with the Python environment: the system


# How a report line says the code gave no answer at all (the messages `Boxed` writes): stopped at a deadline, or its
# process died, exited or stopped answering.
TIMEOUT_SAYS = ("stopped after", "took over")
CRASH_SAYS = ("the notebook's process",)
BOX_HOME = "/scratch"  # the child's home and working directory inside the box: a size-limited tmpfs


def box_arguments(limits: Limits, view: BoxView) -> list[str]:
    # Writable: only its home, /tmp and /dev/shm (DataLoader workers share tensors there), private size-limited
    # tmpfs mounts that vanish with the box, so nothing it writes reaches the grader's disk or outlives a restart.
    args = ["bwrap", *namespaces(), "--die-with-parent", "--new-session", "--proc", "/proc", "--dev", "/dev"]
    for place in ("/tmp", "/dev/shm", BOX_HOME):
        args += ["--perms", "1777", "--size", str(limits.disk_bytes), "--tmpfs", place]
    system = [p for p in dict.fromkeys(SYSTEM + (sys.base_prefix, sys.prefix)) if os.path.exists(p)]
    readable = [str(p) for p in dict.fromkeys((*CHILD_SIDE, *view.readable)) if p.exists()]
    # bwrap creates missing parents of a mount point as root-only directories: make them traversable first
    parents = {str(parent) for m in system + readable for parent in Path(m).parents if parent != Path("/")}
    for parent in sorted(parents - set(system), key=lambda p: p.count("/")):
        args += ["--perms", "0755", "--dir", parent]
    for path in system + readable:
        args += ["--ro-bind", path, path]
    for node in gpu_nodes():  # the GPU, where there is one
        args += ["--dev-bind", str(node), str(node)]
    args += ["--chdir", BOX_HOME]
    if os.geteuid() == 0:
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]  # for the child's drop to box_uid(), only
    return args + ["--"]


def child_environment(home: str, view: BoxView, limits: Limits) -> dict[str, str]:
    """Nothing of the grader's environment but the thread count and the GPUs it may use; the view's variables;
    GRADEBOX_HOME_COPIES tells the child which folders to copy into its home (as `variable=host path` lines), and
    GRADEBOX_PROCESSES its process limit (which it sets itself: gradebox.child.limit_processes)."""
    keep = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES") if k in os.environ}
    copies = "\n".join(f"{variable}={source}" for variable, source in view.home_copies)
    return {**keep, **dict(view.environment), "GRADEBOX_HOME_COPIES": copies, "HOME": home, "TMPDIR": "/tmp",
            "GRADEBOX_PROCESSES": str(limits.processes),
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONSAFEPATH": "1"}


def child_boot(view: BoxView) -> str:
    """The child's interpreter runs isolated (-I: no current directory, PYTHONPATH or user site on sys.path), so
    nothing a student writes into the scratch directory, its working directory, can stand in for torch or for the
    child itself when the child is restarted after a crash. Only the engine's and the course's folders are added."""
    roots = list(dict.fromkeys([str(ENGINE.parent), str(view.import_root)]))
    return (f"import sys; sys.path[:0] = {roots!r}; import runpy; "
            "runpy.run_module('gradebox.child', run_name='__main__', alter_sys=True)")


def gpu_nodes() -> list[Path]:
    return sorted(Path("/dev").glob("nvidia*"))


def apply_limits(limits: Limits):
    # Address space is the tightest memory limit, but a CUDA context reserves far more address space than it uses:
    # with a GPU, the limit is on writable private memory (RLIMIT_DATA) instead.
    memory = resource.RLIMIT_DATA if gpu_nodes() else resource.RLIMIT_AS

    # RLIMIT_NPROC is not set here but by the child inside the box (gradebox.child.limit_processes): on bwrap it
    # would be checked against every process of the grader's uid, a fork bomb's included.
    def preexec() -> None:
        for name, value in [(resource.RLIMIT_CPU, limits.cpu_seconds), (memory, limits.memory_bytes),
                            (resource.RLIMIT_NOFILE, limits.open_files),
                            (resource.RLIMIT_FSIZE, limits.file_bytes), (resource.RLIMIT_CORE, 0)]:
            resource.setrlimit(name, (value, value))
    return preexec


class AtTheProcessLimit(StudentError):
    """The box's keeper killed a call whose processes filled the box (gradebox.child.Worker.relay)."""


class DeadlineReader:
    """A pipe read with a deadline for the whole message: a child that sends half a frame and stalls is cut off."""

    def __init__(self, stream, deadline: float):
        self.stream, self.deadline = stream, deadline

    def read(self, n: int) -> bytes:
        left = self.deadline - time.monotonic()
        if left <= 0 or not select.select([self.stream], [], [], left)[0]:
            raise TimeoutError
        return self.stream.read(n)


class Boxed(Implementation):
    """One student's notebook for one assignment, served from a boxed child process.

    After a crash the notebook is loaded again, so one bad function costs only its own checks: in a box without a GPU
    its keeper forks a fresh worker (gradebox.child; a fork costs milliseconds where a new box and its imports cost
    seconds); after a timeout, unboxed, with a GPU (a fork after CUDA is unsafe), or when the keeper is gone, the
    box itself is rebuilt. What cannot get better by retrying is remembered so that it costs its time once: a
    notebook whose cells time out or kill the process while loading, a function that ran past its deadline or filled
    the box with processes (a fork bomb: the keeper kills it at the process limit; without a keeper its deadline
    does), and the notebook's total time (`Limits.total_seconds`).
    """

    def __init__(self, assignment: str, cells: list[tuple[str, str]], adapters: str, view: BoxView,
                 limits: Limits = Limits(), unboxed: bool = False):
        super().__init__(assignment)
        if not unboxed and box_problem():
            raise RuntimeError(f"cannot build the grading box: {box_problem()}. Grading untrusted code without it "
                               "needs an explicit opt-out (unboxed).")
        self.cells = [[label, source] for label, source in cells]
        self.adapters, self.view, self.limits, self.unboxed = adapters, view, limits, unboxed
        self.process = None
        self.loaded = False
        self.warm = not unboxed and not gpu_nodes()
        self.load_errors: list[str] = []
        self.load_failure: StudentError | None = None
        self.timed_out: dict[str, StudentError] = {}
        self.started_at: float | None = None
        # The grader's own directory: the child's output log (the child gets only its file descriptor) and, unboxed,
        # the child's home. Boxed, the child cannot see it at all.
        self.scratch = Path(tempfile.mkdtemp(prefix="gradebox-"))
        self.log = os.open(self.scratch / "output.log", os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)

    # --- the child's life ---------------------------------------------------------------------------------------
    def start(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        command = [sys.executable, "-I", "-c", child_boot(self.view), str(to_child_r), str(from_child_w),
                   self.adapters, "warm" if self.warm else "cold"]
        home = str(self.scratch / "home") if self.unboxed else BOX_HOME
        if self.unboxed:
            os.makedirs(home, exist_ok=True)
        else:
            uid = box_uid()
            command = box_arguments(self.limits, self.view) + command + ([str(uid)] if uid is not None else [])
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                        pass_fds=(to_child_r, from_child_w), cwd=home if self.unboxed else "/",
                                        env=child_environment(home, self.view, self.limits),
                                        preexec_fn=apply_limits(self.limits), start_new_session=True)
        os.close(to_child_r)
        os.close(from_child_w)
        self.writer, self.reader = os.fdopen(to_child_w, "wb"), os.fdopen(from_child_r, "rb", buffering=0)
        try:
            hello, _ = wire.read_frame(DeadlineReader(self.reader, time.monotonic() + self.limits.start_seconds))
            assert hello == {"ok": True, "ready": True}
        except (TimeoutError, EOFError, AssertionError, wire.WireError):
            self.stop()
            size = os.fstat(self.log).st_size
            log = os.pread(self.log, 1500, max(0, size - 1500)).decode(errors="replace").strip()
            raise GraderFault(f"the grading box did not start{' (unboxed)' if self.unboxed else ''}; before any "
                              f"student code ran it printed:\n{log or '(nothing)'}") from None
        self.load()

    def load(self) -> None:
        try:
            self.load_errors = self.exchange({"op": "load", "assignment": self.assignment, "cells": self.cells},
                                             None, self.limits.load_seconds, "loading the notebook") or []
        except StudentError as err:
            self.load_failure = err
            raise
        self.loaded = True

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # the whole tree: the box's session
        except ProcessLookupError:
            pass
        self.process.wait()
        self.loaded = False
        for stream in (self.writer, self.reader):
            try:
                stream.close()
            except OSError:
                pass
        self.process = None

    def close(self) -> None:
        self.stop()
        if self.log is not None:
            os.close(self.log)
            self.log = None
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # --- one exchange -------------------------------------------------------------------------------------------
    def exchange(self, message: dict, value, seconds: float, doing: str):
        try:
            wire.write_frame(self.writer, message, value)
            answer, result = wire.read_frame(DeadlineReader(self.reader, time.monotonic() + seconds))
        except TimeoutError:
            self.stop()
            raise StudentError("Timeout", f"stopped after {seconds:g} s while {doing}: an endless loop, or "
                                          "far too much work for a small input?") from None
        except (EOFError, BrokenPipeError, wire.WireError) as err:
            code = None
            if self.process and not isinstance(err, wire.WireError):
                try:
                    code = self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            self.stop()
            raise StudentError("Crashed", self.crash_message(code, doing, type(err).__name__)) from None
        if answer.get("ok") is True:
            return result
        if "ended" in answer:  # the keeper's word: the worker that held the notebook ended, the box lives on
            self.loaded = False
            if answer.get("limit") == "processes":
                raise AtTheProcessLimit("Crashed", f"the notebook's process was killed while {doing}: it kept "
                                                   f"starting processes, up to the box's limit of "
                                                   f"{self.limits.processes} at once (a fork bomb?)")
            code = answer["ended"]
            raise StudentError("Crashed", self.crash_message(code if type(code) is int else None, doing,
                                                             "it sent a malformed answer", from_keeper=True))
        error = answer.get("error")
        if not (type(error) is list and len(error) in (3, 4) and all(type(e) is str for e in error)):
            self.stop()
            raise StudentError("Crashed", f"the notebook's process sent a malformed answer while {doing}")
        # The child's own protocol errors carry three parts (their message is the grader's); student errors four.
        raise StudentError(error[0][:100], error[1][:500], error[2][:200], error[3][:500] if len(error) == 4 else None)

    def crash_message(self, code: int | None, doing: str, reason: str, from_keeper: bool = False) -> str:
        if code is not None and code > 128 and not self.unboxed and not from_keeper:  # bwrap: a signal as 128 + it
            code = 128 - code
        if code is not None and code < 0:
            why = {signal.SIGKILL: "killed (memory limit or CPU time limit?)", signal.SIGXCPU: "out of CPU time",
                   signal.SIGXFSZ: "it wrote a file over the size limit", signal.SIGSEGV: "a segmentation fault"}
            return f"the notebook's process died while {doing}: {why.get(-code, f'signal {-code}')}"
        if code is not None:
            return f"the notebook's process exited (exit code {code}) while {doing}: does your code call " \
                   "sys.exit, os._exit or quit()?"
        return f"the notebook's process stopped answering while {doing} ({reason})"

    def call(self, adapter: str, *args, **kwargs):
        if self.load_failure is not None:
            raise self.load_failure
        if adapter in self.timed_out:
            raise self.timed_out[adapter]
        if self.started_at is None:
            self.started_at = time.monotonic()
        left = self.limits.total_seconds - (time.monotonic() - self.started_at)
        if left <= 0:
            raise StudentError("Timeout", f"grading this notebook took over {self.limits.total_seconds:g} s in "
                                          "all, so its remaining checks were not run")
        if self.process is None:
            self.start()
        elif not self.loaded:
            self.load()
        try:
            return self.exchange({"op": "call", "adapter": adapter}, [list(args), kwargs],
                                 min(self.limits.call_seconds, left), f"running {adapter}")
        except StudentError as err:
            if err.type_name == "Timeout" or isinstance(err, AtTheProcessLimit):  # it would do it again
                self.timed_out[adapter] = err
            raise
