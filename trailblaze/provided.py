"""The cells the course provides in its notebooks, and the README's Colab badges, written from one place.

    python -m trailblaze.provided     rewrites them in source/ and README.md (then `python3 course.py grade` releases)

- `colab`, the first code cell of every notebook: in Colab only, it installs what Colab lacks and downloads the
  files that come with the notebook (05's trainer.py) from the course's repository; elsewhere it does nothing.
- `course_data`, after the imports of every notebook that reads the corpus or GPT-2's files: the code of
  course_tests/provided/course_data.py, which finds the data, or downloads it once, checked by sha256.
A meta-test proves every notebook and the README in step with this module.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat

from course_tests.provided import course_data
from gradebox import notebooks
from trailblaze.coursedir import COURSE, REPO, CourseDirectory

REPOSITORY = "trailblaze-gpt/trailblaze-gpt"  # on GitHub, for Colab: a fork sets its own here and runs this module
BRANCH = "main"
COLAB_LACKS = ("tiktoken",)  # what the notebooks import that Colab's image lacks: installed at the course's pins
NEEDS_DATA = ("course_file", "read_corpus", "gpt2_files", "gpt2_encoding")  # calling one: the course_data cell
PROVIDED = ("colab", "course_data")  # the grade_ids of the cells this module writes
BADGES = ("<!-- Colab badges: written by python -m trailblaze.provided -->", "<!-- end of Colab badges -->")
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def colab_url(course: CourseDirectory, assignment: str) -> str:
    path = course.release_notebook(assignment).relative_to(course.root).as_posix()
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/{path}"


def raw_url(assignment: str, name: str) -> str:
    return f"https://raw.githubusercontent.com/{REPOSITORY}/{BRANCH}/release/{assignment}/{name}"


def pinned(package: str, requirements: Path = REPO / "requirements.txt") -> str:
    """The requirement line that pins `package`, e.g. "tiktoken==0.14.0"."""
    for line in requirements.read_text().splitlines():
        if re.fullmatch(rf"{re.escape(package)}==\S+", line.strip()):
            return line.strip()
    raise LookupError(f"{requirements} does not pin {package}")


def companions(course: CourseDirectory, assignment: str) -> list[str]:
    """The files a student receives beside the notebook (05's trainer.py), as nbgrader releases them."""
    folder = course.source / assignment
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix == ".py")


def imports_of(source: str) -> set[str]:
    """The top-level packages Python source imports, at any depth.

    >>> sorted(imports_of("import torch.nn as nn\nfrom tiktoken import load\ndef f():\n    import json"))
    ['json', 'tiktoken', 'torch']
    """
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def imports(nb) -> set[str]:
    """The top-level packages a notebook's code cells import."""
    return set().union(*(imports_of(notebooks.strip_magics(c.source)) for c in nb.cells if c.cell_type == "code"))


def colab_source(course: CourseDirectory, assignment: str, nb) -> str | None:
    """The colab cell, or None when Colab has all that the notebook needs."""
    missing = [p for p in COLAB_LACKS if p in imports(nb)]
    files = companions(course, assignment)
    if not missing and not files:
        return None
    installs = ", ".join(json.dumps(pinned(p)) for p in missing)
    lines = ["# In Colab only: install what Colab lacks and download the files that come with this notebook. Elsewhere",
             "# (the course's environment, your laptop, grading) this cell does nothing.",
             "import sys",
             "",
             'if "google.colab" in sys.modules:',
             "    import subprocess",
             "",
             f'    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", {installs}], check=True)']
    if files:
        lines[6:6] = ["    import urllib.request"]
        lines += [f'    folder = "{raw_url(assignment, "")}"',
                  f"    for name in {json.dumps(files)}:",
                  "        urllib.request.urlretrieve(folder + name, name)"]
    return "\n".join(lines)


def course_data_source() -> str:
    return Path(course_data.__file__).read_text().rstrip("\n")


def provided_cell(grade_id: str, source: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata.nbgrader = {"grade": False, "grade_id": grade_id, "locked": True, "schema_version": 3,
                              "solution": False, "task": False}
    return cell


def needs_data(nb) -> bool:
    calls = re.compile(r"\b(" + "|".join(NEEDS_DATA) + r")\(")
    return any(calls.search(c.source) for c in nb.cells
               if c.cell_type == "code" and notebooks.grade_id(c) != "course_data")


def wanted(course: CourseDirectory, assignment: str, nb) -> list[tuple[str, str, str]]:
    """(grade_id, source, the grade_id of the cell it follows) of each provided cell this notebook should have."""
    cells = []
    colab = colab_source(course, assignment, nb)
    if colab:
        cells.append(("colab", colab, ""))  # "": before the first code cell
    if needs_data(nb):
        cells.append(("course_data", course_data_source(), "imports"))
    return cells


def with_provided_cells(course: CourseDirectory, assignment: str, nb) -> bool:
    """Put each wanted provided cell in place (kept where it is, source rewritten), and remove the unwanted ones;
    True when something changed."""
    keep = {grade_id for grade_id, _, _ in wanted(course, assignment, nb)}
    unwanted = [c for c in nb.cells if notebooks.grade_id(c) in PROVIDED and notebooks.grade_id(c) not in keep]
    for cell in unwanted:
        nb.cells.remove(cell)
    changed = bool(unwanted)
    for grade_id, source, after in wanted(course, assignment, nb):
        ids = [notebooks.grade_id(c) for c in nb.cells]
        if grade_id in ids:
            cell = nb.cells[ids.index(grade_id)]
            if cell.source != source:
                cell.source, changed = source, True
            continue
        if after:
            at = ids.index(after) + 1
        else:
            at = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
        nb.cells.insert(at, provided_cell(grade_id, source))
        changed = True
    return changed


def badges(course: CourseDirectory) -> str:
    rows = [f"- [![Open {a} in Colab]({BADGE})]({colab_url(course, a)}) `{a}`" for a in course.assignments()]
    return "\n".join([BADGES[0], *rows, BADGES[1]])


def readme_with_badges(readme: str, course: CourseDirectory) -> str:
    start, end = readme.index(BADGES[0]), readme.index(BADGES[1]) + len(BADGES[1])
    return readme[:start] + badges(course) + readme[end:]


def sync(course: CourseDirectory = COURSE, readme: Path = REPO / "README.md") -> list[str]:
    """Rewrite the provided cells of every source notebook and the README's badges; what changed."""
    changed = []
    for assignment in course.assignments():
        path = course.source_notebook(assignment)
        nb = notebooks.read(path)
        if with_provided_cells(course, assignment, nb):
            notebooks.write(nb, path)
            changed.append(str(path.relative_to(course.root)))
    text = readme.read_text()
    if readme_with_badges(text, course) != text:
        readme.write_text(readme_with_badges(text, course))
        changed.append(readme.name)
    return changed


if __name__ == "__main__":
    for name in sync() or ["nothing: every provided cell and badge is current"]:
        print("rewrote", name)
