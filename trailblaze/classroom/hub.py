"""Start and stop a classroom's hub, and call its REST API with the `course` service's token."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from trailblaze.classroom import Classroom


class Hub:
    """The hub of `room`, running as root while this object lives (a context manager)."""

    def __init__(self, room: Classroom, log: Path | None = None):
        self.room, self.log = room, log or room.hub / "jupyterhub.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Hub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout: float = 120) -> "Hub":
        node = Path(shutil.which("node") or "/usr/bin/node").parent
        env = dict(os.environ, PATH=f"{self.room.env / 'bin'}:{node}:/usr/local/bin:/usr/bin:/bin")
        env.pop("JUPYTER_CONFIG_PATH", None)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([str(self.room.python), "-m", "jupyterhub", "-f", str(self.room.config)],
                                            cwd=self.room.hub, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the hub exited ({self.process.returncode}): see {self.log}\n{self.tail()}")
            try:
                self.api("GET", "/")
                return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the hub did not answer within {timeout:.0f} s: see {self.log}\n{self.tail()}")

    def stop(self) -> None:
        """The hub, its proxy and every user's server (the local-process spawner's children)."""
        if self.process and self.process.poll() is None:
            for user in self.room.users:
                try:
                    self.api("DELETE", f"/users/{user}/server")
                except (OSError, urllib.error.URLError):
                    pass
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        for user in self.room.users:  # servers outlive a killed hub: they are in sessions of their own
            subprocess.run(["pkill", "-u", user], capture_output=True)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    @property
    def token(self) -> str:
        return self.room.token_file.read_text().strip()

    def request(self, method: str, url: str, body=None, timeout: float = 30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Authorization": f"token {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as response:
            text = response.read().decode()
            return json.loads(text) if text.strip() else None

    def api(self, method: str, path: str, body=None, timeout: float = 30):
        """The hub's REST API, e.g. api("GET", "/users")."""
        return self.request(method, f"{self.room.url}/hub/api{path}", body, timeout)

    def server_api(self, user: str, path: str, timeout: float = 10):
        """A user's own Jupyter server, through the proxy, e.g. server_api("instructor", "/status")."""
        return self.request("GET", f"{self.room.url}/user/{user}/api{path}", timeout=timeout)

    def spawn(self, user: str, timeout: float = 180) -> None:
        """Start a user's server (as their login would) and wait until it answers."""
        try:
            self.api("POST", f"/users/{user}/server")
        except urllib.error.HTTPError as err:
            if err.code != 400:  # 400: already running
                raise
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.api("GET", f"/users/{user}") or {}).get("server"):
                return
            time.sleep(1)
        raise RuntimeError(f"{user}'s server did not start within {timeout:.0f} s:\n{self.tail()}")
