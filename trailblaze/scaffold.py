"""A new assignment's parts, from templates: `python3 course.py new NN_name [--title "..."]`.

It writes, and refuses to overwrite:
    source/NN_name/name.ipynb            a notebook with one exercise (`scale`), its visible test and its grade cell
    course_tests/checks/name.py          the exercise's check
    course_tests/adapters/name.py        the adapter the check calls
    course_tests/mutants/NN_name.toml    one planted bug that the check catches
Then `python3 course.py grade` releases it, and `python3 course.py test` proves its parts fit together. Replace
the example exercise with your own, one exercise and one grade cell at a time.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from string import Template

import nbformat

from course_tests import PACKAGE, short_name
from gradebox import notebooks
from trailblaze.coursedir import COURSE, CourseDirectory
from trailblaze.options import limits_for_students

TEMPLATES = Path(__file__).resolve().parent / "templates"
ID = re.compile(r"^\d\d_[a-z][a-z0-9_]*$")


def nbgrader_cell(kind: str, source: str, grade_id: str, points: float = 0, tags: tuple[str, ...] = ()):
    meta = {"grade": kind == "test", "grade_id": grade_id, "locked": kind != "solution", "schema_version": 3,
            "solution": kind == "solution", "task": False}
    if kind == "test":
        meta["points"] = points
    cell = nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta})
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def notebook(assignment: str, title: str):
    md = nbformat.v4.new_markdown_cell
    cells = [
        md(f"# {title}\n\nWhat this assignment teaches, in two or three sentences. (Replace this text.)\n\n"
           + limits_for_students()),
        nbgrader_cell("provided", "import torch", "imports"),
        md("## Exercise: scale a tensor\n\n`scale(x, factor)` returns a new tensor: every entry of `x` multiplied by "
           "`factor`, with `x`'s shape, dtype and device."),
        nbgrader_cell("solution", 'def scale(x: torch.Tensor, factor: float) -> torch.Tensor:\n'
                                  '    """Every entry of x times factor."""\n    ### BEGIN SOLUTION\n'
                                  '    return x * factor\n    ### END SOLUTION', "scale"),
        nbgrader_cell("visible", 'x = torch.tensor([1.0, 2.0])\nassert torch.equal(scale(x, 3.0), torch.tensor([3.0, '
                                 '6.0])), f"scale([1., 2.], 3.0) should be [3., 6.], got {scale(x, 3.0)}"\n'
                                 'print("scale: visible checks passed")', "scale_visible",
                      tags=(notebooks.VISIBLE_TEST_TAG,)),
        nbgrader_cell("test", "# Hidden checks for scale run here when your notebook is graded.\n"
                              "### BEGIN HIDDEN TESTS\nfrom course_tests.grading import grade_cell\n"
                              f'grade_cell("{assignment}", "scale_tests", globals())\n### END HIDDEN TESTS',
                      "scale_tests", points=1),
    ]
    return nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})


def scaffold(assignment: str, title: str, course: CourseDirectory = COURSE, package: Path | None = None) -> list[Path]:
    """Write the new assignment's parts; `package`: where course_tests is (a scratch copy in tests)."""
    if not ID.match(assignment):
        raise ValueError(f"{assignment!r}: an assignment id is two digits, an underscore and a lower-case name "
                         "(06_finetuning, say)")
    package, short = package or PACKAGE, short_name(assignment)
    targets = {course.source / assignment / f"{short}.ipynb": None,
               package / "checks" / f"{short}.py": "checks.py.tmpl",
               package / "adapters" / f"{short}.py": "adapters.py.tmpl",
               package / "mutants" / f"{assignment}.toml": "mutants.toml.tmpl"}
    existing = [str(p) for p in [course.source / assignment, *targets] if p.exists()]
    if existing:
        raise FileExistsError(f"{assignment} already has parts, nothing was written: {', '.join(existing)}")
    for path, template in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if template is None:
            nbformat.validate(nb := notebook(assignment, title))
            notebooks.write(nb, path)
        else:
            text = Template((TEMPLATES / template).read_text()).substitute(assignment=assignment, short=short)
            path.write_text(text)
    return list(targets)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignment", help="the new assignment's id: NN_name, e.g. 06_finetuning")
    parser.add_argument("--title", help="the notebook's title (default: from the id)")
    args = parser.parse_args(argv)
    title = args.title or f"Assignment {int(args.assignment[:2])} · {args.assignment[3:].replace('_', ' ').title()}"
    try:
        written = scaffold(args.assignment, title)
    except (ValueError, FileExistsError) as err:
        sys.exit(f"new assignment: {err}")
    print("wrote:\n" + "\n".join(f"  {p.relative_to(COURSE.root)}" for p in written))
    print("next: replace the example exercise, then `python3 course.py grade` (releases it) and "
          "`python3 course.py test`; add it to the README's assignments table.")


if __name__ == "__main__":
    main()
