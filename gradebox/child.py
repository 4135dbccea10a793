"""The boxed side of isolated grading: runs one student's cells, then serves adapter calls as data.

    python -m gradebox.child IN_FD OUT_FD ADAPTERS MODE [UID]

ADAPTERS: the module of adapters to serve, imported before the child says it is ready. MODE: `warm` (the parent
asks for it only for a box of its own, without a GPU) or `cold`. UID: started as root inside the box (by a grader
running as root), drop to this uid first, before any import.

Once its imports work, the child says it is ready (so the parent can tell a broken box from a broken notebook).
The parent (gradebox.box) then sends {"op": "load", "assignment", "cells": [[label, source], ...]} and then
{"op": "call", "adapter", "args", "kwargs"} frames (gradebox.wire); each answer is {"ok": true} with a value,
or {"ok": false, "error": [type_name, message, where, shown]} (shown: the message as feedback may show it).
Student output goes to a capped file, never to the protocol. This process is untrusted once student code has run:
the parent believes nothing it says beyond data.

Warm, this process never runs student code: it is the box's keeper. Each load forks a worker, a copy of the keeper
as it was before any student code ran, and the keeper relays frames between the parent and it. When the worker dies
(an exit, a signal, a crash), the keeper kills whatever the worker left running in the box, empties the box's
writable places, and answers {"ok": false, "ended": exit code}: the next load costs a fork, not a new box and its
imports. When the worker's processes fill the box (a fork bomb), the keeper kills them all and answers
{"ok": false, "ended": -9, "limit": "processes"}. Cold, the child serves the notebook itself, and the parent
rebuilds the box after a crash.
"""
from __future__ import annotations

import importlib
import os
import resource
import select
import shutil
import signal
import socket
import sys
import time


def drop_privileges(uid: int) -> None:
    """setres[ug]id to an unprivileged uid: the kernel then clears every capability, and no_new_privs (set by bwrap)
    keeps setuid programs from giving any back."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if 0 in os.getresuid() or 0 in os.getresgid():
        raise SystemExit("the box could not drop root")


def limit_processes() -> None:
    """RLIMIT_NPROC from GRADEBOX_PROCESSES, set here, inside the box. Unprivileged, the box is a user namespace of
    the grader's own uid, and the kernel (Linux >= 5.14) counts the limit per user namespace: a fork bomb fills its
    own box. Set on bwrap, outside, it would be checked against every process of that uid, so a bomb in one box
    would stop the next box from starting and the instructor's own server from forking. As root, the child drops
    to a uid of its own (box_uid) after this, and the count is that uid's."""
    processes = int(os.environ.pop("GRADEBOX_PROCESSES", "0"))
    if processes:
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))


def home_copies() -> list[tuple[str, str]]:
    """GRADEBOX_HOME_COPIES lines `VARIABLE=host folder`, as (variable, folder) pairs."""
    return [tuple(line.split("=", 1)) for line in os.environ.pop("GRADEBOX_HOME_COPIES", "").splitlines() if line]


def copy_into_home(copies: list[tuple[str, str]]) -> None:
    """A writable copy of each folder in the home, its variable set to the copy (tiktoken, say, writes a cache entry
    the first time it reads a file by a new path)."""
    for variable, source in copies:
        target = os.path.join(os.environ["HOME"], "copies", variable)
        if not os.path.exists(target):
            shutil.copytree(source, target)
        os.environ[variable] = target


def work(reader, writer, adapters) -> None:
    """Serve one notebook: a load, then calls, until the other side closes."""
    from gradebox import wire
    from gradebox.student import StudentError, as_student_error, load_sources

    impl = None
    while True:
        try:
            message, value = wire.read_frame(reader)
        except EOFError:
            return
        try:
            if message.get("op") == "load":
                impl = load_sources([tuple(c) for c in message["cells"]], message["assignment"], adapters)
                wire.write_frame(writer, {"ok": True}, impl.load_errors)
            elif message.get("op") == "call" and impl is not None:
                args, kwargs = value
                result = impl.call(message["adapter"], *args, **kwargs)
                wire.write_frame(writer, {"ok": True}, result)
            else:
                wire.write_frame(writer, {"ok": False, "error": ["ProtocolError", "load first", ""]})
        except StudentError as err:
            wire.write_frame(writer, {"ok": False, "error": [err.type_name, err.message, err.where, err.shown]})
        except (Exception, SystemExit) as exc:  # SystemExit: sys.exit() inside student code called by an adapter
            err = as_student_error(exc)
            wire.write_frame(writer, {"ok": False, "error": [err.type_name, err.message, err.where, err.shown]})


def alone_in_a_box() -> bool:
    """Inside a box's own PID namespace this process is 2, the child of bwrap's init: only there may the keeper kill
    every process it can signal (kill(-1)), because every one of them is the box's."""
    return os.getpid() == 2 and os.getppid() == 1


def clear_the_box(writable: tuple[str, ...], seconds: float = 5.0) -> None:
    """Every other process of the box killed (a worker's forks, its DataLoader workers), then the writable places
    emptied, as a new box would have them."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid())]
        if not others:
            break
        if time.monotonic() > deadline:
            raise SystemExit("the box could not be cleared")  # the parent sees the box end, and rebuilds it
        time.sleep(0.005)
    for place in writable:
        for name in os.listdir(place):
            path = os.path.join(place, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass


WATCH_EVERY = 0.1  # seconds between two counts of the box's threads while a call runs (a count takes a millisecond)


class BoxFull(Exception):
    """The worker's processes fill the box (Worker.relay); the parent hears it as box.AtTheProcessLimit."""


def tasks_in_the_box() -> int:
    """Every thread of every process of the box, as RLIMIT_NPROC counts them (a worker's torch threads too): the
    keeper runs in the box's own PID namespace (alone_in_a_box), so /proc is the box's own."""
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                count += len(os.listdir(f"/proc/{name}/task"))
            except OSError:  # it ended meanwhile
                pass
    return count


class Worker:
    """A fork of the keeper that serves one load of the notebook over a socket pair."""

    def __init__(self, keeper_streams, adapters, seconds: float = 10.0):
        mine, theirs = socket.socketpair()
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.pid = os.fork()
                break
            except BlockingIOError:  # RLIMIT_NPROC: the processes of a fork bomb (this box's or, as root, the box
                if time.monotonic() > deadline:  # just rebuilt for the same grader) are still being killed
                    raise SystemExit("the box could not start a worker") from None
                time.sleep(0.02)
        if self.pid == 0:  # the worker: nothing of the keeper's connection to the parent stays open here
            try:
                for stream in keeper_streams:
                    stream.close()
                mine.close()
                work(theirs.makefile("rb", buffering=0), theirs.makefile("wb"), adapters)
            finally:
                os._exit(0)
        theirs.close()
        self.socket, self.reader, self.writer = mine, mine.makefile("rb", buffering=0), mine.makefile("wb")

    def relay(self, frame: bytes) -> bytes:
        """The worker's answer to `frame`. Raises BoxFull when, while it waits, the box holds as many
        tasks (processes and their threads) as RLIMIT_NPROC lets it: a fork bomb, stopped now rather than at the
        call's deadline, which it would spend on every CPU the grader has."""
        from gradebox import wire
        self.writer.write(frame)
        self.writer.flush()
        limit = resource.getrlimit(resource.RLIMIT_NPROC)[0]
        while not select.select([self.socket], [], [], WATCH_EVERY)[0]:
            if limit != resource.RLIM_INFINITY and tasks_in_the_box() >= limit:
                raise BoxFull
        return wire.read_raw_frame(self.reader)

    def end(self, grace: float = 1.0) -> int | None:
        """Its exit code (negative: the signal), once it has ended; None when it had not within `grace` seconds and
        the keeper killed it."""
        deadline, code = time.monotonic() + grace, None
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                code = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.005)
        for stream in (self.reader, self.writer, self.socket):
            try:
                stream.close()
            except OSError:
                pass
        return code


def keep_warm(reader, writer, adapters, copies: list[tuple[str, str]]) -> None:
    from gradebox import wire

    writable = (os.environ["HOME"], "/tmp", "/dev/shm")
    worker = None
    while True:
        try:
            frame = wire.read_raw_frame(reader)
        except EOFError:
            return
        if wire.message_of(frame).get("op") == "load":
            if worker is not None:
                worker.end(grace=0)
            clear_the_box(writable)
            copy_into_home(copies)
            worker = Worker((reader, writer), adapters)
        if worker is None:
            wire.write_frame(writer, {"ok": False, "error": ["ProtocolError", "load first", ""]})
            continue
        try:
            answer = worker.relay(frame)
        except BoxFull:
            os.kill(-1, signal.SIGKILL)  # the worker and every process it started: all of the box but init and this
            worker.end(grace=0)
            worker = None
            wire.write_frame(writer, {"ok": False, "ended": -signal.SIGKILL, "limit": "processes"})
            continue
        except (EOFError, OSError, wire.WireError) as err:
            babbled = isinstance(err, wire.WireError)
            code = worker.end()
            worker = None
            wire.write_frame(writer, {"ok": False, "ended": None if babbled else code})
            continue
        writer.write(answer)
        writer.flush()


def serve(fd_in: int, fd_out: int, adapters_module: str, warm: bool) -> None:
    from gradebox import student, wire  # noqa: F401  (before any fork: a worker finds them imported)

    reader, writer = os.fdopen(fd_in, "rb", buffering=0), os.fdopen(fd_out, "wb")
    copies = home_copies()
    copy_into_home(copies)
    adapters = importlib.import_module(adapters_module)
    wire.write_frame(writer, {"ok": True, "ready": True})  # before any student code: the box itself works
    if warm and alone_in_a_box():
        keep_warm(reader, writer, adapters, copies)
    else:
        work(reader, writer, adapters)


if __name__ == "__main__":
    limit_processes()
    if len(sys.argv) > 5:
        drop_privileges(int(sys.argv[5]))
    serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4] == "warm")
