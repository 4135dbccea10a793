"""The classroom, end to end on loopback: a JupyterHub (trailblaze.classroom), an instructor and two students as
Unix users, nbgrader's exchange between them, a real browser (Debian's chromium, driven by playwright).

One term, in order (the `term` fixture), then one test per thing it must have proven:
  the instructor releases 01_setup and 03_attention;
  student A logs in through the login page, fetches 03_attention from the Assignment List, opens it, runs every
  cell in a real kernel with the instructor's solutions in it (written into the fetched notebook, as if typed),
  saves, and submits from the Assignment List;
  student B submits a partly wrong notebook whose markdown carries script HTML;
  the instructor collects, grades with the course's grader in the box as their own, non-root user, releases
  feedback, and views the grades and B's submission in the formgrader; the students fetch their feedback;
  two attacks of the adversarial suite (a fork bomb, a memory bomb) are graded in the same run, while the
  instructor's server is asked for its status every half second.
Screenshots of every step go to reports/classroom/ (gitignored); the end of the test report lists them. Needs root on Linux
with bwrap, Node >= 20, /usr/bin/chromium and playwright (`python3 course.py test` installs them where it may); where
they are missing the tests skip, except in CI (CI set), where they fail.
"""
from __future__ import annotations

import os
import pwd
import re
import shutil
import sqlite3
import subprocess
import threading
import time
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from course_tests import adversarial
from course_tests.conftest import CLASSROOM_SHOTS as SHOTS, CLASSROOM_SUMMARY
from gradebox import notebooks
from trailblaze import mutants, pipeline
from trailblaze.classroom import Classroom, accounts
from trailblaze.classroom.hub import Hub
from trailblaze.classroom.provision import ClassroomError, provision
from trailblaze.coursedir import COURSE
from trailblaze.stages.export import read_grades

pytestmark = [pytest.mark.xdist_group("classroom"), pytest.mark.timeout(900)]

ROOM = Classroom(prefix=Path("/opt/trailblaze-classroom-test"), instructor="tb-instructor",
                 students=("tb-student-a", "tb-student-b"), password="course-test-login", port=18700, offline=True)
INSTRUCTOR, (A, B) = ROOM.instructor, ROOM.students
# The students work on 03_attention, the assignment the adversarial suite attacks and the quickest to box; 01_setup
# is released beside it.
WORK, ALSO = adversarial.ASSIGNMENT, "01_setup"
CHROMIUM = Path("/usr/bin/chromium")
# root needs --no-sandbox; the rest keep chromium from calling out of a machine that reaches only package registries
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic"]
PROBE = "PWNED-BY-STUDENT-HTML"  # what B's script would make the page's title, or print, if it ran
LIVE_HTML = (f"<script>document.title = '{PROBE}'; console.log('{PROBE}')</script>\n\n"
             f"<img src=x onerror=\"document.title = '{PROBE}'; console.log('{PROBE}')\">\n\n"
             f"<svg onload=\"console.log('{PROBE}')\"></svg>")
BOMBS = ("adv_fork_bomb", "adv_memory_bomb")


def missing() -> str | None:
    """What this machine lacks for the classroom test, or None."""
    if os.geteuid() != 0 or not Path("/etc/debian_version").exists():
        return "needs root on Debian/Ubuntu (it makes Unix users)"
    for what, ok in (("bwrap", shutil.which("bwrap")), ("node", shutil.which("node")), ("npm", shutil.which("npm")),
                     (str(CHROMIUM), CHROMIUM.exists()), ("/usr/bin/python3", Path("/usr/bin/python3").exists())):
        if not ok:
            return f"{what} is missing"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (classroom/requirements-browser.txt)"
    return None


@dataclass
class Term:
    hub: Hub
    shots: list[Path] = field(default_factory=list)
    grades: dict = field(default_factory=dict)
    status_answers: list[float] = field(default_factory=list)   # seconds each status call took, while bombs ran
    status_failures: list[str] = field(default_factory=list)
    feedback: dict[str, list[str]] = field(default_factory=dict)  # student -> the feedback files they fetched
    formgrader_text: str = ""
    framed_text: str = ""
    submission_title: str = ""
    console: list[str] = field(default_factory=list)
    ran_cells: int = 0
    denied: dict[str, str] = field(default_factory=dict)    # what a student tried -> what the system said
    allowed: dict[str, str] = field(default_factory=dict)   # what must work -> output
    times: dict[str, float] = field(default_factory=dict)
    dialogs: list[str] = field(default_factory=list)        # the words of each JupyterLab dialog a user met


class Lab:
    """One user's browser tab on the hub."""

    def __init__(self, browser, term: Term, user: str):
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.term, self.user = term, user
        self.page.on("console", lambda message: term.console.append(f"{user}: {message.text}"))

    def shot(self, name: str) -> None:
        path = SHOTS / f"{len(self.term.shots) + 1:02d}-{self.user}-{name}.png"
        self.page.screenshot(path=str(path))
        self.term.shots.append(path)

    def settle_dialog(self) -> None:
        """A JupyterLab dialog blocks every click. Two are answered with what they propose, and noted in the report:
        'Select Kernel' (Lab asks when a run finds no kernel yet) and a kernel's restart after it died (then the run
        starts again); any other dialog fails the term, with its words and the end of the hub's log."""
        dialog = self.page.locator(".jp-Dialog")
        if not dialog.count():
            return
        words = " ".join(dialog.first.inner_text(timeout=5_000).split())
        self.shot("dialog")
        self.term.dialogs.append(f"{self.user}: {words}")
        if len(self.term.dialogs) > 3 or not any(k in words for k in ("Select Kernel", "Kernel Restarting")):
            raise AssertionError(f"JupyterLab shows {self.user} a dialog: {words!r}\n"
                                 f"the hub's log ends:\n{hub_log_tail()}")
        dialog.first.locator(".jp-mod-accept").click()
        dialog.first.wait_for(state="detached", timeout=30_000)
        self.page.wait_for_function(KERNEL_IDLE, timeout=120_000, polling=500)

    def log_in(self) -> None:
        self.page.goto(f"{ROOM.url}/hub/login")
        self.page.fill("#username_input", self.user)
        self.page.fill("#password_input", ROOM.password)
        self.shot("login")
        self.page.click("#login_submit")
        self.page.wait_for_selector("#jp-main-dock-panel", timeout=180_000)
        self.shot("lab")

    def assignment_list(self):
        self.settle_dialog()
        self.page.get_by_role("menuitem", name="Nbgrader").click()
        self.page.get_by_text("Assignment List", exact=True).click()
        self.page.wait_for_selector("#released_assignments_list .list_item, #fetched_assignments_list .list_item",
                                    timeout=60_000)
        return self.page

    def row(self, list_id: str, assignment: str):
        return self.page.locator(f"#{list_id} .list_item").filter(has_text=assignment).first


def nbgrader(user: str, *args: str) -> str:
    return accounts.nbgrader(ROOM, user, *args)


def tries(user: str, *cmd) -> tuple[int, str]:
    """Run `cmd` as `user`; (exit code, output): for what must be refused."""
    result = subprocess.run(["runuser", "-u", user, "--", *map(str, cmd)], capture_output=True, text=True)
    return result.returncode, (result.stdout + result.stderr).strip()


def solved(assignment: str):
    course = ROOM.course
    return pipeline.fill_solutions(notebooks.read(course.release_notebook(assignment)),
                                   notebooks.read(course.source_notebook(assignment)))


def partly_wrong_with_live_html(assignment: str):
    source = notebooks.read(ROOM.course.source_notebook(assignment))
    nb = pipeline.fill_solutions(notebooks.read(ROOM.course.release_notebook(assignment)),
                                 mutants.apply(source, mutants.partly_wrong(assignment)))
    nb.cells.append(nbformat.v4.new_markdown_cell(LIVE_HTML))
    return nb


def write_as(user: str, path: Path, nb) -> None:
    notebooks.write(nb, path)
    account = pwd.getpwnam(user)
    os.chown(path, account.pw_uid, account.pw_gid)


KERNEL_IDLE = "() => document.body.textContent.includes('Kernel status: Idle')"
STARTED_A_CELL = ("() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
                  ".some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))")


RAN_EVERY_CELL = ("() => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
                  ".map(e => e.textContent); return p.length > 0 && p.every(t => /\\[\\d+\\]/.test(t)); }")


def hub_log_tail(lines: int = 10) -> str:
    """The hub log's last lines about kernels and errors (the students' servers log there too), for a failure."""
    log = SHOTS / "jupyterhub.log"
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    said = [line for line in text if re.search(r"(?i)kernel|error|traceback|died|restart|killed|memory", line)]
    return "\n".join(said[-lines:])


def run_all_cells(lab: Lab, tries: int = 3) -> None:
    """Run > Run All Cells, again if no cell started within 20 s (a click that lands while the kernel is still
    connecting runs nothing)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    page = lab.page
    for _ in range(tries):
        lab.settle_dialog()
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        try:
            page.wait_for_function(STARTED_A_CELL, timeout=20_000, polling=500)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"Run > Run All Cells started no cell in {tries} tries")


def run_every_cell(lab: Lab, seconds: float = 240) -> None:
    """Run All Cells, and wait until every code cell has an execution count; where the kernel died and restarted
    on the way (settle_dialog notes it), run them all again."""
    run_all_cells(lab)
    deadline = time.monotonic() + seconds
    while not lab.page.evaluate(RAN_EVERY_CELL):
        if time.monotonic() > deadline:
            raise AssertionError(f"not every cell ran in {seconds:.0f} s; the hub's log ends:\n{hub_log_tail()}")
        if lab.page.locator(".jp-Dialog").count():
            lab.settle_dialog()
            run_all_cells(lab)
        lab.page.wait_for_timeout(1000)


def student_a_in_the_browser(browser, term: Term) -> None:
    lab = Lab(browser, term, A)
    lab.log_in()
    page = lab.assignment_list()
    term.listed = page.inner_text("#released_assignments_list")
    lab.shot("assignment-list")
    lab.row("released_assignments_list", WORK).get_by_role("button", name="Fetch").click()
    page.wait_for_selector(f"#fetched_assignments_list .list_item:has-text('{WORK}')", timeout=60_000)
    lab.shot("fetched")
    notebook = ROOM.home(A) / WORK / ROOM.course.notebook_name(WORK)
    assert notebook.exists(), f"fetching from the Assignment List did not put {notebook} in A's home"
    write_as(A, notebook, solved(WORK))  # the solutions, as if A had typed them
    page.goto(f"{ROOM.url}/user/{A}/lab/tree/{WORK}/{notebook.name}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_function(KERNEL_IDLE, timeout=120_000, polling=500)
    page.locator(".jp-Notebook .jp-Cell").first.click()  # the notebook, not another tab, is what Run acts on
    start = time.monotonic()
    try:
        run_every_cell(lab)
    finally:
        lab.shot("ran-every-cell")
    term.times["A runs every cell in the browser"] = time.monotonic() - start
    lab.settle_dialog()
    page.keyboard.press("Control+s")
    page.wait_for_timeout(2000)
    saved = notebooks.read(notebook)
    term.ran_cells = sum(1 for c in saved.cells if c.cell_type == "code" and c.get("execution_count"))
    page = lab.assignment_list()
    lab.row("fetched_assignments_list", WORK).get_by_role("button", name="Submit").click()
    page.wait_for_selector(f"#submitted_assignments_list .list_item:has-text('{WORK}')", timeout=60_000)
    lab.shot("submitted")
    term.lab_a = lab


def student_b_on_the_command_line() -> None:
    nbgrader(B, "fetch_assignment", WORK)
    write_as(B, ROOM.home(B) / WORK / ROOM.course.notebook_name(WORK), partly_wrong_with_live_html(WORK))
    nbgrader(B, "submit", WORK)


def grades() -> dict:
    return read_grades(ROOM.course.grades_csv)


def formgrader(browser, term: Term) -> None:
    lab = Lab(browser, term, INSTRUCTOR)
    lab.log_in()
    page = lab.page
    notebook = Path(ROOM.course.notebook_name(WORK)).stem
    page.goto(f"{ROOM.url}/user/{INSTRUCTOR}/formgrader/gradebook/{WORK}/{notebook}")
    page.wait_for_function("() => document.querySelectorAll('table tbody tr a').length >= 2", timeout=60_000,
                           polling=500)
    page.get_by_role("button", name="Show All Names").click()
    page.wait_for_timeout(500)
    term.formgrader_text = page.inner_text("body")
    lab.shot("formgrader-grades")
    with sqlite3.connect(ROOM.course.gradebook) as db:
        (submission,) = db.execute(
            "SELECT sn.id FROM submitted_notebook sn JOIN submitted_assignment sa ON sn.assignment_id = sa.id "
            "WHERE sa.student_id = ?", (B,)).fetchone()
    page.goto(f"{ROOM.url}/user/{INSTRUCTOR}/formgrader/submissions/{submission}/")
    page.wait_for_selector("#notebook-container, .cell, body", timeout=60_000)
    page.wait_for_timeout(1500)  # time for any script or onerror handler that got through to run
    term.submission_title = page.title()
    term.submission_html = page.content()
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # B's markdown cell is the last
    page.wait_for_timeout(500)
    lab.shot("formgrader-submission-b")
    page.goto(f"{ROOM.url}/user/{INSTRUCTOR}/lab")
    page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
    page.get_by_role("menuitem", name="Nbgrader").click()
    page.get_by_text("Formgrader", exact=True).click()
    frame = page.frame_locator("iframe").first
    frame.locator("body").wait_for(timeout=60_000)
    page.wait_for_timeout(2000)
    term.framed_text = frame.locator("body").inner_text(timeout=30_000)
    lab.shot("formgrader-in-jupyterlab")


def fetch_feedback(term: Term) -> None:
    lab = term.lab_a
    page = lab.assignment_list()
    lab.row("submitted_assignments_list", WORK).get_by_role("button", name="Fetch Feedback").click()
    page.wait_for_timeout(3000)
    lab.shot("feedback-fetched")
    lab.page.goto(f"{ROOM.url}/user/{A}/lab/tree/{WORK}/feedback")
    lab.page.wait_for_timeout(3000)
    lab.shot("feedback-folder")
    nbgrader(B, "fetch_feedback", WORK)
    for student in (A, B):
        folder = ROOM.home(student) / WORK / "feedback"
        term.feedback[student] = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.html"))


def student_tries(term: Term) -> None:
    inbound = ROOM.exchange / "trailblaze-gpt" / "inbound"
    b_submission = next(p for p in inbound.iterdir() if p.name.startswith(f"{B}+"))
    attempts = {
        "list the exchange's inbound": ("ls", inbound),
        "list the exchange's feedback": ("ls", ROOM.exchange / "trailblaze-gpt" / "feedback"),
        "read the source notebook": ("cat", ROOM.course.source_notebook(WORK)),
        "read the gradebook": ("cat", ROOM.course.gradebook),
        "list the instructor's home": ("ls", ROOM.home(INSTRUCTOR)),
        "read B's collected submission": ("cat", ROOM.course.submitted_notebook(B, WORK)),
        "read B's home": ("ls", ROOM.home(B)),
        "read the hub's state": ("ls", ROOM.hub),
    }
    term.inbound_name = b_submission.name
    for what, cmd in attempts.items():
        code, out = tries(A, *cmd)
        (term.denied if code else term.allowed)[what] = out[:300]


def plant_bombs() -> None:
    """Two attacks of the adversarial suite, submitted for 03 in the instructor's course beside the class's 01."""
    course = ROOM.course
    bases = pipeline.sample_submissions(WORK, course)
    for attack in (a for a in adversarial.ATTACKS if a.student in BOMBS):
        path = course.submitted_notebook(attack.student, WORK)
        for folder in (course.submitted, path.parent.parent, path.parent):
            folder.mkdir(exist_ok=True)
            shutil.chown(folder, INSTRUCTOR, INSTRUCTOR)
        write_as(INSTRUCTOR, path, adversarial.submission(attack, bases, course.root, course.root, 9))


def instructor_grades(term: Term) -> None:
    """nbgrader collect, then the course's grader (boxes as the instructor's own user) over 01 and the bombs' 03,
    while the instructor's server is asked for its status every half second; then feedback is released."""
    plant_bombs()
    stop = threading.Event()

    def ask():
        while not stop.is_set():
            start = time.monotonic()
            try:
                term.hub.server_api(INSTRUCTOR, "/status", timeout=10)
                term.status_answers.append(time.monotonic() - start)
            except (OSError, urllib.error.URLError) as err:
                term.status_failures.append(str(err))
            stop.wait(0.5)
    term.hub.spawn(INSTRUCTOR)
    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    try:
        term.grading_output = accounts.grade(ROOM, [WORK])  # the course's own limits
    finally:
        stop.set()
        asker.join()
    for student in ROOM.students:  # the bombs were never submitted through the exchange: nothing to send them
        nbgrader(INSTRUCTOR, "release_feedback", WORK, "--student", student)
    term.grades = grades()


@pytest.fixture(scope="module")
def term():
    why = missing()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"the classroom test cannot run here: {why}")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    times = {}
    start = time.monotonic()
    for user in ROOM.users:  # a new term: new accounts, the course as the repository has it, an empty exchange
        subprocess.run(["pkill", "-KILL", "-u", user], capture_output=True)
        subprocess.run(["userdel", "--remove", user], capture_output=True)
    shutil.rmtree(ROOM.exchange, ignore_errors=True)
    try:
        steps = provision(ROOM, say=lambda line: None)
    except ClassroomError as err:
        pytest.fail(f"the classroom could not be set up: {err}")
    times.update({f"set up: {k}": v for k, v in steps.items()})
    with Hub(ROOM, log=SHOTS / "jupyterhub.log") as hub, sync_playwright() as p:
        term = Term(hub, times=times)
        try:
            times["hub start"] = time.monotonic() - start - sum(steps.values())
            accounts.release(ROOM, [ALSO, WORK])
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
            mark = time.monotonic()
            student_a_in_the_browser(browser, term)
            student_b_on_the_command_line()
            times["students fetch, work and submit"] = time.monotonic() - mark
            mark = time.monotonic()
            instructor_grades(term)
            times["instructor collects, grades the class and the bombs in the box, releases feedback"] = (
                time.monotonic() - mark)
            mark = time.monotonic()
            formgrader(browser, term)
            fetch_feedback(term)
            times["formgrader and feedback in the browser"] = time.monotonic() - mark
            student_tries(term)
            browser.close()
            times["whole term"] = time.monotonic() - start
        finally:  # what the term got through, also when it broke off
            CLASSROOM_SUMMARY.write_text(
                "screenshots:\n" + "".join(f"  {p}\n" for p in term.shots)
                + "seconds:\n" + "".join(f"  {k:<70} {v:6.1f}\n" for k, v in times.items())
                + "dialogs met:\n" + "".join(f"  {d!r}\n" for d in term.dialogs or ["none"]))
        yield term


def full_marks(assignment: str) -> float:
    return sum(notebooks.grade_cells(notebooks.read(COURSE.source_notebook(assignment))).values())


def test_a_student_works_in_a_real_kernel_and_submits_from_the_assignment_list(term):
    assert ALSO in term.listed and WORK in term.listed, term.listed
    code_cells = sum(1 for c in solved(WORK).cells if c.cell_type == "code")
    assert term.ran_cells == code_cells, f"{term.ran_cells} of {code_cells} code cells ran in A's kernel"


def test_the_gradebook_holds_what_each_student_earned(term):
    full = full_marks(WORK)
    assert term.grades[A][WORK] == (full, full), term.grading_output
    assert 0 < term.grades[B][WORK][0] < full, term.grading_output
    assert "GRADING UNBOXED" not in term.grading_output


def test_the_formgrader_shows_the_grades_framed_or_not(term):
    full = full_marks(WORK)
    for student in (A, B):
        score = term.grades[student][WORK][0]
        row = next((line for line in term.formgrader_text.splitlines() if student in line), "")
        assert f"{score:g} / {full:g}" in row, f"{student}: {row!r} in\n{term.formgrader_text[:2000]}"
    assert "Manage Assignments" in term.framed_text, f"the framed formgrader shows: {term.framed_text[:500]!r}"


def test_student_html_does_not_run_in_the_formgrader(term):
    assert PROBE not in term.submission_title
    assert not [line for line in term.console if PROBE in line], term.console
    assert "onerror" not in term.submission_html.split("</head>")[-1] or "&lt;img" in term.submission_html


def test_each_student_fetches_only_their_own_feedback(term):
    for student in (A, B):
        assert len(term.feedback[student]) == 1, term.feedback
    a_page, b_page = ((next((ROOM.home(s) / WORK / "feedback").rglob("*.html")).read_text()) for s in (A, B))
    assert PROBE not in a_page, "A's feedback holds B's notebook"
    assert PROBE in b_page and "<script>document.title" not in b_page, "B's script is not inert text in B's feedback"


def test_students_cannot_reach_the_course_the_exchange_or_each_other(term):
    assert not term.allowed, f"a student could: {term.allowed}"
    # nbgrader's exchange keeps a submission from classmates by its name: inbound/ cannot be listed, and the folder's
    # name ends in a random part that no one else is told (12 letters and digits: 62**12 names to try)
    assert "list the exchange's inbound" in term.denied
    assert len(term.inbound_name.rsplit("+", 1)[1]) >= 12, term.inbound_name


def test_bombs_in_the_non_root_instructors_box_cost_only_their_checks(term):
    points = notebooks.grade_cells(notebooks.read(COURSE.source_notebook(WORK)))
    for attack in (a for a in adversarial.ATTACKS if a.student in BOMBS):
        assert term.grades[attack.student][WORK][0] == adversarial.deserved(attack, points), term.grading_output
    assert term.status_answers and not term.status_failures, term.status_failures
    assert max(term.status_answers) < 5, f"the instructor's server took {max(term.status_answers):.1f} s to answer"
