"""Grades for an LMS: per assignment, a CSV that Canvas's Gradebook import reads and one for Moodle's "Import grades
from CSV", in reports/lms/.

The map from nbgrader's student ids to the LMS's is the instructor's lms_students.csv in the course folder (kept out
of git: it names real people), with a header and these columns, all but the first optional:

    student_id,name,canvas_id,sis_user_id,sis_login_id,section,moodle_username,moodle_idnumber,email
    alice,Alice Liddell,1234,s0001,aliddell,Section 1,aliddell,s0001,alice@example.edu

A student the map does not name is written with their nbgrader id as the login (Canvas's SIS Login ID, Moodle's
username), which is right where nbgrader ids are the university's logins, and listed in the grader's summary.
"""
from __future__ import annotations

import csv
from pathlib import Path

from trailblaze.coursedir import CourseDirectory

COLUMNS = ("student_id", "name", "canvas_id", "sis_user_id", "sis_login_id", "section", "moodle_username",
           "moodle_idnumber", "email")


def read_map(path: Path) -> dict[str, dict[str, str]]:
    """nbgrader id -> that student's LMS identities (lms_students.csv); empty when there is no such file."""
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8-sig") as f:  # a spreadsheet's BOM is not part of the header
        reader = csv.DictReader(f)
        unknown = set(reader.fieldnames or ()) - set(COLUMNS)
        if "student_id" not in (reader.fieldnames or ()) or unknown:
            raise ValueError(f"{path}: the header must have student_id and only these columns: {', '.join(COLUMNS)}"
                             + (f" (unknown: {', '.join(sorted(unknown))})" if unknown else ""))
        return {row["student_id"].strip(): {k: (v or "").strip() for k, v in row.items()} for row in reader}


def identity(student: str, known: dict[str, dict[str, str]]) -> dict[str, str]:
    row = {k: "" for k in COLUMNS} | known.get(student, {})
    row["name"] = row["name"] or student
    row["sis_login_id"] = row["sis_login_id"] or ("" if row["canvas_id"] or row["sis_user_id"] else student)
    row["moodle_username"] = row["moodle_username"] or ("" if row["moodle_idnumber"] else student)
    return row


def canvas_rows(assignment: str, grades: dict, known: dict) -> list[list]:
    """Canvas's Gradebook layout: identity columns, one column per assignment, then a Points Possible row."""
    students = sorted(s for s in grades if assignment in grades[s])
    total = grades[students[0]][assignment][1] if students else 0
    rows = [["Student", "ID", "SIS User ID", "SIS Login ID", "Section", assignment],
            ["Points Possible", "", "", "", "", f"{total:g}"]]
    for s in students:
        who = identity(s, known)
        rows.append([who["name"], who["canvas_id"], who["sis_user_id"], who["sis_login_id"], who["section"],
                     f"{grades[s][assignment][0]:g}"])
    return rows


def moodle_rows(assignment: str, grades: dict, known: dict) -> list[list]:
    """Moodle's CSV import: any column can identify the user (username, ID number or email, chosen on import)."""
    rows = [["Username", "ID number", "Email address", assignment]]
    for s in sorted(s for s in grades if assignment in grades[s]):
        who = identity(s, known)
        rows.append([who["moodle_username"], who["moodle_idnumber"], who["email"], f"{grades[s][assignment][0]:g}"])
    return rows


def write(course: CourseDirectory, assignments: list[str], grades: dict) -> list[str]:
    """Write reports/lms/{canvas,moodle}_<assignment>.csv. Returns the graded students the map does not name."""
    known = read_map(course.lms_students)
    course.lms.mkdir(parents=True, exist_ok=True)
    for assignment in assignments:
        for lms, rows in (("canvas", canvas_rows), ("moodle", moodle_rows)):
            with (course.lms / f"{lms}_{assignment}.csv").open("w", newline="") as f:
                csv.writer(f).writerows(rows(assignment, grades, known))
    return sorted(s for s in grades if s not in known) if known else []
