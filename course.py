#!/usr/bin/env python3
"""The course's two commands, on a fresh machine with only Python >= 3.10:

    python3 course.py grade    set everything up, then release, grade the sample class (boxed), export grades
    python3 course.py test     set everything up, then run the whole test suite
    python3 course.py new NN_name   a new assignment's parts from templates (notebook, checks, adapters, bugs)

`python3 course.py setup` only sets up. Setting up means: a virtualenv in .venv/, the pinned requirements.txt
installed into it (again only when requirements.txt changes), the offline data prepared, and bubblewrap (`bwrap`,
the box that isolates student code while grading) installed with apt-get when it is missing and we may (root on
Debian/Ubuntu); otherwise a warning says how. Everything after that runs inside .venv. Arguments after the command
are passed on (to pytest for `test`, to the grader for `grade`: --jobs N, --unboxed).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

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


def ensure_requirements() -> None:
    requirements = ROOT / "requirements.txt"
    stamp = hashlib.sha256(requirements.read_bytes() + sys.version.encode()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == stamp:
        return
    say("installing the pinned requirements (a minute or two the first time)")
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    run(PYTHON, "-m", "pip", "install", "--quiet", "-r", requirements, env=env)
    STAMP.write_text(stamp)


def ensure_bubblewrap() -> None:
    if shutil.which("bwrap") or sys.platform != "linux":
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("installing bubblewrap, the grading box (apt-get)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "bubblewrap"]):
            if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode:
                break
        if shutil.which("bwrap"):
            return
    say("WARNING: bwrap (bubblewrap) is not installed, so student code cannot be graded in a box. Install it "
        "(Debian/Ubuntu: sudo apt-get install bubblewrap); until then grading refuses to run unless given --unboxed.")


def setup() -> None:
    if sys.version_info < (3, 10):
        sys.exit(f"Python >= 3.10 is required, this is {sys.version.split()[0]}")
    ensure_venv()
    ensure_requirements()
    run(PYTHON, "-m", "trailblaze.data")
    ensure_bubblewrap()


def main(argv: list[str]) -> None:
    commands = {
        "setup": [],
        "grade": ["-m", "trailblaze.pipeline"],
        "new": ["-m", "trailblaze.scaffold"],
        # One pytest-xdist worker per CPU (at most 4); tests that share a graded class or a kill matrix stay together.
        "test": ["-m", "pytest", "course_tests", "--numprocesses=auto", "--maxprocesses=4", "--dist=loadgroup"],
    }
    if not argv or argv[0] not in commands:
        sys.exit(__doc__)
    setup()
    if argv[0] != "setup":
        run(PYTHON, *commands[argv[0]], *argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
