"""A single-host classroom: JupyterHub with nbgrader's filesystem exchange, an instructor and students as Unix users.

    python3 course.py classroom        as root on a Debian/Ubuntu host: set up the demo class, start the hub, print
                                       its URL and logins (trailblaze.classroom.__main__)

The shape is The Littlest JupyterHub's (system users, one shared environment, the filesystem exchange); the parts:
    provision   the shared course environment, data, proxy, users, exchange, per-role Jupyter config, hub config
    hub         start and stop the hub, and talk to its REST API
`Classroom` says where everything lives and who is in the class; the course test (course_tests/classroom) builds
one of its own beside the demo's.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trailblaze.coursedir import CourseDirectory

COURSE_ID = "trailblaze-gpt"  # nbgrader_config.py's course id


@dataclass(frozen=True)
class Classroom:
    prefix: Path = Path("/opt/trailblaze-classroom")   # everything the hub installs, world-readable but hub/
    instructor: str = "instructor"
    students: tuple[str, ...] = ("student1", "student2")
    password: str = "trailblaze"                       # the demo login's shared password (the dummy authenticator)
    port: int = 8000                                   # the hub's public port; +1 the hub's API, +2 the proxy's API
    ip: str = "127.0.0.1"                              # the public address ("0.0.0.0" to serve a real class)
    offline: bool = False                              # no internet: kernels do not try the Hugging Face hub

    @property
    def env(self) -> Path:
        """The course environment every account runs: Debian's Python with the pinned requirements and the hub."""
        return self.prefix / "env"

    @property
    def python(self) -> Path:
        return self.env / "bin" / "python"

    @property
    def data(self) -> Path:
        """The prepared tokenizer files and corpus, readable by every kernel."""
        return self.prefix / "data"

    @property
    def proxy(self) -> Path:
        return self.prefix / "proxy"

    @property
    def exchange(self) -> Path:
        """nbgrader's exchange: students may drop into inbound/, never list it (nbgrader sets that up)."""
        return self.prefix / "exchange"

    @property
    def hub(self) -> Path:
        """The hub's own state (config, database, cookie secret, service token): root only."""
        return self.prefix / "hub"

    @property
    def config(self) -> Path:
        return self.hub / "jupyterhub_config.py"

    @property
    def token_file(self) -> Path:
        """The token of the `course` service: the hub's REST API for tests and scripts run by root."""
        return self.hub / "service-token"

    def role(self, user: str) -> Path:
        """The Jupyter config folder of a user's role (their JUPYTER_CONFIG_PATH): which extensions they get."""
        return self.prefix / "roles" / ("instructor" if user == self.instructor else "student")

    def home(self, user: str) -> Path:
        return Path("/home") / user

    @property
    def course(self) -> CourseDirectory:
        """The instructor's course directory: a copy of the course, inside a home no one else can enter."""
        return CourseDirectory(self.home(self.instructor) / "course")

    @property
    def url(self) -> str:
        return f"http://{'127.0.0.1' if self.ip == '0.0.0.0' else self.ip}:{self.port}"

    @property
    def users(self) -> tuple[str, ...]:
        return (self.instructor, *self.students)
