"""The boxed side of isolated grading: runs one student's cells, then serves adapter calls as data.

    python -m course_tests.child IN_FD OUT_FD [UID]

UID: started as root inside the box (by a grader running as root), drop to this uid first, before any import.

Once its imports work, the child says it is ready (so the parent can tell a broken box from a broken notebook).
The parent (course_tests.boxed) then sends {"op": "load", "assignment", "cells": [[label, source], ...]} and then
{"op": "call", "adapter", "args", "kwargs"} frames (course_tests.wire); each answer is {"ok": true} with a value,
or {"ok": false, "error": [type_name, message, where]}. Student output goes to a capped file, never to the
protocol. This process is untrusted once student code has run: the parent believes nothing it says beyond data.
"""
from __future__ import annotations

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


def serve(fd_in: int, fd_out: int) -> None:
    from course_tests import wire
    from course_tests.implementation import StudentError, as_student_error, load_sources

    reader, writer = os.fdopen(fd_in, "rb"), os.fdopen(fd_out, "wb")
    cache, source = os.environ.get("TIKTOKEN_CACHE_DIR"), os.environ.get("TRAILBLAZE_TIKTOKEN_SOURCE")
    if cache and source and not os.path.exists(cache):  # a writable copy: tiktoken adds entries as it reads
        shutil.copytree(source, cache)
    wire.write_frame(writer, {"ok": True, "ready": True})  # before any student code: the box itself works
    impl = None
    while True:
        try:
            message, value = wire.read_frame(reader)
        except EOFError:
            return
        try:
            if message.get("op") == "load":
                impl = load_sources([tuple(c) for c in message["cells"]], message["assignment"])
                wire.write_frame(writer, {"ok": True}, impl.load_errors)
            elif message.get("op") == "call" and impl is not None:
                args, kwargs = value
                result = impl.call(message["adapter"], *args, **kwargs)
                wire.write_frame(writer, {"ok": True}, result)
            else:
                wire.write_frame(writer, {"ok": False, "error": ["ProtocolError", "load first", ""]})
        except StudentError as err:
            wire.write_frame(writer, {"ok": False, "error": [err.type_name, err.message, err.where]})
        except (Exception, SystemExit) as exc:  # SystemExit: sys.exit() inside student code called by an adapter
            err = as_student_error(exc)
            wire.write_frame(writer, {"ok": False, "error": [err.type_name, err.message, err.where]})


if __name__ == "__main__":
    if len(sys.argv) > 3:
        drop_privileges(int(sys.argv[3]))
    serve(int(sys.argv[1]), int(sys.argv[2]))
