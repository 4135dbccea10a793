"""Library calls an exercise forbids (the very shortcut it teaches how to build), found in the student's own cell.

A course declares them next to its checks: `forbid(assignment, "softmax_tests", "torch.softmax", ...)`. The grader
reads each exercise's solution cell as code (`ast`, in the trusted process: nothing is run) and names the forbidden
functions it refers to: as an attribute (`F.softmax`, `x.softmax(...)`), an import (`from torch.nn.functional import
softmax as s`, `import tiktoken`) or a getattr with a literal name. What that costs is the course's policy
(`POLICIES`, set in nbgrader_config.py): flagged in the feedback and the instructor's summary, or the cell scores 0.
Code that hides the name (getattr with a computed string, a helper in another cell) is not found: an instructor
reading the flagged and the suspicious cells is the backstop, as with any rule about how code is written.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from gradebox.checks import exercise

POLICIES = ("flag", "zero")  # flag: points kept, the use reported; zero: the cell scores 0


@dataclass(frozen=True)
class Forbidden:
    assignment: str
    grade_id: str            # the grade cell whose exercise forbids it ("softmax_tests")
    names: tuple[str, ...]   # dotted names ("torch.nn.functional.softmax"; a module alone: "tiktoken")

    @property
    def cell(self) -> str:
        return exercise(self.grade_id)


FORBIDDEN: list[Forbidden] = []


def forbid(assignment: str, grade_id: str, *names: str) -> None:
    FORBIDDEN.append(Forbidden(assignment, grade_id, names))


def forbidden_for(assignment: str) -> list[Forbidden]:
    return [f for f in FORBIDDEN if f.assignment == assignment]


def uses(source: str, names: tuple[str, ...]) -> list[str]:
    """The names of `names` that `source` refers to, in their order.

    >>> uses("def softmax(x, dim=-1):\\n    return F.softmax(x, dim)", ("torch.nn.functional.softmax",))
    ['torch.nn.functional.softmax']
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    attributes, globals_used, imported, strings = set(), set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            attributes.add(node.attr)
        elif isinstance(node, ast.Name):
            globals_used.add(node.id)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.update(f"{node.module or ''}.{alias.name}" for alias in node.names)
            imported.add(node.module or "")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" \
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
            strings.add(node.args[1].value)
    found = []
    for name in names:
        last = name.rsplit(".", 1)[-1]
        if "." not in name:  # a module: importing it, or using the notebook's import of it
            hit = name in globals_used or any(m == name or m.startswith(name + ".") for m in imported)
        else:
            hit = last in attributes or last in strings or any(m.rsplit(".", 1)[-1] == last for m in imported)
        if hit:
            found.append(name)
    return found


def found_in(assignment: str, cells: list[tuple[str, str]]) -> dict[str, list[str]]:
    """grade_id -> the forbidden names its exercise's cell refers to (only grade cells with some)."""
    sources = {}
    for label, source in cells:
        sources.setdefault(label, []).append(source)
    found = {}
    for rule in forbidden_for(assignment):
        names = uses("\n".join(sources.get(rule.cell, [])), rule.names)
        if names:
            found[rule.grade_id] = names
    return found


def apply_policy(graded: dict, names: list[str], policy: str) -> dict:
    """A grade cell's {"earned", "total", "report"} with a forbidden use reported, and priced by `policy`."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy for forbidden calls {policy!r}: one of {POLICIES}")
    used = ", ".join(names)
    if policy == "zero":
        return {**graded, "earned": 0.0,
                "report": f"{graded['report']}\nFORBIDDEN  this exercise forbids {used}, which your code uses: the "
                          "cell scores 0 (see the exercise's instructions)"}
    return {**graded, "report": f"{graded['report']}\nFLAGGED  this exercise forbids {used}, which your code uses: "
                                "your instructor will review it (see the exercise's instructions)"}
