"""Benchmark: where the test suite's time goes, worker by worker, from a timeline the suite writes.

    TRAILBLAZE_TIMELINE=/tmp/timeline.jsonl python3 course.py test      (or any pytest run of course_tests)
    .venv/bin/python benchmarks/suite.py /tmp/timeline.jsonl

Prints the whole run's span and CPU seconds, then, per pytest-xdist worker, when it started and finished its first and
last test, how long its tests kept it busy (wall and CPU, children included), and its longest test groups (an
xdist_group, or else a file) with their CPU seconds; then the groups that cost the most CPU in all. A worker that
finishes long before the others shows work that could move. Figures only; nothing here is a test.
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict


def group_of(test: str) -> str:
    return test.split("@", 1)[1] if "@" in test else test.split("::", 1)[0]


def main(path: str) -> None:
    rows = [json.loads(line) for line in open(path)]
    begin, end = min(r["start"] for r in rows), max(r["stop"] for r in rows)
    by_worker = defaultdict(list)
    for r in rows:
        by_worker[r["worker"]].append(r)
    cpu = defaultdict(float)
    for r in rows:
        cpu[group_of(r["test"])] += r.get("cpu", 0.0)
    print(f"whole run: {end - begin:7.1f} s from the first test's start to the last test's end, "
          f"{len(by_worker)} workers, {sum(cpu.values()):7.1f} CPU seconds")
    for worker, own in sorted(by_worker.items()):
        busy = sum(r["stop"] - r["start"] for r in own)
        groups = defaultdict(float)
        for r in own:
            groups[group_of(r["test"])] += r["stop"] - r["start"]
        first, last = min(r["start"] for r in own) - begin, max(r["stop"] for r in own) - begin
        print(f"{worker:>5}: {first:6.1f} s to {last:6.1f} s, busy {busy:6.1f} s, "
              f"CPU {sum(r.get('cpu', 0.0) for r in own):6.1f} s, {len({r['test'] for r in own})} tests")
        for name, seconds in sorted(groups.items(), key=lambda kv: -kv[1])[:5]:
            print(f"         {seconds:6.1f} s  (CPU {cpu[name]:6.1f} s)  {name}")
    print("most CPU:")
    for name, seconds in sorted(cpu.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {seconds:6.1f} s  {name}")


if __name__ == "__main__":
    main(sys.argv[1])
