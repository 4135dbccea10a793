"""Stage 7: what the instructor learns from a graded class, in reports/class/: one HTML page that opens offline
(index.html, plots inline), the same data as report.json, and checks.csv, misconceptions.csv, similarity.csv.

Per assignment: the score distribution; each grade cell's and each check's pass rate; the known mistakes the class
made (a notebook failing exactly the checks a planted bug fails: trailblaze.misconceptions);
the most common whole-notebook failure patterns, each with the planted bug it equals or most resembles; similar
submissions (trailblaze.similarity); and what grading cost per notebook (time, timeouts, crashes, grader faults,
refused submissions). Every student-chosen string (ids, code) is escaped on the page.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import statistics
from collections import Counter, defaultdict
from dataclasses import asdict

from gradebox import notebooks
from gradebox.box import CRASH_SAYS, TIMEOUT_SAYS
from gradebox.checks import checks_for
from gradebox.runner import failed_in
from trailblaze import misconceptions, similarity
from trailblaze.coursedir import CourseDirectory
from trailblaze.stages.store import ResultStore

PATTERNS = 8  # the most common failure patterns shown per assignment
PAIRS = 40  # the most similar pairs shown per assignment (similarity.csv lists all)


def failures(result, assignment: str) -> dict[str, list[str]]:
    """grade_id -> the checks failing in a stored result."""
    return {gid: failed_in(g["report"], checks_for(assignment, gid)) for gid, g in result.grades.items()}


def summarize(course: CourseDirectory, assignment: str, grades: dict, refused: dict | None = None,
              faults: dict | None = None) -> dict:
    """Everything the report says about one assignment, as plain data (report.json holds a list of these)."""
    store, refused, faults = ResultStore(course), refused or {}, faults or {}
    results = {s: r for s in store.students(assignment) if (r := store.load(assignment, s)) is not None}
    students = sorted(s for s in results if assignment in grades.get(s, {}))
    checks = checks_for(assignment)
    full = next((grades[s][assignment][1] for s in students), sum(c.points for c in checks))
    failed = {s: failures(results[s], assignment) for s in students}
    scores = [grades[s][assignment][0] for s in students]

    cells = []
    for gid in dict.fromkeys(c.grade_id for c in checks):
        earned = [results[s].grades[gid]["earned"] for s in students if gid in results[s].grades]
        cell_checks = checks_for(assignment, gid)
        cells.append({
            "grade_id": gid, "points": sum(c.points for c in cell_checks),
            "mean": round(statistics.fmean(earned), 2) if earned else None,
            "full_marks": sum(e == sum(c.points for c in cell_checks) for e in earned),
            "checks": [{"name": c.name, "title": c.title, "of": len(earned),
                        "passed": sum(c.name not in failed[s].get(gid, []) for s in students if gid in failed[s])}
                       for c in cell_checks]})

    named = defaultdict(list)  # the bugs one failure pattern of a cell could be (often one) -> students
    for s in students:
        for found in misconceptions.named(assignment, results[s].grades).values():
            named[tuple(found)].append(s)
    mistakes = [{"bugs": [sig.bug for sig in found], "cell": ", ".join(dict.fromkeys(sig.cell for sig in found)),
                 "whys": [sig.why for sig in found],
                 "students": sorted(who)} for found, who in sorted(named.items(), key=lambda kv: -len(kv[1]))]

    everything = {c.name for c in checks}
    whole = {s: frozenset(n for names in failed[s].values() for n in names) for s in students}
    common = []
    for pattern, count in Counter(whole.values()).most_common():
        if not pattern or len(common) == PATTERNS:
            continue
        resemblance, bugs = misconceptions.closest(assignment, set(pattern))
        common.append({"failed": sorted(pattern), "count": count, "every_check": pattern == everything,
                       "students": sorted(s for s in students if whole[s] == pattern),
                       "resembles": [{"bug": b.bug, "why": b.why} for b in bugs],
                       "resemblance": round(resemblance, 2)})

    reports = {s: "\n".join(g["report"] for g in results[s].grades.values()) for s in students}
    seconds = {s: results[s].seconds for s in students}
    cost = {"notebooks": len(students), "seconds": round(sum(seconds.values()), 1),
            "mean_seconds": round(statistics.fmean(seconds.values()), 2) if seconds else None,
            "slowest": max(seconds, key=seconds.get) if seconds else None,
            "slowest_seconds": max(seconds.values(), default=None),
            "timeouts": sorted(s for s in students if any(t in reports[s] for t in TIMEOUT_SAYS)),
            "crashes": sorted(s for s in students if any(c in reports[s] for c in CRASH_SAYS)),
            "load_errors": sorted(s for s in students if results[s].load_errors),
            "faults": sorted(s for (s, a) in faults if a == assignment),
            "refused": [{"student": s, "why": why} for (s, a), why in sorted(refused.items()) if a == assignment]}

    codes = {s: code for s in students if (code := _own_code(course, s, assignment)) is not None}
    release = course.release_notebook(assignment)
    if codes and release.exists():
        codes[similarity.SOLUTION] = similarity.own_code(notebooks.read(course.source_notebook(assignment)))
        similar = [asdict(p) for p in similarity.similar_pairs(codes, similarity.own_code(notebooks.read(release)))]
    else:
        similar = []

    return {"assignment": assignment, "points": full, "students": students, "scores": dict(zip(students, scores)),
            "stats": _stats(scores), "cells": cells, "misconceptions": mistakes, "patterns": common,
            "similar": similar, "cost": cost}


def _own_code(course: CourseDirectory, student: str, assignment: str) -> str | None:
    """What the student wrote, from nbgrader's graded copy (or the submission, where nothing was recorded);
    notebooks.read opens plain files only (a submission may be a link or a FIFO)."""
    for path in (course.autograded_notebook(student, assignment), course.submitted_notebook(student, assignment)):
        try:
            return similarity.own_code(notebooks.read(path))
        except notebooks.NotebookError:
            continue
    return None


def _stats(scores: list[float]) -> dict:
    if not scores:
        return {}
    return {"min": min(scores), "median": statistics.median(scores), "mean": round(statistics.fmean(scores), 2),
            "max": max(scores)}


def write(course: CourseDirectory, assignments: list[str], grades: dict, refused: dict | None = None,
          faults: dict | None = None) -> list[dict]:
    """Summarize every assignment and write reports/class/. Returns the summaries."""
    summaries = [summarize(course, a, grades, refused, faults) for a in assignments]
    folder = course.class_report.parent
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(summaries, indent=1))
    _csv(folder / "checks.csv", ["assignment", "grade_id", "check", "title", "passed", "graded"],
         [[s["assignment"], c["grade_id"], k["name"], k["title"], k["passed"], k["of"]]
          for s in summaries for c in s["cells"] for k in c["checks"]])
    _csv(folder / "misconceptions.csv", ["assignment", "bugs", "exercise", "why", "count", "students"],
         [[s["assignment"], " ".join(m["bugs"]), m["cell"], "; or ".join(m["whys"]), len(m["students"]),
           " ".join(m["students"])] for s in summaries for m in s["misconceptions"]])
    _csv(folder / "similarity.csv", ["assignment", "a", "b", "similarity"],
         [[s["assignment"], p["a"], p["b"], p["similarity"]] for s in summaries for p in s["similar"]])
    course.class_report.write_text(page(summaries))
    return summaries


def _csv(path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


# --- the page ---------------------------------------------------------------------------------------------------
e = html.escape


def _plot(draw) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 2.6), dpi=80)
    draw(ax)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _scores_plot(s: dict) -> str:
    def draw(ax):
        ax.hist(list(s["scores"].values()), bins=min(20, max(5, int(s["points"]) + 1)), range=(0, s["points"]),
                color="#4a7")
        ax.set_xlabel(f"score (of {s['points']:g})")
        ax.set_ylabel("students")
    return _plot(draw)


def _checks_plot(s: dict) -> str:
    rows = [(k["name"], k["passed"] / k["of"] if k["of"] else 0) for c in s["cells"] for k in c["checks"]]

    def draw(ax):
        numbers = range(1, len(rows) + 1)
        ax.bar(numbers, [r for _, r in rows], color="#47a")
        ax.set_xticks(list(numbers))
        ax.set_ylim(0, 1)
        ax.set_ylabel("pass rate")
        ax.set_xlabel("check (its number in the table below)")
    return _plot(draw)


def _students(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(e(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def section(s: dict) -> str:
    out = [f'<h2 id="{e(s["assignment"])}">{e(s["assignment"])}</h2>']
    st = s["stats"]
    out.append(f"<p>{len(s['students'])} graded notebooks, {s['points']:g} points"
               + (f": min {st['min']:g}, median {st['median']:g}, mean {st['mean']:g}, max {st['max']:g}</p>"
                  if st else ".</p>"))
    if s["students"]:
        out.append(_scores_plot(s) + _checks_plot(s))
    out.append("<h3>Exercises and checks</h3><table><tr><th>#</th><th>grade cell / check</th><th>passed</th>"
               "<th>rate</th></tr>")
    number = 0
    for c in s["cells"]:
        mean = "" if c["mean"] is None else f" (mean {c['mean']:g} of {c['points']:g}, full marks: {c['full_marks']})"
        out.append(f'<tr class="cell"><td colspan="4">{e(c["grade_id"])}{e(mean)}</td></tr>')
        for k in c["checks"]:
            number += 1
            rate = f"{k['passed'] / k['of']:.0%}" if k["of"] else "-"
            out.append(f"<tr><td>{number}</td><td>{e(k['name'])}<br><small>{e(k['title'])}</small></td>"
                       f"<td>{k['passed']} of {k['of']}</td><td>{rate}</td></tr>")
    out.append("</table><h3>Known mistakes</h3>")
    if s["misconceptions"]:
        out.append("<table><tr><th>students</th><th>exercise</th><th>the mistake (planted bug)</th><th>who</th></tr>")
        out += [f"<tr><td>{len(m['students'])}</td><td>{e(m['cell'])}</td><td>"
                + "; or ".join(f"{e(why)} <small>({e(bug)})</small>" for bug, why in zip(m["bugs"], m["whys"]))
                + f"</td><td>{_students(m['students'])}</td></tr>" for m in s["misconceptions"]]
        out.append("</table>")
    else:
        out.append("<p>No grade cell fails exactly the checks of a planted bug.</p>")
    out.append("<h3>Most common failure patterns</h3>")
    if s["patterns"]:
        out.append("<table><tr><th>students</th><th>failing checks</th><th>resembles</th></tr>")
        for p in s["patterns"]:
            failing = "every check (nothing done?)" if p["every_check"] else ", ".join(p["failed"])
            like = "; ".join(f"{e(b['why'])} <small>({e(b['bug'])})</small>" for b in p["resembles"])
            like = (("exactly: " if p["resemblance"] == 1 else f"{p['resemblance']:.0%} alike: ") + like) if like \
                else "no planted bug"
            out.append(f"<tr><td>{p['count']}<br><small>{_students(p['students'], 6)}</small></td>"
                       f"<td>{e(failing)}</td><td>{like}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>Every graded notebook passes every check.</p>")
    out.append(f"<h3>Similar submissions (each shares at least {similarity.THRESHOLD:.0%} of its own code with the "
               "other; provided code and the release's lines left out)</h3>")
    if len(s["similar"]) > PAIRS:
        out.append(f"<p>{len(s['similar'])} pairs; the {PAIRS} most similar are shown, similarity.csv lists all.</p>")
    if s["similar"]:
        for p in s["similar"][:PAIRS]:
            out.append(f"<details><summary>{e(p['a'])} and {e(p['b'])}: {p['similarity']:.0%}</summary>"
                       f'<div class="pair"><pre>{e(chr(10).join(p["lines_a"]))}</pre>'
                       f'<pre>{e(chr(10).join(p["lines_b"]))}</pre></div></details>')
    else:
        out.append("<p>No pair above the threshold.</p>")
    c = s["cost"]
    out.append("<h3>Grading cost</h3><ul>")
    if c["notebooks"]:
        out.append(f"<li>{c['notebooks']} notebooks, {c['seconds']:g} s in boxes, {c['mean_seconds']:g} s each on "
                   f"average; the slowest: {e(c['slowest'])} ({c['slowest_seconds']:g} s)</li>")
    for key, label in (("timeouts", "stopped at a time limit"), ("crashes", "their process died or exited"),
                       ("load_errors", "a cell raised while loading"), ("faults", "grader faults (rerun to retry)")):
        out.append(f"<li>{label}: {len(c[key])}" + (f" ({_students(c[key])})" if c[key] else "") + "</li>")
    out.append(f"<li>refused, unopened: {len(c['refused'])}</li>")
    out += [f"<li>{e(r['student'])}: {e(r['why'])}</li>" for r in c["refused"]]
    out.append("</ul>")
    return "\n".join(out)


STYLE = """body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;vertical-align:top;
text-align:left}tr.cell td{background:#eef}small{color:#666}.pair{display:flex;gap:1em}
.pair pre{flex:1;background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:85%}"""


def page(summaries: list[dict]) -> str:
    links = " · ".join(f'<a href="#{e(s["assignment"])}">{e(s["assignment"])}</a>' for s in summaries)
    body = "\n".join(section(s) for s in summaries)
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" '
            f"content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\"><title>Class report</title>"
            f"<style>{STYLE}</style></head><body><h1>Class report</h1><p>{links}</p>{body}</body></html>\n")
