"""What a student can expect from each notebook: its time, the hardware it needs and its results, written at its top.

    python -m trailblaze.expectations     rewrites the paragraph in every source notebook (then release again)

The paragraph stands in the notebook's first cell, before the limits of grading. Its minutes and memory are measured
by benchmarks/notebook_times.py (every cell, demos at full size, on a 2-core machine: rerun it after changing a demo
and update MEASURED); the hours for the exercises are an estimate. Every other number it quotes is one the notebook
prints: each Quote names the output line that holds it, and a meta-test runs the notebook and finds that line with
that number, so the prose cannot drift from the code.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

from gradebox import notebooks
from trailblaze.coursedir import COURSE, CourseDirectory

HEADING = "**What to expect.**"
LIMITS = "**Limits when graded.**"


@dataclass(frozen=True)
class Quote:
    """A number the paragraph quotes, as it writes it, and the notebook's output line that prints it ({} for it;
    runs of spaces count as one, so a right-aligned table row matches)."""
    number: str
    output: str

    @property
    def line(self) -> str:
        return self.output.format(self.number)


@dataclass(frozen=True)
class Expectation:
    minutes: float          # every cell, demos at full size, on 2 CPU cores (benchmarks/notebook_times.py)
    memory_gib: float       # the kernel's peak resident memory in that run
    hours: str              # what the exercises take a student: an estimate
    results: str            # what the notebook shows, with {0}, {1}, ... for its quotes
    quotes: tuple[Quote, ...] = ()
    gpu: str = "A GPU is not needed."


MEASURED = {
    "01_setup": Expectation(
        minutes=0.5, memory_gib=0.8, hours="1 to 2",
        gpu="A GPU is not needed. Online, the first run also downloads DistilGPT2 (350 MB) once.",
        results="Its demos count DistilGPT2's {0} parameters, show the probabilities it gives the next token, and "
                "write text greedily and by sampling (with random weights when you are offline, so the text is "
                "noise).",
        quotes=(Quote("81,912,576", "total: {} (the rows above add up to it)"),)),
    "02_tokenization": Expectation(
        minutes=0.1, memory_gib=0.5, hours="3 to 5",
        results="On Shakespeare, GPT-2's tokenizer packs {0} characters into a token, your BPE with 256 merges {1}, "
                "words {2} and characters exactly {3}; a figure shows the compression grow with every merge.",
        quotes=(Quote("3.17", "GPT-2 (tiktoken): {} characters per token"),
                Quote("1.90", "our BPE, 256 merges: {} characters per token"),
                Quote("4.05", "words: {} characters per token"),
                Quote("1.00", "characters: {} characters per token"))),
    "03_attention": Expectation(
        minutes=0.06, memory_gib=0.9, hours="2 to 4",
        results="The demos show why the scores are scaled, draw causal attention weights over a sentence and those "
                "of a head trained for two seconds to look 3 tokens back, and count GPT-2 small's attention layer: "
                "{0} parameters.",
        quotes=(Quote("2,360,064", "GPT-2 small's attention layer: {} parameters,"),)),
    "04_gpt": Expectation(
        minutes=0.5, memory_gib=0.8, hours="3 to 5",
        gpu="A GPU is not needed. Online, the last demo also downloads GPT-2 small (550 MB) once.",
        results="Your GPTModel built as GPT-2 small has {0} parameters ({1} MiB in float32); a figure shows the "
                "gradient fade through 48 blocks without the residual shortcuts (the first block gets {2} of the "
                "last block's) and not with them; with GPT-2's weights loaded (online) it writes what Hugging "
                "Face's GPT-2 writes.",
        quotes=(Quote("124,439,808", "GPT-2 small: {} parameters, 475 MiB in float32"),
                Quote("475", "GPT-2 small: 124,439,808 parameters, {} MiB in float32"),
                Quote("0.0128", "without shortcuts: the first block's gradient is {} times the last block's"))),
    "05_training": Expectation(
        minutes=8.0, memory_gib=1.0, hours="3 to 5",
        gpu="A GPU is not needed; it runs the training demos in seconds.",
        results="A uniform guess over GPT-2's tokens costs {0} nats per token, and an untrained model about as much. "
                "The default run (section 8, five minutes of it) ends near 1.45 nats per character on the whole "
                "validation split, below nanoGPT's character model given the same time, and writes text with "
                "speakers and line breaks.",
        quotes=(Quote("10.82", "ln(vocab_size) = {}: the loss of a uniform guess"),)),
}


def paragraph(assignment: str) -> str:
    """The paragraph for one assignment, wrapped as the notebooks' first cells are."""
    e = MEASURED[assignment]
    minutes = f"{e.minutes:g} minute{'s' if e.minutes != 1 else ''}" if e.minutes >= 1 else \
        f"{max(5, round(e.minutes * 60, -1)):.0f} seconds"
    text = (f"{HEADING} Running every cell, demos included, takes about {minutes} on a laptop with 2 CPU cores "
            f"(measured), with about {e.memory_gib:g} GiB of memory. {e.gpu} The exercises take about {e.hours} "
            f"hours (an estimate). " + e.results.format(*(q.number for q in e.quotes)))
    return textwrap.fill(text, width=115, break_long_words=False, break_on_hyphens=False)


def with_paragraph(first_cell: str, assignment: str) -> str:
    """The first cell with its expectations paragraph written (or rewritten) just before the limits of grading."""
    before, limits = first_cell.split(LIMITS, 1) if LIMITS in first_cell else (first_cell, None)
    if HEADING in before:
        before = before[:before.index(HEADING)]
    body = before.rstrip() + "\n\n" + paragraph(assignment)
    return body + ("\n\n" + LIMITS + limits if limits is not None else "")


def sync(assignment: str, course: CourseDirectory = COURSE) -> bool:
    """Rewrite one source notebook's paragraph; True when something changed."""
    path = course.source_notebook(assignment)
    nb = notebooks.read(path)
    wanted = with_paragraph(nb.cells[0].source, assignment)
    if nb.cells[0].source == wanted:
        return False
    nb.cells[0].source = wanted
    notebooks.write(nb, path)
    return True


if __name__ == "__main__":
    for name in COURSE.assignments():
        print(f"{name}: {'rewritten' if sync(name) else 'in step'}")
