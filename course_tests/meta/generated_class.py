"""A generated class for the class report's tests, on 03_attention: one student per planted bug, students with two
bugs in different exercises, the honest alternatives, an implementation of its own in another style and a copy of
it with renamed variables and reordered methods, blank releases, and a student whose id is HTML.

Its notebooks are graded in this process with the course's checks (the box is tested elsewhere; here the subject
is what the report makes of real check results), and stored as the grader stores them.
"""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

import nbformat

from course_tests import adapters_for
from gradebox import notebooks
from gradebox.checks import checks_for
from gradebox.runner import grade_every_cell
from gradebox.student import load_cells
from trailblaze import misconceptions, mutants, pipeline
from trailblaze.coursedir import COURSE, CourseDirectory
from trailblaze.stages.store import Result, ResultStore

ASSIGNMENT = "03_attention"
HTML_STUDENT = "eve<img src=x onerror=alert(1)>"  # a folder name may hold anything but "/"

# Every exercise of 03 written again, in another style than the solution's.
OWN = {
    "softmax": '''
def softmax(x, dim=-1):
    top = torch.max(x, dim=dim, keepdim=True).values
    e = torch.exp(x - top)
    return e.div(torch.sum(e, dim=dim, keepdim=True))
''',
    "scaled_dot_product_attention": '''
def scaled_dot_product_attention(queries, keys, values, mask=None):
    raw = torch.matmul(queries, keys.transpose(-1, -2)) * queries.size(-1) ** -0.5
    if mask is not None:
        raw = torch.where(mask, torch.full_like(raw, -float("inf")), raw)
    attn = softmax(raw, dim=-1)
    return torch.matmul(attn, values), attn
''',
    "causal_mask": '''
def causal_mask(seq_len, device=None):
    idx = torch.arange(seq_len, device=device)
    return idx.unsqueeze(0) > idx.unsqueeze(1)
''',
    "causal_self_attention": '''
class CausalSelfAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout=0.0, qkv_bias=False):
        super().__init__()
        self.W_query, self.W_key, self.W_value = (nn.Linear(d_in, d_out, bias=qkv_bias) for _ in range(3))
        self.dropout = nn.Dropout(p=dropout)
        self.register_buffer("mask", causal_mask(context_length))

    def forward(self, x):
        n = x.size(1)
        if n > len(self.mask):
            raise ValueError("the sequence is longer than the context")
        q, k, v = self.W_query(x), self.W_key(x), self.W_value(x)
        attn = scaled_dot_product_attention(q, k, v, self.mask[:n, :n])[1]
        return torch.matmul(self.dropout(attn), v)
''',
    "multi_head_attention": '''
class MultiHeadAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout=0.0, num_heads=2, qkv_bias=False):
        super().__init__()
        self.head_dim, rest = divmod(d_out, num_heads)
        if rest:
            raise ValueError("d_out must split evenly across the heads")
        self.num_heads = num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", causal_mask(context_length))

    def forward(self, x):
        b, n, _ = x.shape
        if n > self.mask.size(0):
            raise ValueError("too many tokens for the context length")

        def heads(t):
            return t.reshape(b, n, self.num_heads, self.head_dim).permute(0, 2, 1, 3)

        q, k, v = heads(self.W_query(x)), heads(self.W_key(x)), heads(self.W_value(x))
        attn = scaled_dot_product_attention(q, k, v, mask=self.mask[:n, :n])[1]
        out = torch.matmul(self.dropout(attn), v).permute(0, 2, 1, 3).reshape(b, n, -1)
        return self.out_proj(out)
''',
}


class _Disguise(ast.NodeTransformer):
    """What a student who copies does: every local variable renamed (not the parameters: callers name them), the
    methods of each class in reverse order."""

    def visit_FunctionDef(self, node):
        local = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        local -= {a.arg for f in ast.walk(node) if isinstance(f, ast.FunctionDef) for a in f.args.args}
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and n.id in local:
                n.id = f"my_{n.id}"
        return node

    def visit_ClassDef(self, node):
        self.generic_visit(node)
        node.body = list(reversed(node.body))
        return node


def disguised(source: str) -> str:
    return ast.unparse(_Disguise().visit(ast.parse(source))) + "\n"


def with_cells(nb, sources: dict[str, str]):
    nb = nbformat.from_dict(nb)
    for grade_id, source in sources.items():
        notebooks.find_cell(nb, grade_id).source = source.strip() + "\n"
    return nb


def two_bug_pairs(bugs: list) -> list[tuple]:
    """Pairs of bugs in different exercises, neither failing a check of the other's exercise: each can be named."""
    sigs = {s.bug: s for s in misconceptions.signatures(ASSIGNMENT)}

    def touches(bug, cell):
        return bool(sigs[bug.id].fails & {c.name for c in checks_for(ASSIGNMENT, f"{cell}_tests")})
    pairs = [(a, b) for i, a in enumerate(bugs) for b in bugs[i + 1:]
             if a.cell != b.cell and a.id in sigs and b.id in sigs
             and not touches(a, b.cell) and not touches(b, a.cell)]
    return pairs[::max(1, len(pairs) // 4)][:4]


def students() -> dict[str, tuple[object, tuple[str, ...]]]:
    """student -> (notebook, the planted bugs it carries)."""
    samples = pipeline.sample_submissions(ASSIGNMENT, COURSE)
    source = notebooks.read(COURSE.source_notebook(ASSIGNMENT))
    solved = samples["solutions"]
    bugs = mutants.load(ASSIGNMENT)
    out = {}
    def planted(*chosen):
        bugged = mutants.apply(source, list(chosen))
        cells = {m.cell: pipeline.strip_solution_markers(notebooks.find_cell(bugged, m.cell).source) for m in chosen}
        return with_cells(solved, cells), tuple(m.id for m in chosen)
    for bug in bugs:
        out[f"bug_{bug.id}"] = planted(bug)
    for a, b in two_bug_pairs(bugs):
        out[f"bugs_{a.id}_{b.id}"] = planted(a, b)
    for alt in mutants.alternatives(ASSIGNMENT):
        out[f"honest_{alt.id}"] = (with_cells(solved, {alt.cell: alt.source}), ())
    out["copy_a"] = (with_cells(solved, OWN), ())
    out["copy_b"] = (with_cells(solved, {g: disguised(s) for g, s in OWN.items()}), ())
    out["blank_1"] = out["blank_2"] = (samples["blank"], ())
    out[HTML_STUDENT] = (samples["blank"], ())
    return out


def graded(nb) -> Result:
    impl = load_cells(nb, ASSIGNMENT, adapters_for(ASSIGNMENT))
    return Result("generated", grade_every_cell(impl, ["cpu"]), 0.1, list(impl.load_errors))


def build(root: Path) -> tuple[CourseDirectory, dict, dict]:
    """A course under `root` holding the generated class, graded and stored: (course, grades, bugs by student)."""
    shutil.copytree(COURSE.source / ASSIGNMENT, root / "source" / ASSIGNMENT)
    shutil.copytree(COURSE.release / ASSIGNMENT, root / "release" / ASSIGNMENT)
    course, grades, given = CourseDirectory(root), {}, {}
    store = ResultStore(course)
    for student, (nb, bugs) in students().items():
        notebooks.write(nb, course.submitted_notebook(student, ASSIGNMENT))
        result = graded(nb)
        store.save(ASSIGNMENT, student, result)
        grades[student] = {ASSIGNMENT: (sum(g["earned"] for g in result.grades.values()),
                                        sum(g["total"] for g in result.grades.values()))}
        given[student] = bugs
    return course, grades, given

