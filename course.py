#!/usr/bin/env python3
"""The course's two commands, on a fresh machine with only Python >= 3.10:

    python3 course.py grade    set everything up, then release, grade the sample class (boxed), export grades
    python3 course.py test     set everything up, then run the whole test suite
    python3 course.py new NN_name   a new assignment's parts from templates (notebook, checks, adapters, bugs)
    python3 course.py classroom     as root: a demo JupyterHub classroom on this host (README: Classroom)

`python3 course.py setup` only sets up. Setting up means: a virtualenv in .venv/, the pinned requirements.txt
installed into it (again only when requirements.txt changes), the offline data prepared, and bubblewrap (`bwrap`,
the box that isolates student code while grading) installed with apt-get, while pip runs, when it is missing and we
may (root on Debian/Ubuntu); otherwise a warning says how. `test` also installs what the classroom test drives
(classroom/: the hub, playwright, Debian's chromium); `classroom` sets up and starts a demo classroom hub on this
host (root).
Everything after that runs inside .venv. Arguments after the command are passed on (to pytest for `test`, to the
grader for `grade`: --jobs N, --unboxed).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import venv
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".trailblaze-requirements"
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def say(message: str) -> None:
    print(f"[course] {message}", flush=True)


def run(*cmd: str | Path, **kwargs) -> None:
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, **kwargs)
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_venv() -> None:
    if PYTHON.exists():
        return
    say(f"creating a virtualenv in {VENV.relative_to(ROOT)}/")
    try:
        venv.EnvBuilder(with_pip=True).create(VENV)
    except Exception as err:  # Debian without python3-venv lands here
        sys.exit(f"Could not create a virtualenv ({err}).\n"
                 "On Debian/Ubuntu install the venv module first: apt-get install python3-venv")


# What no course process imports, left out of that bytecode (a third of the files): packages' own tests, pip and
# setuptools, and every model of transformers' but the GPT-2 family and the auto classes that load it. (A module
# imported without bytecode still works: it compiles in memory, a little slower.)
NEVER_IMPORTED = r"/(tests?|testing/_internal|pip|setuptools)/|/transformers/models/(?!(auto|gpt2|encoder_decoder)/)"


def ensure_requirements(files: tuple[Path, ...] = (ROOT / "requirements.txt",), stamp: Path = STAMP,
                        what: str = "the pinned requirements (a minute or two the first time)") -> None:
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files) + sys.version.encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    say(f"installing {what}")
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    run(PYTHON, "-m", "pip", "install", "--quiet", "--no-compile", *(a for f in files for a in ("-r", f)), env=env)
    # Bytecode for the modules, on every CPU at once (pip compiles one file after another). Users who cannot write
    # to the environment (a classroom's students, the grading box) would otherwise compile at every start.
    # (A few packages ship files that do not compile, so its exit status says nothing.)
    subprocess.run([str(PYTHON), "-m", "compileall", "-q", "-j", "0", "-x", NEVER_IMPORTED, sysconfig_purelib()],
                   cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stamp.write_text(digest)


def sysconfig_purelib() -> str:
    return subprocess.run([str(PYTHON), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()


class AptPackage(NamedTuple):
    """A package the course installs with apt-get where it may (root on Debian/Ubuntu)."""
    name: str
    binary: str  # what it brings, looked for on PATH
    why: str
    without: str  # what the course says where it is missing


BUBBLEWRAP = AptPackage("bubblewrap", "bwrap", "the grading box",
                        "student code cannot be graded in a box. Install it (Debian/Ubuntu: sudo apt-get install "
                        "bubblewrap); until then grading refuses to run unless given --unboxed.")
CHROMIUM = AptPackage("chromium", "chromium", "the browser the classroom test drives",
                      "the classroom test skips (Debian/Ubuntu: apt-get install chromium)")


def apt_install(packages: tuple[AptPackage, ...]) -> None:
    """Those of `packages` whose binary is missing, in one apt-get run where we may (root on Debian/Ubuntu)."""
    missing = [(p.name, p.why) for p in packages if not shutil.which(p.binary)]
    if not missing or sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    say("installing with apt-get: " + "; ".join(f"{package}, {why}" for package, why in missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *(package for package, _ in missing)]
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode:
        for cmd in (["apt-get", "update", "-qq"], install):  # a fresh machine has no package lists yet
            if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode:
                break


def in_background(step) -> threading.Thread:
    """`step` on a thread of its own: apt-get fetches and unpacks while pip installs into .venv."""
    thread = threading.Thread(target=step, daemon=True)
    thread.start()
    return thread


def warn_if_missing(packages: tuple[AptPackage, ...]) -> None:
    for p in packages:
        if not shutil.which(p.binary) and sys.platform == "linux":
            say(f"WARNING: {p.binary} ({p.name}) is not installed, so {p.without}")


def ensure_classroom_test() -> None:
    """What the classroom test (course_tests/meta/test_classroom.py) needs beside the course: the hub and the
    browser driver in .venv (Debian's chromium, for it to drive, comes with setup's apt packages). It skips without
    them, and fails in CI."""
    recipe = ROOT / "classroom"
    ensure_requirements((recipe / "requirements.txt", recipe / "requirements-browser.txt"),
                        VENV / ".trailblaze-classroom-requirements", "the classroom test's hub and browser driver")


def setup(apt_packages: tuple[AptPackage, ...] = (BUBBLEWRAP,), then=()) -> None:
    """The virtualenv, its requirements and the data; meanwhile, apt_packages on a thread of their own; then each
    step of `then`; then whatever is still missing is named."""
    if sys.version_info < (3, 10):
        sys.exit(f"Python >= 3.10 is required, this is {sys.version.split()[0]}")
    apt = in_background(lambda: apt_install(apt_packages))
    ensure_venv()
    ensure_requirements()
    run(PYTHON, "-m", "trailblaze.data")
    for step in then:
        step()
    apt.join()
    warn_if_missing(apt_packages)


def main(argv: list[str]) -> None:
    commands = {
        "setup": [],
        "grade": ["-m", "trailblaze.pipeline"],
        "new": ["-m", "trailblaze.scaffold"],
        "classroom": ["-m", "trailblaze.classroom"],
        # pytest-xdist workers: one per CPU and one more (at most 5), because the classroom test holds a worker for
        # minutes while mostly waiting on a browser and a hub; tests that share a graded class, a kill matrix or the
        # classroom stay together (--dist loadgroup).
        "test": ["-m", "pytest", "course_tests", f"--numprocesses={min(5, (os.cpu_count() or 1) + 1)}",
                 "--dist=loadgroup"],
    }
    if not argv or argv[0] not in commands:
        sys.exit(__doc__)
    if argv[0] == "test":
        setup((BUBBLEWRAP, CHROMIUM), then=(ensure_classroom_test,))
    else:
        setup()
    if argv[0] != "setup":
        run(PYTHON, *commands[argv[0]], *argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
