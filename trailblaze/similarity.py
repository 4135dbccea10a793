"""Similar submissions: students' own code compared pairwise with copydetect's winnowed fingerprints.

Only what a student wrote is compared: the solution cells, without the release's own lines (signatures, docstrings,
`raise NotImplementedError`), which are fingerprinted as boilerplate; provided and carried-forward cells are left
out. copydetect tokenizes first (every name becomes one token), so renaming variables and reordering functions
changes nothing. The instructor's solution takes part under SOLUTION, so a leaked solution shows too.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

from gradebox import notebooks

SOLUTION = "(instructor's solution)"
NOISE, GUARANTEE = 25, 30  # copydetect's defaults: k-grams of 25 tokens, every match of 30 tokens found
THRESHOLD = 0.6  # a pair is listed when each of the two has at least this share of its code in common with the other


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    similarity: float  # the smaller of the two shares
    lines_a: list[str]  # the matching lines of each, in order
    lines_b: list[str]


def own_code(nb) -> str:
    """The source of a notebook's solution cells, one after another (what the student wrote, and the stubs)."""
    return "\n\n".join(c.source for c in nb.cells if notebooks.kind(c) == "solution")


def _fingerprint(code: str, boilerplate: frozenset = frozenset()):
    """copydetect's fingerprint of `code`, without the hashes of `boilerplate` (wherever they occur: copydetect's own
    boilerplate option removes one occurrence of each)."""
    from copydetect import CodeFingerprint
    from copydetect.utils import get_token_coverage
    fp = CodeFingerprint("submission.py", NOISE, GUARANTEE - NOISE + 1, fp=io.StringIO(code))
    fp.hashes -= boilerplate
    fp.hash_idx = {h: i for h, i in fp.hash_idx.items() if h not in boilerplate}
    fp.token_coverage = get_token_coverage(fp.hash_idx, NOISE, len(fp.filtered_code))
    return fp


def _matching_lines(code: str, slices) -> list[str]:
    starts, ends = slices
    lines, offset, picked = code.splitlines(keepends=True), 0, []
    for line in lines:
        if any(s < offset + len(line) and e > offset for s, e in zip(starts, ends)) and line.strip():
            picked.append(line.rstrip("\n"))
        offset += len(line)
    return picked


def similar_pairs(codes: dict[str, str], release_code: str, threshold: float = THRESHOLD) -> list[Pair]:
    """Pairs of `codes` (name -> own_code) that share at least `threshold` of their code, most similar first."""
    from copydetect.detector import compare_files
    boilerplate = frozenset(_fingerprint(release_code).hashes)
    prints = {name: _fingerprint(code, boilerplate) for name, code in codes.items()}
    prints = {name: fp for name, fp in prints.items() if fp.token_coverage > 0}
    names, pairs = sorted(prints), []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            _, (share_a, share_b), (slices_a, slices_b) = compare_files(prints[a], prints[b])
            similarity = float(min(share_a, share_b))
            if similarity >= threshold:
                pairs.append(Pair(a, b, round(similarity, 3), _matching_lines(prints[a].raw_code, slices_a),
                                  _matching_lines(prints[b].raw_code, slices_b)))
    return sorted(pairs, key=lambda p: (-p.similarity, p.a, p.b))
