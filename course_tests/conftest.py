"""pytest wiring for the course checks.

    pytest course_tests                              everything: checks on the instructor's solutions + meta-tests
    pytest course_tests --submission PATH            checks only, on a student's notebook or folder
    pytest course_tests --device cuda                pick the device (default: cpu, and cuda when available)
    pytest course_tests --scores-json scores.json    write nbgrader-style points per grade cell
"""
from __future__ import annotations

import json
import os
import resource
import time
from collections import defaultdict
from pathlib import Path

import pytest

from trailblaze import data
from trailblaze.coursedir import COURSE

# Under pytest-xdist, each worker gets its share of the CPUs: torch (and every kernel, box and grader process a test
# starts, through OMP_NUM_THREADS) would otherwise start one thread per CPU in every worker, and oversubscribed
# OpenMP threads spin. Set before torch is imported.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // _WORKERS))

# Offline and quiet before anything imports transformers, tiktoken or matplotlib.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
data.use_offline_data()

import course_tests.checks  # noqa: E402,F401  (registers every check)
from course_tests import adapters_for  # noqa: E402
from gradebox.checks import REGISTRY, devices_for  # noqa: E402
from gradebox.student import load_notebook  # noqa: E402
from gradebox.tensors import available_devices  # noqa: E402


def pytest_addoption(parser):
    group = parser.getgroup("course")
    group.addoption("--submission", type=Path, default=None,
                    help="a student's notebook or folder to check (default: the instructor's source notebooks)")
    group.addoption("--device", choices=["cpu", "cuda", "all"], default="all",
                    help="device for the checks (default: cpu, plus cuda when available)")
    group.addoption("--scores-json", type=Path, default=None, help="write points per grade cell as JSON")


def resolve_submission(path: Path | None) -> dict[str, Path]:
    """assignment -> notebook. A folder is searched for the course's notebook names; a notebook must be one."""
    sources = {COURSE.notebook_name(a): a for a in COURSE.assignments()}
    if path is None:
        return {a: COURSE.source_notebook(a) for a in COURSE.assignments()}
    if not path.exists():
        raise pytest.UsageError(f"--submission {path}: no such file or folder")
    if path.is_file():
        assignment = sources.get(path.name) or (path.parent.name if path.parent.name in COURSE.assignments() else None)
        if assignment is None:
            raise pytest.UsageError(f"--submission {path}: not one of the course notebooks ({', '.join(sources)})")
        return {assignment: path}
    found: dict[str, Path] = {}
    for nb in sorted(path.rglob("*.ipynb")):
        if ".ipynb_checkpoints" not in nb.parts and nb.name in sources:
            found.setdefault(sources[nb.name], nb)
    if not found:
        raise pytest.UsageError(f"--submission {path}: no course notebook ({', '.join(sources)}) in this folder")
    return found


def selected_devices(config) -> list[str]:
    choice = config.getoption("--device")
    if choice == "all":
        return available_devices()
    if choice == "cuda" and "cuda" not in available_devices():
        raise pytest.UsageError("--device cuda: torch.cuda.is_available() is False on this machine")
    return [choice]


def pytest_configure(config):
    config.course_submission = resolve_submission(config.getoption("--submission"))
    config.course_devices = selected_devices(config)
    if config.getoption("--scores-json") is not None:
        config.pluginmanager.register(ScoreRecorder(config.getoption("--scores-json")), "course-scores")


def pytest_ignore_collect(collection_path, config):
    """Grading a student runs the checks only; the course's meta-tests are for the course itself."""
    if config.getoption("--submission") is not None and "meta" in collection_path.parts:
        return True
    return None


# The long tests that belong to no group, first. pytest-xdist (--dist loadgroup) hands out groups of many tests
# first (the graded class, the classroom, the kill matrices), then single tests in collection order: one that starts
# last ends last, while the other workers wait.
LONG_FIRST = ("meta/test_pipeline.py", "meta/test_notebooks.py::test_source_runs", "meta/test_distributed.py",
              "meta/test_tokenization_reference.py", "meta/test_notebooks.py::test_release_runs",
              "meta/test_harness.py::test_command_line", "meta/test_inputs.py", "meta/test_assignments.py")


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        return next((i for i, part in enumerate(LONG_FIRST) if part in item.nodeid), len(LONG_FIRST))
    items.sort(key=rank)


def pytest_report_header(config):
    lines = [f"course devices: {', '.join(config.course_devices)}"]
    lines += [f"course notebook {a}: {p}" for a, p in sorted(config.course_submission.items())]
    return lines


def pytest_generate_tests(metafunc):
    if "check" in metafunc.fixturenames:
        config = metafunc.config
        pairs = [(c, d) for c in REGISTRY if c.assignment in config.course_submission
                 for d in devices_for(c, config.course_devices)]
        metafunc.parametrize("check,device", pairs, ids=[f"{c.id}[{d}]" for c, d in pairs])


@pytest.fixture(scope="session")
def implementation_for(pytestconfig):
    """assignment -> the loaded implementation of the notebook under test (loaded once per session)."""
    cache = {}

    def get(assignment: str):
        if assignment not in cache:
            cache[assignment] = load_notebook(pytestconfig.course_submission[assignment], assignment,
                                              adapters_for(assignment))
        return cache[assignment]
    return get


class ScoreRecorder:
    """Turns check results into nbgrader-style points: a check earns its points when it passes on every device."""

    def __init__(self, path: Path):
        self.path = path
        self.results: dict = defaultdict(dict)

    def pytest_runtest_logreport(self, report):
        props = dict(report.user_properties)
        if "grade_id" in props and (report.when == "call" or not report.passed):
            key = (props["assignment"], props["grade_id"], props["check"])
            self.results[key][props["device"]] = self.results[key].get(props["device"], True) and report.passed

    def pytest_sessionfinish(self, session):
        scores: dict = defaultdict(dict)
        for check in REGISTRY:
            outcome = self.results.get((check.assignment, check.grade_id, check.name))
            if outcome is None:
                continue
            cell = scores[check.assignment].setdefault(check.grade_id, {"points": 0.0, "max_points": 0.0,
                                                                          "failed": []})
            cell["max_points"] += check.points
            if all(outcome.values()):
                cell["points"] += check.points
            else:
                cell["failed"].append(check.name)
        self.path.write_text(json.dumps(scores, indent=2, sort_keys=True))


# The classroom test's screenshots, and the summary it writes beside them for the end of the test report.
CLASSROOM_SHOTS = COURSE.reports / "classroom"
CLASSROOM_SUMMARY = CLASSROOM_SHOTS / "summary.txt"
STARTED = time.time()


def pytest_terminal_summary(terminalreporter):
    """Where the classroom test's screenshots are, and what each step took, when it ran in this session (under
    pytest-xdist a fixture's output is not shown; this runs in the controller, which loads only this conftest)."""
    if CLASSROOM_SUMMARY.exists() and CLASSROOM_SUMMARY.stat().st_mtime >= STARTED:
        terminalreporter.write_sep("-", "classroom test")
        terminalreporter.write_line(CLASSROOM_SUMMARY.read_text().rstrip())


# Where the suite's time goes: with TRAILBLAZE_TIMELINE=<file>, each test's phases (worker, start, stop, CPU seconds)
# are appended there as JSON lines; benchmarks/suite.py reads them. Off by default: CI prints --durations instead.
TIMELINE = os.environ.get("TRAILBLAZE_TIMELINE")


def cpu_seconds() -> float:
    """CPU time of this process and of every child it has waited for (boxes, kernels, the hub and its servers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from timed_phase(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from timed_phase(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item):
    return (yield from timed_phase(item))


def timed_phase(item):
    """The phase's CPU seconds, as a user property its report carries to the controller (the phase's report is
    made after it ends, from the item's properties then)."""
    if not TIMELINE:
        return (yield)
    start = cpu_seconds()
    try:
        return (yield)
    finally:
        item.user_properties = [p for p in item.user_properties if p[0] != "cpu_seconds"]
        item.user_properties.append(("cpu_seconds", cpu_seconds() - start))


def pytest_runtest_logreport(report):
    if TIMELINE and not os.environ.get("PYTEST_XDIST_WORKER"):  # the controller hears every worker's reports
        worker = getattr(getattr(report, "node", None), "gateway", None)
        line = {"worker": worker.id if worker else "main", "test": report.nodeid, "when": report.when,
                "start": report.start, "stop": report.stop,
                "cpu": dict(report.user_properties).get("cpu_seconds", 0.0)}
        with open(TIMELINE, "a") as f:
            f.write(json.dumps(line) + "\n")
