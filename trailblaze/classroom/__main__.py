"""A demo classroom on this host: `python3 course.py classroom [--port N] [--ip ADDRESS] [--password WORD]`, as root.

It sets up what the course's classroom test sets up (trailblaze.classroom.provision), releases 01_setup and
03_attention as the instructor, starts the hub and prints the URL and the logins. Ctrl-C stops the hub; everything
stays in place, and running it again keeps the instructor's course (their gradebook and grades) as it is.
"""
from __future__ import annotations

import argparse
import sys
import time

from trailblaze import data
from trailblaze.classroom import Classroom, accounts
from trailblaze.classroom.hub import Hub
from trailblaze.classroom.provision import ClassroomError, provision

DEMO_ASSIGNMENTS = ["01_setup", "03_attention"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=Classroom.port)
    parser.add_argument("--ip", default=Classroom.ip, help="0.0.0.0 to serve other machines (default: %(default)s)")
    parser.add_argument("--password", default=Classroom.password, help="the demo logins' shared password")
    parser.add_argument("--offline", action="store_true", help="this host has no internet (kernels do not try "
                                                              "the Hugging Face hub)")
    args = parser.parse_args(argv)
    room = Classroom(port=args.port, ip=args.ip, password=args.password, offline=args.offline)
    data.use_offline_data()
    try:
        provision(room)
        accounts.release(room, DEMO_ASSIGNMENTS)
    except ClassroomError as err:
        sys.exit(f"the classroom could not be set up: {err}")
    with Hub(room) as hub:
        print(f"\nThe classroom is up: {room.url}/hub/login  (hub log: {hub.log})\n"
              f"  instructor: {room.instructor}   students: {', '.join(room.students)}   password: {room.password}\n"
              f"  released: {', '.join(DEMO_ASSIGNMENTS)} (students: Nbgrader > Assignment List)\n"
              f"  the instructor grades in a terminal on the hub: cd ~/course && nbgrader collect 01_setup && "
              f"python -m trailblaze.grader --assignment 01_setup && nbgrader release_feedback 01_setup\n"
              f"  formgrader: {room.url}/user/{room.instructor}/formgrader\n"
              "Ctrl-C stops the hub.", flush=True)
        try:
            while hub.process.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
