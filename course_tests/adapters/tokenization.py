"""Adapters for 02_tokenization. Student signatures (as the notebook states them):

    split_words(text) -> list[str]
    SimpleTokenizer(text): .str_to_id, .id_to_str, .encode(text) -> list[int], .decode(ids) -> str
    CharTokenizer(text): .str_to_id, .id_to_str, .vocab_size, .encode(text), .decode(ids)
    get_pair_counts(ids, counts=None) -> dict[(int, int), int]
    merge_pair(ids, pair, new_id) -> list[int]
    train_bpe(text, num_merges, pattern=GPT2_PATTERN) -> list[(bytes, bytes)]
    bpe_encode_piece(piece: bytes, ranks: dict[bytes, int]) -> list[int]
    BPETokenizer(ranks, special_tokens=None, pattern=GPT2_PATTERN): .encode(text, allowed_special=()), .decode(ids)
    load_gpt2_ranks(vocab_bpe_path, encoder_json_path) -> dict[bytes, int]
    encode_iterable(tokenizer, pieces, allowed_special=()) -> iterator of int
    chars_per_token(text, encode) -> float
    SlidingWindowDataset(token_ids, max_length, stride): len(), [i] -> (inputs, targets)
    create_dataloader(token_ids, batch_size, max_length, stride, shuffle, drop_last, num_workers, generator)
    GPTEmbedding(vocab_size, context_length, emb_dim): .tok_emb, .pos_emb, forward(ids) -> (batch, seq, dim)

Every adapter returns plain data: strings, ints, lists, dicts, bytes and tensors.
"""
from __future__ import annotations

import functools
import itertools
import tempfile
from pathlib import Path

import regex
import tiktoken
import tiktoken.load
import torch

from course_tests import datafiles
from gradebox.tensors import probe_loss

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_SPECIAL_TOKENS = {"<|endoftext|>": 50256}


@functools.lru_cache(maxsize=1)
def _gpt2_ranks() -> dict[bytes, int]:
    """GPT-2's ranks as tiktoken reads them from the offline files (independent of the student's loader)."""
    return tiktoken.load.data_gym_to_mergeable_bpe_ranks(str(datafiles.gpt2_files() / "vocab.bpe"),
                                                         str(datafiles.gpt2_files() / "encoder.json"))


def gpt2_ranks() -> dict[bytes, int]:
    return dict(_gpt2_ranks())  # a fresh copy: student code may change what it is given


def _plain_ids(ids, what: str) -> list[int]:
    ids = list(ids)
    bad = next((type(i).__name__ for i in ids if type(i) is not int), None)
    if bad is not None:
        raise TypeError(f"{what} must be a list of Python ints, found a {bad}"
                        + (" (call .tolist() on tensors)" if bad == "Tensor" else ""))
    return ids


# --- simple tokenizers -------------------------------------------------------------------------------------------
def split_words(student, text: str):
    return student.call("split_words", text)


def _tokenizer_tables(tok) -> dict:
    return {"str_to_id": dict(tok.str_to_id), "id_to_str": dict(tok.id_to_str)}


def simple_tokenizer(student, train_text: str, texts: list[str] = (), ids: list[list[int]] = ()) -> dict:
    tok = student.call("SimpleTokenizer", train_text)
    return {**_tokenizer_tables(tok),
            "encoded": [_plain_ids(tok.encode(t), "SimpleTokenizer.encode(text)") for t in texts],
            "decoded": [tok.decode(list(i)) for i in ids]}


def char_tokenizer(student, train_text: str, texts: list[str] = ()) -> dict:
    tok = student.call("CharTokenizer", train_text)
    encoded = [_plain_ids(tok.encode(t), "CharTokenizer.encode(text)") for t in texts]
    return {**_tokenizer_tables(tok), "vocab_size": tok.vocab_size, "encoded": encoded,
            "decoded": [tok.decode(i) for i in encoded]}


# --- BPE -----------------------------------------------------------------------------------------------------------
def get_pair_counts(student, ids: list[int], counts: dict | None = None) -> dict:
    given = None if counts is None else dict(counts)
    result = student.call("get_pair_counts", list(ids), given)
    return {"counts": dict(result) if isinstance(result, dict) else result,
            "same_object": given is not None and result is given,
            "given_after": given}


def merge_pair(student, ids: list[int], pair: tuple[int, int], new_id: int) -> dict:
    original = list(ids)
    given = list(ids)
    result = student.call("merge_pair", given, tuple(pair), new_id)
    return {"merged": _plain_ids(result, "merge_pair(...)"), "input_changed": given != original}


def train_bpe(student, text: str, num_merges: int) -> list[tuple[bytes, bytes]]:
    merges = list(student.call("train_bpe", text, num_merges))
    for m in merges:
        if not (isinstance(m, tuple) and len(m) == 2 and all(type(x) is bytes for x in m)):
            raise TypeError(f"train_bpe must return a list of (bytes, bytes) tuples, found {type(m).__name__} {m!r:.40}")
    return merges


def bpe_encode_piece(student, pieces: list[bytes], ranks: dict[bytes, int] | None = None) -> list[list[int]]:
    ranks = gpt2_ranks() if ranks is None else dict(ranks)
    return [_plain_ids(student.call("bpe_encode_piece", p, ranks), "bpe_encode_piece(...)") for p in pieces]


def _bpe_tokenizer(student, special_tokens: dict[str, int] | None, ranks: dict[bytes, int] | None = None):
    return student.call("BPETokenizer", gpt2_ranks() if ranks is None else dict(ranks),
                        None if special_tokens is None else dict(special_tokens))


def bpe_encode(student, texts: list[str], special_tokens: dict[str, int] | None = None,
               allowed_special=(), ranks: dict[bytes, int] | None = None) -> list[list[int]]:
    tok = _bpe_tokenizer(student, special_tokens, ranks)
    return [_plain_ids(tok.encode(t, allowed_special=allowed_special), "BPETokenizer.encode(text)") for t in texts]


def bpe_decode(student, ids: list[list[int]], special_tokens: dict[str, int] | None = None) -> list[str]:
    tok = _bpe_tokenizer(student, special_tokens)
    return [tok.decode(list(i)) for i in ids]


def bpe_round_trip(student, special_tokens: dict[str, int] | None, text: str) -> tuple[list[int], str]:
    """(encode(text), decode(encode(text))) with one tokenizer kept for the checks that call this many times
    (property-based tests): each call is plain data in, plain data out."""
    key = repr(sorted((special_tokens or {}).items()))
    cache = student.__dict__.setdefault("_bpe_round_trip_tokenizers", {})
    if key not in cache:
        cache[key] = _bpe_tokenizer(student, special_tokens)
    tok = cache[key]
    ids = _plain_ids(tok.encode(text), "BPETokenizer.encode(text)")
    return ids, tok.decode(list(ids))


def load_gpt2_ranks(student, corrupt_merges: bool = False) -> dict:
    vocab_bpe, encoder_json = datafiles.gpt2_files() / "vocab.bpe", datafiles.gpt2_files() / "encoder.json"
    with tempfile.TemporaryDirectory() as tmp:
        if corrupt_merges:  # two merges swapped: the files no longer agree
            lines = vocab_bpe.read_text(encoding="utf-8").splitlines(keepends=True)
            lines[101], lines[102] = lines[102], lines[101]
            vocab_bpe = Path(tmp) / "vocab.bpe"
            vocab_bpe.write_text("".join(lines), encoding="utf-8")
        ranks = student.call("load_gpt2_ranks", vocab_bpe, encoder_json)
    if not isinstance(ranks, dict):
        raise TypeError(f"load_gpt2_ranks must return a dict, got {type(ranks).__name__}")
    return {"ranks": dict(ranks),
            "key_types": sorted({type(k).__name__ for k in ranks}),
            "value_types": sorted({type(v).__name__ for v in ranks.values()})}


class _Tiktoken:
    """A trusted tokenizer with the interface encode_iterable needs (.encode, .pattern, .special_tokens)."""

    def __init__(self):
        self.enc = tiktoken.get_encoding("gpt2")
        self.pattern = regex.compile(GPT2_PATTERN)
        self.special_tokens = dict(GPT2_SPECIAL_TOKENS)

    def encode(self, text, allowed_special=()):
        return self.enc.encode(text, allowed_special=set(allowed_special) if allowed_special != "all" else "all",
                               disallowed_special=())


def encode_iterable(student, pieces: list[str], allowed_special=()) -> list[int]:
    return _plain_ids(student.call("encode_iterable", _Tiktoken(), iter(pieces), allowed_special=allowed_special),
                      "encode_iterable(...)")


def encode_iterable_laziness(student, lines: list[str], take: int) -> dict:
    """How many input pieces encode_iterable had read when `take` ids came out."""
    consumed = 0

    def source():
        nonlocal consumed
        for line in lines:
            consumed += 1
            yield line

    out = student.call("encode_iterable", _Tiktoken(), source())
    first = _plain_ids(itertools.islice(out, take), "encode_iterable(...)")
    return {"first": first, "consumed": consumed, "total": len(lines)}


def chars_per_token(student, text: str, encode_kind: str):
    encoders = {"bytes": lambda s: list(s.encode("utf-8")), "chars": lambda s: list(range(len(s))),
                "gpt2": tiktoken.get_encoding("gpt2").encode_ordinary}
    return student.call("chars_per_token", text, encoders[encode_kind])


# --- data for training ----------------------------------------------------------------------------------------
def sliding_window_dataset(student, token_ids: torch.Tensor | list[int], max_length: int, stride: int,
                           indices: list[int] = ()) -> dict:
    data = student.call("SlidingWindowDataset", token_ids, max_length, stride)
    return {"length": len(data), "items": [tuple(data[i]) for i in indices]}


def sliding_window_index_error(student, token_ids: list[int], max_length: int, stride: int, index: int):
    data = student.call("SlidingWindowDataset", token_ids, max_length, stride)
    return data[index]


def create_dataloader(student, token_ids: list[int], seed: int | None = None, global_seed: int | None = None,
                      **kwargs) -> dict:
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    loader = student.call("create_dataloader", token_ids, generator=generator, **kwargs)
    if global_seed is not None:  # disturb the global RNG: a seeded loader must not depend on it
        torch.manual_seed(global_seed)
    batches = [tuple(batch) for batch in loader]
    return {"batches": batches, "length": len(loader), "num_workers": loader.num_workers}


def gpt_embedding(student, sizes: tuple[int, int, int], token_ids: torch.Tensor, device: str, seed: int = 0,
                  backward: bool = False) -> dict:
    torch.manual_seed(seed)
    module = student.call("GPTEmbedding", *sizes).to(device)
    ids = token_ids.to(device)
    out = module(ids)
    result = {"output": out.detach() if isinstance(out, torch.Tensor) else out,
              "tok_emb": module.tok_emb.weight.detach().clone(), "pos_emb": module.pos_emb.weight.detach().clone()}
    if backward:
        probe_loss(out).backward()
        result["grads"] = {name: None if p.grad is None else p.grad.detach().clone()
                           for name, p in (("tok_emb", module.tok_emb.weight), ("pos_emb", module.pos_emb.weight))}
    return result
