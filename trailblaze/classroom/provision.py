"""Set up a classroom on this host, as root: each step can run again and leaves what is right as it is.

    environment   Debian's Python (every account can run it; a pyenv Python in root's home cannot be) with the
                  course's pinned packages and the hub. Where .venv runs the same Python minor version its packages
                  are linked in (seconds; they are the same pinned wheels), otherwise installed with pip (minutes).
    data          the prepared tokenizer files and corpus, and the .venv hook that points every kernel at them
    proxy         configurable-http-proxy from npm, pinned by classroom/proxy/package-lock.json
    exchange      nbgrader's filesystem exchange, writable by all (nbgrader makes inbound/ drop-only)
    roles         one Jupyter config folder per role: students get the assignment list only; the instructor also
                  the formgrader (framed by their own server only) and the course list, and the course's config
    users         Unix accounts with private homes; the instructor's holds the course (source/, the gradebook, ...)
    hub           jupyterhub_config.py: local processes as the users, the dummy authenticator, loopback ports
Nothing goes to /etc/jupyter: global Jupyter config there would change every nbgrader on the host.
"""
from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from trailblaze.classroom import COURSE_ID, Classroom
from course_tests import datafiles
from trailblaze.coursedir import DATA, REPO, VENV

RECIPE = REPO / "classroom"
SYSTEM_PYTHON = Path("/usr/bin/python3")
# What the instructor's copy of the course holds: the course and its tooling, never .venv or earlier grading.
COURSE_PARTS = ("source", "release", "course_tests", "gradebox", "trailblaze", "nbgrader_config.py", "course.py",
                "requirements.txt", "README.md")
DATA_PARTS = (datafiles.TIKTOKEN, datafiles.GPT2, datafiles.CORPUS)
# The nbgrader extensions a student must not have: they could not use them (the course files are the instructor's)
# but they would only confuse. Locked, so that JupyterLab's plugin manager cannot turn them back on.
INSTRUCTOR_LAB = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                  "@jupyter/nbgrader:course-list")
INSTRUCTOR_SERVER = ("nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list")


class ClassroomError(RuntimeError):
    pass


def run(*cmd, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if result.returncode:
        raise ClassroomError(f"`{' '.join(map(str, cmd))}` failed ({result.returncode}):\n"
                             f"{(result.stdout + result.stderr).strip()[-2000:]}")
    return result


def as_user(user: str, *cmd, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """`cmd` run as `user` (root runs it through runuser), in their home unless `cwd`, with a login's HOME."""
    home = pwd.getpwnam(user).pw_dir
    environment = {"HOME": home, "USER": user, "LOGNAME": user, "PATH": os.environ.get("PATH", ""),
                   "LANG": "C.UTF-8", **(env or {})}
    return run("runuser", "-u", user, "--", "env", "-i", *(f"{k}={v}" for k, v in environment.items()), *cmd,
               cwd=cwd or home)


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # never write through a hard link into .venv
    path.write_text(text)
    path.chmod(mode)


# --- environment ------------------------------------------------------------------------------------------------
def _minor(python: Path) -> str:
    return run(python, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')").stdout.strip()


def _purelib(python: Path) -> Path:
    return Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem
        shutil.copy2(source, target)


def console_scripts(python: Path) -> list[str]:
    """Write bin/ entry points (jupyter, nbgrader, alembic, jupyterhub-singleuser, ...) for the packages linked in,
    as pip would have; returns their names."""
    code = r"""
import sys
from importlib.metadata import distributions
from pathlib import Path
bin_dir = Path(sys.executable).parent
names = []
for dist in distributions():
    for ep in dist.entry_points:
        if ep.group != "console_scripts":
            continue
        module, _, attr = ep.value.partition(":")
        script = bin_dir / ep.name
        script.unlink(missing_ok=True)
        call = attr.strip() or "main"
        script.write_text(f"#!{sys.executable}\nimport sys\nfrom {module.strip()} import {call.split('.')[0]}\n"
                          f"sys.exit({call}())\n")
        script.chmod(0o755)
        names.append(ep.name)
print("\n".join(sorted(set(names))))
"""
    return run(python, "-c", code).stdout.split()


def unfit_for(python: Path) -> list[str]:
    """The installed distributions whose Requires-Python excludes `python` (soupsieve 4 needs 3.11.5, Debian 12
    has 3.11.2): a venv made by pip there would hold older releases of them."""
    code = """
import platform
from importlib.metadata import distributions
from packaging.specifiers import SpecifierSet
here = platform.python_version()
needs = {d.metadata["Name"]: d.metadata.get("Requires-Python") for d in distributions()}
print("\\n".join(sorted(name for name, spec in needs.items() if spec and here not in SpecifierSet(spec))))
"""
    return run(python, "-c", code).stdout.split()


def build_env(room: Classroom, source_venv: Path = VENV, say=print) -> str:
    """The classroom's course environment; returns how it was made."""
    stamp = room.env / ".trailblaze-classroom"
    wanted = "\n".join(p.read_text() for p in (REPO / "requirements.txt", RECIPE / "requirements.txt"))
    if stamp.exists() and stamp.read_text() == wanted and room.python.exists():
        return "kept"
    if not SYSTEM_PYTHON.exists():
        raise ClassroomError(f"{SYSTEM_PYTHON} is missing: on Debian/Ubuntu apt-get install python3 python3-venv")
    shutil.rmtree(room.env, ignore_errors=True)
    run(SYSTEM_PYTHON, "-m", "venv", "--without-pip", room.env)
    source_python = source_venv / "bin" / "python"
    site = _purelib(room.python)
    if source_python.exists() and _minor(source_python) == _minor(room.python):
        shutil.rmtree(site)
        shutil.copytree(_purelib(source_python), site, symlinks=True, copy_function=_link_or_copy,
                        ignore=shutil.ignore_patterns("trailblaze_offline.pth"))  # bytecode too: no user can write it
        for data_files in ("share", "etc"):  # what packages install beside their code: templates, extensions
            if (source_venv / data_files).is_dir():
                shutil.copytree(source_venv / data_files, room.env / data_files, symlinks=True, dirs_exist_ok=True,
                                copy_function=_link_or_copy)
        unfit = unfit_for(room.python)  # built for .venv's Python, but that Python's patch release differs
        if unfit:
            run(room.python, "-m", "pip", "uninstall", "--quiet", "--yes", *unfit)
            run(room.python, "-m", "pip", "install", "--quiet", "-r", REPO / "requirements.txt")
        how = f"linked from {source_venv}" + (f"; {', '.join(unfit)} installed for this Python" if unfit else "")
    else:
        run(SYSTEM_PYTHON, "-m", "venv", "--upgrade-deps", room.env)
        run(room.python, "-m", "pip", "install", "--quiet", "-r", REPO / "requirements.txt")
        how = "installed with pip"
    run(room.python, "-m", "pip", "install", "--quiet", "-r", RECIPE / "requirements.txt",
        env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
    console_scripts(room.python)
    stamp.write_text(wanted)
    return how


# --- data ---------------------------------------------------------------------------------------------------------
def install_data(room: Classroom, source: Path = DATA) -> None:
    """The prepared data, copied where every kernel can read it, and the hook that points kernels at it."""
    for part in DATA_PARTS:
        if not (source / part).is_dir():
            raise ClassroomError(f"{source / part} is missing: run `python3 course.py setup` first")
        shutil.rmtree(room.data / part, ignore_errors=True)
        shutil.copytree(source / part, room.data / part)
    for path in [room.data, *room.data.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from trailblaze import data; "
            f"print(data.install_venv_hook(data.Path({str(room.data / datafiles.TIKTOKEN)!r}), "
            f"data.Path({str(room.data)!r})))")
    run(room.python, "-c", code)


# --- proxy --------------------------------------------------------------------------------------------------------
def proxy_command(room: Classroom) -> Path:
    return room.proxy / "node_modules" / ".bin" / "configurable-http-proxy"


def install_proxy(room: Classroom) -> None:
    node = shutil.which("node")
    if not node:
        raise ClassroomError("Node.js is missing: configurable-http-proxy needs Node >= 20 (nodesource or nvm)")
    major = int(run(node, "--version").stdout.strip().lstrip("v").split(".")[0])
    if major < 20:
        raise ClassroomError(f"Node.js {major} is too old for configurable-http-proxy 5: it needs Node >= 20")
    lock = (RECIPE / "proxy" / "package-lock.json").read_text()
    if proxy_command(room).exists() and (room.proxy / "package-lock.json").exists() \
            and (room.proxy / "package-lock.json").read_text() == lock:
        return
    room.proxy.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(RECIPE / "proxy" / name, room.proxy / name)
    run("npm", "ci", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error", cwd=room.proxy)


# --- exchange, roles ----------------------------------------------------------------------------------------------
def make_exchange(room: Classroom) -> None:
    room.exchange.mkdir(parents=True, exist_ok=True)
    room.exchange.chmod(0o777)  # nbgrader's documented mode: each course folder inside is the instructor's
    write(room.env / "etc" / "jupyter" / "nbgrader_config.py",
          "# The classroom's nbgrader settings for every account (trailblaze.classroom.provision).\n"
          f"c = get_config()  # noqa: F821\nc.Exchange.root = {str(room.exchange)!r}\n"
          f"c.CourseDirectory.course_id = {COURSE_ID!r}\n")


# An offline classroom: JupyterLab neither asks to fetch news nor checks for updates (settings every user inherits).
LAB_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}


def write_roles(room: Classroom) -> None:
    write(room.env / "share" / "jupyter" / "lab" / "settings" / "overrides.json", json.dumps(LAB_OVERRIDES, indent=1))
    student, instructor = room.role(room.students[0]), room.role(room.instructor)
    off = {name: True for name in INSTRUCTOR_LAB}
    write(student / "labconfig" / "page_config.json",
          json.dumps({"disabledExtensions": off, "lockedExtensions": off}, indent=1))
    write(student / "jupyter_server_config.json",
          json.dumps({"ServerApp": {"jpserver_extensions": {name: False for name in INSTRUCTOR_SERVER}}}, indent=1))
    # Under JupyterHub >= 4.1 each server forbids framing (frame-ancestors 'none'), which leaves the formgrader
    # blank inside JupyterLab; the instructor's own server may frame its own pages, and no one else's may.
    write(instructor / "jupyter_server_config.json",
          json.dumps({"ServerApp": {"tornado_settings": {"headers": {
              "Content-Security-Policy": "frame-ancestors 'self'"}}}}, indent=1))
    write(instructor / "nbgrader_config.py",
          "# The instructor's formgrader grades the course in their home, with the course's own settings.\n"
          "c = get_config()  # noqa: F821\n"
          f"load_subconfig('nbgrader_config.py', path={str(room.course.root)!r})  # noqa: F821\n"
          f"c.CourseDirectory.root = {str(room.course.root)!r}\n")
    for folder in (student, instructor, student.parent):
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


# --- users, course ------------------------------------------------------------------------------------------------
def make_users(room: Classroom) -> None:
    for user in room.users:
        try:
            pwd.getpwnam(user)
        except KeyError:
            run("useradd", "--create-home", "--shell", "/bin/bash", user)
        room.home(user).chmod(0o700)  # no one reads another's home: the course, submissions, feedback


def copy_course(room: Classroom, source: Path = REPO) -> None:
    """The course in the instructor's home, theirs: source/, release/, the checks and the grader, the data. An
    existing course is left as it is: it holds the instructor's gradebook and their changes."""
    course = room.course.root
    if course.exists():
        return "kept"
    course.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for part in COURSE_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, course / part, ignore=ignore)
        else:
            shutil.copy2(source / part, course / part)
    for part in DATA_PARTS:
        shutil.copytree(room.data / part, course / "data" / part)
    user = pwd.getpwnam(room.instructor)
    for path in [course, *course.rglob("*")]:
        os.lchown(path, user.pw_uid, user.pw_gid)


# --- hub ----------------------------------------------------------------------------------------------------------
HUB_CONFIG = '''"""The classroom hub (written by trailblaze.classroom.provision: change Classroom, not this file)."""
c = get_config()  # noqa: F821
ENV, INSTRUCTOR = {env!r}, {instructor!r}
ROLES = {{"instructor": {instructor_role!r}, "student": {student_role!r}}}

c.JupyterHub.bind_url = {url!r}
c.JupyterHub.hub_ip, c.JupyterHub.hub_port = "127.0.0.1", {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.JupyterHub.db_url = "sqlite:///{hub}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{hub}/cookie_secret"
c.JupyterHub.pid_file = "{hub}/jupyterhub.pid"

# Real Unix users, each server a process of its own user; a login names one of the class.
c.JupyterHub.spawner_class = "localprocess"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allowed_users = set({users!r})
c.Authenticator.admin_users = {{INSTRUCTOR}}
c.Spawner.cmd = [ENV + "/bin/jupyterhub-singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = c.Spawner.http_timeout = 120


def role_config(spawner):
    """Each role's own Jupyter config: which nbgrader extensions its members see (locked, for students)."""
    return ROLES["instructor" if spawner.user.name == INSTRUCTOR else "student"]


c.Spawner.environment = {{"JUPYTER_CONFIG_PATH": role_config, "PATH": ENV + "/bin:/usr/local/bin:/usr/bin:/bin"}}
if {offline!r}:  # a classroom without internet: transformers fails over at once instead of retrying for 30 s
    c.Spawner.environment.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")

# The course's scripts and tests reach the REST API with this token (read from a root-only file).
c.JupyterHub.services = [{{"name": "course", "api_token": open({token_file!r}).read().strip()}}]
c.JupyterHub.load_roles = [{{"name": "course", "services": ["course"],
                            "scopes": ["admin:users", "admin:servers", "access:servers", "list:users", "read:users"]}}]
'''


def write_hub_config(room: Classroom) -> None:
    room.hub.mkdir(parents=True, exist_ok=True)
    room.hub.chmod(0o700)
    if not room.token_file.exists():
        write(room.token_file, secrets.token_hex(32), 0o600)
    write(room.config, HUB_CONFIG.format(
        env=str(room.env), instructor=room.instructor, instructor_role=str(room.role(room.instructor)),
        student_role=str(room.role(room.students[0])), url=room.url.replace("127.0.0.1", room.ip),
        hub_port=room.port + 1, proxy_port=room.port + 2, proxy=str(proxy_command(room)), hub=str(room.hub),
        password=room.password, offline=room.offline, users=sorted(room.users), token_file=str(room.token_file)), 0o600)


# --- all ----------------------------------------------------------------------------------------------------------
def provision(room: Classroom, say=print) -> dict[str, float]:
    """Every step, in order; returns seconds per step."""
    if os.geteuid() != 0 or sys.platform != "linux":
        raise ClassroomError("setting up a classroom makes Unix users and writes under /opt: run it as root on Linux")
    seconds = {}
    steps = [("environment", lambda: build_env(room, say=say)), ("data", lambda: install_data(room)),
             ("proxy", lambda: install_proxy(room)), ("exchange", lambda: make_exchange(room)),
             ("roles", lambda: write_roles(room)), ("users", lambda: make_users(room)),
             ("course", lambda: copy_course(room)), ("hub", lambda: write_hub_config(room))]
    room.prefix.mkdir(parents=True, exist_ok=True)
    room.prefix.chmod(0o755)
    for name, step in steps:
        start = time.perf_counter()
        how = step()
        seconds[name] = time.perf_counter() - start
        say(f"classroom: {name:<12} {seconds[name]:6.1f} s" + (f"  ({how})" if isinstance(how, str) else ""))
    return seconds
