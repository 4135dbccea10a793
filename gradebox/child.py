"""The boxed side of isolated grading: runs one student's cells, then serves adapter calls as data.

    python -m gradebox.child IN_FD OUT_FD ADAPTERS [UID]

ADAPTERS: the module of adapters to serve, imported before the child says it is ready. UID: started as root inside
the box (by a grader running as root), drop to this uid first, before any import.

Once its imports work, the child says it is ready (so the parent can tell a broken box from a broken notebook).
The parent (gradebox.box) then sends {"op": "load", "assignment", "cells": [[label, source], ...]} and then
{"op": "call", "adapter", "args", "kwargs"} frames (gradebox.wire); each answer is {"ok": true} with a value,
or {"ok": false, "error": [type_name, message, where, shown]} (shown: the message as feedback may show it).
Student output goes to a capped file, never to the protocol. This process is untrusted once student code has run:
the parent believes nothing it says beyond data.
"""
from __future__ import annotations

import importlib
import os
import shutil
import sys


def drop_privileges(uid: int) -> None:
    """setres[ug]id to an unprivileged uid: the kernel then clears every capability, and no_new_privs (set by bwrap)
    keeps setuid programs from giving any back."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if 0 in os.getresuid() or 0 in os.getresgid():
        raise SystemExit("the box could not drop root")


def copy_into_home() -> None:
    """GRADEBOX_HOME_COPIES lines `VARIABLE=host folder`: a writable copy of each folder in the home, VARIABLE set
    to it (tiktoken, say, writes a cache entry the first time it reads a file by a new path)."""
    for line in filter(None, os.environ.pop("GRADEBOX_HOME_COPIES", "").splitlines()):
        variable, source = line.split("=", 1)
        target = os.path.join(os.environ["HOME"], "copies", variable)
        if not os.path.exists(target):
            shutil.copytree(source, target)
        os.environ[variable] = target


def serve(fd_in: int, fd_out: int, adapters_module: str) -> None:
    from gradebox import wire
    from gradebox.student import StudentError, as_student_error, load_sources

    reader, writer = os.fdopen(fd_in, "rb"), os.fdopen(fd_out, "wb")
    copy_into_home()
    adapters = importlib.import_module(adapters_module)
    wire.write_frame(writer, {"ok": True, "ready": True})  # before any student code: the box itself works
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


if __name__ == "__main__":
    if len(sys.argv) > 4:
        drop_privileges(int(sys.argv[4]))
    serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
