"""nbgrader extensions used by nbgrader_config.py, and the environment its notebook kernels need."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import bleach
import jinja2
import nbformat
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbconvert.preprocessors.sanitize import SanitizeHTML
from nbgrader.preprocessors import NbGraderPreprocessor, OverwriteCells
from traitlets import Enum

from course_tests.datafiles import DATA_VARIABLE
from gradebox import notebooks
from gradebox.forbidden import POLICIES, apply_policy
from trailblaze import misconceptions
from trailblaze.coursedir import DATA, REPO, TIKTOKEN_CACHE, CourseDirectory
from trailblaze.options import GradingOptions
from trailblaze.stages.record import stored_or_graded


def kernel_environment() -> dict[str, str]:
    """What nbgrader and its kernels need: this interpreter's scripts on PATH (nbgrader runs `alembic`), course_tests
    importable by the hidden tests, tiktoken offline, no plot windows."""
    def prepend(entry: str, variable: str) -> str:
        return os.pathsep.join(p for p in (entry, os.environ.get(variable, "")) if p)

    return {"PATH": prepend(str(Path(sys.executable).parent), "PATH"),
            "PYTHONPATH": prepend(str(REPO), "PYTHONPATH"),
            "TIKTOKEN_CACHE_DIR": os.environ.get("TIKTOKEN_CACHE_DIR", str(TIKTOKEN_CACHE)),
            DATA_VARIABLE: os.environ.get(DATA_VARIABLE, str(DATA)),
            "MPLBACKEND": os.environ.get("MPLBACKEND", "Agg")}


class BoxedGrades(NbGraderPreprocessor):
    """Grades in place of nbgrader's Execute: the notebook's code runs in a box, the course's checks judge it.

    Each test cell gets two outputs: its PASS/FAIL report (stdout) and its points as an execute_result, which
    nbgrader reads as the cell's partial credit. No cell of the notebook is executed here. The result comes from
    reports/results/ when `python -m trailblaze.grader` prepared it for this exact notebook; otherwise the notebook
    is graded now, one at a time (a plain `nbgrader autograde` from the formgrader lands here). The options (limits,
    devices, unboxed) come from the grader through TRAILBLAZE_GRADING, so both compute the same result keys.
    A cell that uses a library call its exercise forbids (gradebox.forbidden) is priced by `forbidden_calls`; a cell
    that fails exactly the checks a planted bug of its exercise fails is told that known mistake
    (trailblaze.misconceptions).
    """

    forbidden_calls = Enum(POLICIES, default_value="flag", help="What a forbidden library call costs its cell: "
                           "'flag' (points kept, the use named in the feedback and the grader's summary) or 'zero' "
                           "(the cell scores 0)").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        course = CourseDirectory(Path(info["db_url"].removeprefix("sqlite:///")).parent)
        options = GradingOptions.from_environment()
        result = stored_or_graded(course, nb, info["student"], info["assignment"], options, say=self.log.warning)
        mistakes = misconceptions.named(info["assignment"], result.grades)
        for count, cell in enumerate((c for c in nb.cells if notebooks.kind(c) == "test"), start=1):
            graded = result.grades.get(notebooks.grade_id(cell))
            if graded is None:  # a grade cell the checks do not know: the course is inconsistent, not the student
                raise RuntimeError(f"no checks are registered for grade cell {notebooks.grade_id(cell)!r}")
            if notebooks.grade_id(cell) in result.forbidden:
                graded = apply_policy(graded, result.forbidden[notebooks.grade_id(cell)], self.forbidden_calls)
            likely = misconceptions.likely_line(mistakes.get(notebooks.grade_id(cell), []))
            if likely:
                graded = {**graded, "report": f"{graded['report']}\n{likely}"}
            cell.execution_count = count
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=graded["report"] + "\n"),
                            nbformat.v4.new_output("execute_result", data={"text/plain": f"{graded['earned']:g}"},
                                                   execution_count=count)]
        return nb, resources


class SkipDemoCells(NbGraderPreprocessor):
    """Demonstration cells (tag `demo`: downloads, plots, training runs) are not run when grading.

    Their code stays visible in the graded notebook, commented out. Notebooks must not define anything a test needs
    in a demo cell; the course's meta-tests check that grading the solutions still gives full marks.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and notebooks.kind(cell) == "demo":
            body = "\n".join(f"# {line}" if line else "#" for line in cell.source.splitlines())
            cell.source = "# [demo cell: not run when grading]\n" + body
        return cell, resources


class DemoteStderr(NbGraderPreprocessor):
    """nbgrader scores a test cell 0 when it wrote anything to stderr; a warning or a progress bar is not a failure.

    Runs after execution: stderr streams become stdout streams marked `[stderr]`, so feedback still shows them.
    Exceptions are `error` outputs, not streams, and still score 0.
    """

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                output["name"] = "stdout"
                output["text"] = "".join(f"[stderr] {line}" for line in output["text"].splitlines(keepends=True))
        return cell, resources


class RestoreMissingCells(OverwriteCells):
    """OverwriteCells whose `add_missing_cells` also works when a read-only cell precedes the deleted one, and when
    a student duplicated a cell.

    nbgrader 0.9.6 puts a deleted grade cell back after "the previous grade or solution cell" and raises KeyError
    when the previous cell is a locked, ungraded one (our visible tests): the student then scores 0 for the whole
    notebook. Here the cell goes after the nearest earlier cell of the source that the submission still has.
    Its add_missing_task_cells also raises KeyError on the empty nbgrader metadata DeduplicateIds leaves on every
    duplicate of a grade id; those duplicates become plain cells first.
    """

    def add_missing_task_cells(self, nb, resources):
        for cell in nb.cells:
            if cell.get("metadata", {}).get("nbgrader") == {}:
                del cell.metadata["nbgrader"]
        return super().add_missing_task_cells(nb, resources)

    def add_missing_grade_cells(self, nb, resources):
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source_cells = {cell.name: cell for cell in source_nb.source_cells}
        order = list(source_cells)
        solutions = {cell.name for cell in source_nb.solution_cells}
        for grade_cell in sorted(source_nb.grade_cells, key=lambda c: order.index(c.name)):
            present = {notebooks.grade_id(c): i for i, c in enumerate(nb.cells) if notebooks.grade_id(c)}
            if grade_cell.name in present:
                continue
            self.log.warning(f"Missing grade cell {grade_cell.name} encountered, adding to notebook")
            restored = nbformat.from_dict(self.missing_cell_transform(
                source_cells[grade_cell.name], grade_cell.max_score, is_solution=grade_cell.name in solutions))
            earlier = [present[name] for name in order[:order.index(grade_cell.name)] if name in present]
            nb.cells.insert(max(earlier) + 1 if earlier else 0, restored)
        return nb, resources


# --- student HTML is inert wherever nbgrader renders a notebook (feedback pages, the formgrader) ------------------
# What rendered markdown may hold: the tags markdown itself writes, and links and images without scripts.
MARKDOWN_TAGS = frozenset({"a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em",
                           "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "span",
                           "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul"})


def _markdown_attribute(tag: str, name: str, value: str) -> bool:
    if name in ("class", "id", "title", "align"):
        return True
    if tag == "a" and name == "href":
        return True  # bleach drops hrefs whose protocol is not in `protocols` (javascript:, data:, ...)
    if tag == "img" and name == "src":
        return value.startswith(("data:image/png", "data:image/jpeg", "data:image/gif", "https:", "http:")) or \
            ":" not in value.split("/")[0]  # embedded pictures, web pictures and relative paths, never scripts
    return tag == "img" and name in ("alt", "width", "height")


@jinja2.pass_context
def inert_markdown2html(context, source: str) -> str:
    """nbconvert's markdown2html (HTMLExporter's, with its defaults), then bleach over the HTML it rendered: tags
    and attributes markdown does not write are escaped (shown as text), so a student's <script>, event handler or
    iframe never runs. Sanitizing after rendering keeps `<|endoftext|>` in a code span as it was written.

    >>> inert_markdown2html({}, 'x <img src=a onerror="alert(1)">')   # jinja passes the context itself
    '<p>x <img src="a"></p>\\n'
    """
    cell = context.get("cell", {})
    path = context.get("resources", {}).get("metadata", {}).get("path", "")
    renderer = IPythonRenderer(escape=False, attachments=cell.get("attachments", {}), path=path,
                               anchor_link_text="\u00b6")
    html = MarkdownWithMath(renderer=renderer).render(source)
    return bleach.clean(html, tags=MARKDOWN_TAGS, attributes=_markdown_attribute,
                        protocols={"http", "https", "mailto"}, strip=False)


class InertRawCellsAndOutputs(SanitizeHTML):
    """nbconvert's SanitizeHTML for raw cells and rich outputs; markdown cells are left to inert_markdown2html
    (bleach over markdown *source* would escape the `<` of every code span a second time)."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown":
            return cell, resources
        return super().preprocess_cell(cell, resources, index)
