"""Where the course's prepared data is (`python -m trailblaze.data` prepares it): `$TRAILBLAZE_DATA`, else `data/`
beside this package. Checks and adapters read it; the grading box shows the child the folders of `child_reads()`."""
from __future__ import annotations

import os
from pathlib import Path

from course_tests import PACKAGE

DATA_VARIABLE = "TRAILBLAZE_DATA"  # notebooks find the data through it too
GPT2 = "gpt2"                      # vocab.bpe and encoder.json under their own names
TIKTOKEN = "tiktoken"              # the same files under the names tiktoken's cache looks for
CORPUS = "shakespeare"             # train.txt and val.txt


def data_dir() -> Path:
    return Path(os.environ.get(DATA_VARIABLE) or PACKAGE.parent / "data")


def gpt2_files() -> Path:
    return data_dir() / GPT2


def corpus_file(split: str) -> Path:
    return data_dir() / CORPUS / f"{split}.txt"


def tiktoken_cache() -> Path:
    return Path(os.environ.get("TIKTOKEN_CACHE_DIR") or data_dir() / TIKTOKEN)


def child_reads() -> tuple[Path, ...]:
    return gpt2_files(), data_dir() / CORPUS, tiktoken_cache()
