"""Checks for 02_tokenization: word, character and byte-level BPE tokenizers, GPT-2 equality, training windows.

References are independent of the course's solutions: OpenAI's `tiktoken` (Rust) for GPT-2's encoding, decoding
and ranks; a direct (non-incremental) BPE trainer written here for training; `collections.Counter`, plain slicing
and torch's own DataLoader for the rest. Random texts come from seeded generators and, for round trips,
property-based search with `hypothesis` (derandomized, so a grade never changes between runs).
"""
from __future__ import annotations

import functools
import random
import re
import tempfile
import unicodedata
from collections import Counter

import regex
import tiktoken
import torch
from hypothesis import HealthCheck, Verbosity, configuration, find, settings, strategies as st
from hypothesis.errors import NoSuchExample

from course_tests import datafiles
from course_tests.adapters.tokenization import GPT2_PATTERN, GPT2_SPECIAL_TOKENS, gpt2_ranks
from gradebox import inputs
from gradebox.checks import builds_on, check
from gradebox.expect import expect, expect_raises, expect_tensor, fail
from gradebox.forbidden import forbid
from gradebox.inputs import make_generator

ASSIGNMENT = "02_tokenization"
# The shortcut that would skip what the BPE exercises teach: their instructions name it; gradebox.forbidden finds it.
for _grade_id in ("train_bpe_tests", "bpe_encode_piece_tests", "bpe_tokenizer_tests", "encode_iterable_tests"):
    forbid(ASSIGNMENT, _grade_id, "tiktoken")
builds_on(ASSIGNMENT, "simple_tokenizer_tests", ["split_words"])
builds_on(ASSIGNMENT, "train_bpe_tests", ["get_pair_counts", "merge_pair"])
builds_on(ASSIGNMENT, "bpe_tokenizer_tests", ["bpe_encode_piece"])
builds_on(ASSIGNMENT, "create_dataloader_tests", ["SlidingWindowDataset"])

# Hypothesis caches what it learns on disk, by default in ./.hypothesis: in a student's notebook folder when a grade
# cell runs. Grading must write nothing there, so its storage goes to a private temporary folder.
_HYPOTHESIS_HOME = tempfile.TemporaryDirectory(prefix="trailblaze-hypothesis-")
configuration.set_hypothesis_home_dir(_HYPOTHESIS_HOME.name)
SEARCH = settings(database=None, derandomize=True, deadline=None, max_examples=150, verbosity=Verbosity.quiet,
                  suppress_health_check=list(HealthCheck))


def gpt2() -> tiktoken.Encoding:
    return tiktoken.get_encoding("gpt2")


def corpus(split: str) -> str:
    return datafiles.corpus_file(split).read_text(encoding="utf-8")


def describe_text(text: str) -> str:
    """A counterexample described without quoting it: its length and the kinds of character in it."""
    kinds = sorted({unicodedata.category(ch) for ch in text})
    return f"a {len(text)}-character string with Unicode categories {', '.join(kinds) or 'none'}"


def first_difference(got: list, want: list) -> str:
    i = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    if len(got) == len(want):
        return f"the right number of ids ({len(want)}), but they differ from position {i} on"
    return f"{len(got)} ids where {len(want)} are expected, the first difference at position {i}"


# --- split_words and SimpleTokenizer ------------------------------------------------------------------------------
WORDS = re.compile(r"<\|\w+\|>|\w+|[^\w\s]")
SIMPLE_SPECIALS = ("<|endoftext|>", "<|unk|>")
SIMPLE_TEXTS = [
    "It's the end--or is it? (Perhaps.) 'Twas 1599;",
    "naïve café: Dvořák & Schönberg... ¿Qué?",
    "tabs\tand\nnewlines\r\n  and   spaces",
    "snake_case x2 3.14 $5 #1 a-b_c",
    "",
]


def ref_split(text: str) -> list[str]:
    return WORDS.findall(text)


def ref_simple_vocab(text: str) -> dict[str, int]:
    words = sorted(set(ref_split(text)) - set(SIMPLE_SPECIALS))
    return {w: i for i, w in enumerate(words + list(SIMPLE_SPECIALS))}


def ref_simple_decode(tokens: list[str]) -> str:
    return re.sub(r" ([.,:;?!])", r"\1", " ".join(tokens))


@check("split_words_tests", uses_device=False,
       contract=("a word is a run of letters, digits or underscores",
                 "every other non-space character is a token of its own", "dropping whitespace"))
def split_words_follows_the_rule(impl, device):
    """split_words keeps runs of \\w characters together and every other non-space character apart"""
    for text in SIMPLE_TEXTS:
        got = impl.call("split_words", text)
        expect(isinstance(got, list) and all(type(t) is str for t in got), "split_words must return a list of str")
        if got != ref_split(text):
            kinds = "whitespace" if any(t.isspace() or t == "" for t in got) else (
                "punctuation runs" if any(len(t) > 1 and not re.fullmatch(r"\w+|<\|\w+\|>", t) for t in got) else
                "letters, digits or underscores")
            fail(f"split_words splits {describe_text(text)} differently from the rule; look at how it treats {kinds}")


@check("split_words_tests", uses_device=False,
       contract=("a special token written <|name|> (name made of \\w characters, e.g. <|endoftext|>) stays one token",))
def split_words_keeps_special_tokens(impl, device):
    """split_words keeps <|name|> special tokens whole, and only well-formed ones"""
    for text in ["a<|endoftext|>b", "<|unk|> <|endoftext|><|endoftext|>", "<|endoftext|", "<| x |> <||> <|a-b|>"]:
        got = impl.call("split_words", text)
        expect(got == ref_split(text), "split_words must keep a special token written <|name|> (name of \\w "
                                       "characters) as one token, and split anything else that looks almost like "
                                       "one as ordinary punctuation and words")


@check("simple_tokenizer_tests", uses_device=False,
       contract=("the distinct tokens of split_words(text) in sorted order",
                 'then the special tokens "<|endoftext|>" and "<|unk|>", in that order'))
def simple_vocab_is_sorted_with_specials_last(impl, device):
    """SimpleTokenizer's vocabulary is its sorted tokens, then <|endoftext|> and <|unk|>"""
    train = " ".join(SIMPLE_TEXTS) + " zebra apple Zebra"
    got = impl.call("simple_tokenizer", train)
    want = ref_simple_vocab(train)
    if got["str_to_id"] != want:
        if set(got["str_to_id"]) != set(want):
            fail("the vocabulary holds other tokens than split_words(text) plus the two special tokens")
        if [got["str_to_id"][t] for t in SIMPLE_SPECIALS] != [len(want) - 2, len(want) - 1]:
            fail("the special tokens must take the last two ids, <|endoftext|> then <|unk|>")
        fail("the ids are not in sorted order of the tokens (sort the distinct tokens with sorted())")
    expect(got["id_to_str"] == {i: t for t, i in want.items()}, "id_to_str must be the inverse of str_to_id")


@check("simple_tokenizer_tests", uses_device=False, contract=("if the text contains them, they are not counted twice",))
def simple_vocab_counts_specials_once(impl, device):
    """a training text that contains special tokens does not give them two ids"""
    train = "one<|endoftext|>two <|unk|> three"
    got = impl.call("simple_tokenizer", train)
    expect(got["str_to_id"] == ref_simple_vocab(train),
           "when the training text contains <|endoftext|> or <|unk|>, they must still appear once, at the end")


@check("simple_tokenizer_tests", uses_device=False,
       contract=('tokens missing from the vocabulary become the id of "<|unk|>"',))
def simple_encode_maps_unknown_words(impl, device):
    """encode gives known tokens their ids and unknown ones the id of <|unk|>"""
    train = "the cat sat on the mat. the dog sat!"
    texts = ["the dog sat on the cat.", "a bird? the cat!", "sat<|endoftext|>the", "<|unk|> mat", ""]
    got = impl.call("simple_tokenizer", train, texts)
    vocab = ref_simple_vocab(train)
    for text, ids in zip(texts, got["encoded"]):
        want = [vocab.get(t, vocab["<|unk|>"]) for t in ref_split(text)]
        expect(ids == want, f"encode gives {first_difference(ids, want)} on a text with "
                            f"{sum(t not in vocab for t in ref_split(text))} unknown tokens")


@check("simple_tokenizer_tests", uses_device=False,
       contract=("tokens joined with single spaces, then the space before each of . , : ; ? ! removed",))
def simple_decode_joins_with_spacing_rule(impl, device):
    """decode joins tokens with spaces and removes the space before . , : ; ? !"""
    train = "Hello, world. Is this-- a test? Yes: it is; (really)!"
    vocab = ref_simple_vocab(train)
    ids = [[vocab[t] for t in ref_split(text)] for text in ["Hello, world.", "Is this-- a test?", "Yes: it is; (really)!"]]
    ids.append([vocab["<|endoftext|>"], vocab["a"], vocab["<|unk|>"]])
    got = impl.call("simple_tokenizer", train, ids=ids)
    inverse = {i: t for t, i in vocab.items()}
    for seq, text in zip(ids, got["decoded"]):
        expect(text == ref_simple_decode([inverse[i] for i in seq]),
               "decode must join the tokens with single spaces, then remove the space before each of . , : ; ? ! "
               "(and only those)")


# --- CharTokenizer ------------------------------------------------------------------------------------------------
@check("char_tokenizer_tests", uses_device=False,
       contract=("the vocabulary is the sorted distinct characters of a training text",
                 "decoding gives back the exact text"))
def char_vocab_sorted_and_round_trips(impl, device):
    """CharTokenizer's vocabulary is the sorted characters; every known string round-trips"""
    train = "To be, or not to be:\n\tthat is the question. Ünïcödé 東京 👋"
    texts = ["be or not", "\n\t👋東", "", train]
    got = impl.call("char_tokenizer", train, texts)
    want = {ch: i for i, ch in enumerate(sorted(set(train)))}
    expect(got["str_to_id"] == want, "str_to_id must number the distinct characters in sorted order")
    expect(got["id_to_str"] == {i: ch for ch, i in want.items()}, "id_to_str must be the inverse of str_to_id")
    expect(type(got["vocab_size"]) is int and got["vocab_size"] == len(want), "vocab_size must be the number of "
                                                                               "distinct characters, as an int")
    for text, ids, back in zip(texts, got["encoded"], got["decoded"]):
        expect(ids == [want[ch] for ch in text], "encode must give one id per character")
        expect(back == text, "decode(encode(text)) must give text back")


@check("char_tokenizer_tests", uses_device=False,
       contract=("encode(text) raises ValueError, naming the character, for a character outside the vocabulary",))
def char_rejects_unknown_characters(impl, device):
    """encode raises ValueError that names a character outside the vocabulary"""
    err = expect_raises(impl, "ValueError", "char_tokenizer", "abc", ["abcz"], what="encode('abcz')",
                        why="'z' is not in the vocabulary", works=(("abc", ["cab"]), {}))
    expect("z" in err.message, "the ValueError's message should name the unknown character")


# --- get_pair_counts and merge_pair ----------------------------------------------------------------------------
def random_ids(rng: random.Random, n: int, alphabet: int) -> list[int]:
    return [rng.randrange(alphabet) for _ in range(n)]


@check("get_pair_counts_tests", uses_device=False, contract=("Count each pair of adjacent ids",))
def pair_counts_count_every_adjacent_pair(impl, device):
    """get_pair_counts counts every adjacent pair, repeated and overlapping ones too"""
    rng = inputs.Random(2)
    cases = [[], [5], [1, 1], [1, 1, 1, 1], [300, 2, 300, 2, 300]] + [random_ids(rng, n, 4) for n in (10, 57, 200)]
    for ids in cases:
        got = impl.call("get_pair_counts", ids)["counts"]
        want = dict(Counter(zip(ids, ids[1:])))
        expect(got == want, f"on {len(ids)} ids, get_pair_counts found {sum(got.values()) if isinstance(got, dict) else '?'}"
                            f" pairs where there are {sum(want.values())}")


@check("get_pair_counts_tests", uses_device=False,
       contract=("If `counts` is given, add to it (in place) and return it",))
def pair_counts_add_to_given_counts(impl, device):
    """with counts given, get_pair_counts adds to that dict and returns it"""
    ids, start = [3, 4, 3, 4, 9], {(3, 4): 10, (7, 7): 1}
    got = impl.call("get_pair_counts", ids, start)
    want = {(3, 4): 12, (4, 3): 1, (4, 9): 1, (7, 7): 1}
    expect(got["same_object"], "when counts is given, add to it in place and return that same dict")
    expect(got["given_after"] == want, "the given counts must end up with the new pairs added to the old counts")


@check("merge_pair_tests", uses_device=False,
       contract=("scanning left to right", "return a new list", "Occurrences do not overlap"))
def merge_pair_replaces_left_to_right(impl, device):
    """merge_pair replaces every non-overlapping occurrence, left to right, in a new list"""
    def ref(ids, pair, new):
        out, i = [], 0
        while i < len(ids):
            if tuple(ids[i:i + 2]) == pair:
                out.append(new)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        return out

    rng = inputs.Random(3)
    cases = [([1, 1, 1], (1, 1)), ([1, 1, 1, 1], (1, 1)), ([2, 1, 2, 1, 2], (1, 2)), ([1, 2, 3], (1, 2))]
    cases += [(random_ids(rng, 100, 3), (rng.randrange(3), rng.randrange(3))) for _ in range(5)]
    for ids, pair in cases:
        got = impl.call("merge_pair", ids, pair, 999)
        expect(not got["input_changed"], "merge_pair must not change the list it is given")
        expect(got["merged"] == ref(ids, pair, 999), f"merge_pair gives {first_difference(got['merged'], ref(ids, pair, 999))}")


@check("merge_pair_tests", uses_device=False, contract=("Replace every occurrence of `pair` in ids",))
def merge_pair_edges(impl, device):
    """merge_pair handles empty and one-id lists, and pairs at either end"""
    for ids, pair, want in [([], (1, 2), []), ([7], (7, 7), [7]), ([1, 2], (1, 2), [9]), ([3, 1, 2], (1, 2), [3, 9]),
                            ([1, 2, 3], (1, 2), [9, 3]), ([1, 3, 5], (1, 2), [1, 3, 5])]:
        got = impl.call("merge_pair", ids, pair, 9)["merged"]
        expect(got == want, f"merge_pair on a list of {len(ids)} ids gives {len(got)} ids where {len(want)} are "
                            "expected: check the first and the last position")


# --- train_bpe ---------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=32)  # the same reference for every student a grader process checks
def ref_train(text: str, num_merges: int) -> list[tuple[bytes, bytes]]:
    """The direct algorithm: recount all pairs after every merge (slow, obviously right)."""
    words = Counter(tuple(piece.encode("utf-8")) for piece in regex.findall(GPT2_PATTERN, text))
    vocab = {i: bytes([i]) for i in range(256)}
    merges = []
    for k in range(num_merges):
        counts: Counter = Counter()
        for word, freq in words.items():
            for pair in zip(word, word[1:]):
                counts[pair] += freq
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        new = 256 + k
        vocab[new] = vocab[best[0]] + vocab[best[1]]
        merges.append((vocab[best[0]], vocab[best[1]]))
        merged: Counter = Counter()
        for word, freq in words.items():
            out, i = [], 0
            while i < len(word):
                if word[i:i + 2] == best:
                    out.append(new)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += freq
        words = merged
    return merges


def expect_merges(got, want, what: str) -> None:
    if got == want:
        return
    if len(got) != len(want):
        fail(f"train_bpe on {what} returned {len(got)} merges where {len(want)} are expected "
             "(stop early only when no pair is left)")
    k = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
    fail(f"train_bpe on {what}: merge {k} of {len(want)} differs from the reference (the first {k} agree)")


@check("train_bpe_tests", uses_device=False,
       contract=("merge k creates token id 256 + k", "Stop early when no pair is left"))
def train_matches_reference_on_small_texts(impl, device):
    """train_bpe learns the reference merges on small texts, stopping when no pair is left"""
    for text, n in [("aaab", 10), ("abababab abab", 6), (" low" * 5 + " lower" * 2 + " newest" * 6, 12),
                    ("héllo wörld, 👋👋 héllo", 15)]:
        expect_merges(impl.call("train_bpe", text, n), ref_train(text, n), f"a {len(text)}-character text")


@check("train_bpe_tests", uses_device=False, contract=("ties broken by the smallest pair (a, b) of token ids",))
def train_breaks_ties_by_smallest_pair(impl, device):
    """among equally frequent pairs, train_bpe merges the smallest pair of ids first"""
    for text, n in [("zy xw vu ba", 4), ("dc ba dc ba", 3), ("qqpp ppqq", 4)]:
        expect_merges(impl.call("train_bpe", text, n), ref_train(text, n), "a text where pairs tie")


@check("train_bpe_tests", uses_device=False,
       contract=("count pairs within pieces only (each piece as often as it occurs)",))
def train_counts_pairs_within_pieces(impl, device):
    """train_bpe never merges across the pieces GPT-2's pattern cuts, and weighs pieces by frequency"""
    text = "dog. dog! dog? cat... cat's 123 4567\n\n  dog\tdog" * 3
    got = impl.call("train_bpe", text, 25)
    crossing = [m for m in got if len(regex.findall(GPT2_PATTERN, (m[0] + m[1]).decode("utf-8", "replace"))) > 1]
    expect(not crossing, "a merge spans two pre-tokens: count pairs inside each piece of "
                         "regex.findall(pattern, text), never across them")
    expect_merges(got, ref_train(text, 25), "a text of repeated words and punctuation")


@check("train_bpe_tests", uses_device=False, contract=("Training on megabytes needs the incremental version",))
def train_matches_reference_on_the_corpus(impl, device):
    """train_bpe learns the reference's merges on a slice of the course corpus"""
    text = corpus("train")[:40_000]
    expect_merges(impl.call("train_bpe", text, 80), ref_train(text, 80), "40,000 characters of the corpus")


# --- bpe_encode_piece -------------------------------------------------------------------------------------------
def toy_ranks(merges: list[tuple[bytes, bytes]]) -> dict[bytes, int]:
    ranks = {bytes([i]): i for i in range(256)}
    for a, b in merges:
        ranks[a + b] = len(ranks)
    return ranks


@check("bpe_encode_piece_tests", uses_device=False,
       contract=("merge the adjacent pair with the lowest rank until none is in `ranks`",))
def piece_matches_tiktoken(impl, device):
    """bpe_encode_piece with GPT-2's ranks encodes pre-tokens exactly like tiktoken"""
    rng = inputs.Random(4)
    chunks = regex.findall(GPT2_PATTERN, corpus("val")[:60_000])
    pieces = sorted({c.encode("utf-8") for c in rng.sample(chunks, 400)}) + \
        [" antidisestablishmentarianism".encode(), " 東京タワー".encode(), "🏳️‍🌈".encode(), b"\n\n\n"]
    got = impl.call("bpe_encode_piece", pieces)
    enc = gpt2()
    wrong = sum(g != enc.encode_ordinary(p.decode("utf-8")) for g, p in zip(got, pieces))
    expect(wrong == 0, f"bpe_encode_piece differs from GPT-2's tokenizer on {wrong} of {len(pieces)} pre-tokens")


@check("bpe_encode_piece_tests", uses_device=False,
       contract=("merging whichever pair comes first in the text does not",))
def piece_merges_lowest_rank_first(impl, device):
    """bpe_encode_piece merges the lowest-ranked pair first, not the leftmost mergeable one"""
    ranks = toy_ranks([(b"c", b"d"), (b"b", b"c"), (b"a", b"b"), (b"ab", b"cd"), (b"e", b"e")])
    cases = [(b"abcd", [ranks[b"abcd"]]), (b"abc", [97, ranks[b"bc"]]), (b"eee", [ranks[b"ee"], 101]),
             (b"eeee", [ranks[b"ee"], ranks[b"ee"]]), (b"xabcdx", [120, ranks[b"abcd"], 120])]
    got = impl.call("bpe_encode_piece", [p for p, _ in cases], ranks)
    for (piece, want), ids in zip(cases, got):
        expect(ids == want, f"on a {len(piece)}-byte piece bpe_encode_piece gives {len(ids)} ids where "
                            f"{len(want)} are expected: merge the pair of lowest rank first (the leftmost of equal "
                            "ranks), then look again")


@check("bpe_encode_piece_tests", uses_device=False, contract=("Empty input -> []", "start from its single bytes"))
def piece_edges(impl, device):
    """bpe_encode_piece handles empty input, single bytes and bytes that are not valid UTF-8"""
    pieces = [b"", b"a", b"\xff", b"\xff\xfe\x00", "é".encode()[:1]]
    got = impl.call("bpe_encode_piece", pieces)
    ranks = gpt2_ranks()
    for piece, ids in zip(pieces, got):
        expect(ids == [ranks[piece[i:i + 1]] for i in range(len(piece))],
               f"a {len(piece)}-byte piece with no merges must give one id per byte (its rank)")


# --- BPETokenizer ------------------------------------------------------------------------------------------------
HARD_CASES = {
    "multiple spaces": "a  b   c    d     ", "leading and trailing spaces": "   hello world   ",
    "newlines": "line\n\nline\r\n\n\n   indented\n", "tabs": "\tx\t\ty \t z", "digits": "1 12 123 1234 12345 3.14159 1,000,000",
    "contractions": "I'm you're he's we've they'll she'd DON'T 'tis o'er", "emoji": "👋🏽 🏳️‍🌈 👨‍👩‍👧 🤖!",
    "accents": "naïve café résumé Zürich São Paulo", "CJK": "東京タワーは高い。中文，한국어",
    "the empty string": "", "only whitespace": " \n \t ", "punctuation runs": "?!... --- ***!!!???",
    "mixed scripts": "Привет мир, مرحبا, שלום, नमस्ते",
}


@check("bpe_tokenizer_tests", uses_device=False,
       contract=("equal to OpenAI's `tiktoken` token for token",
                 "pre-split with the pattern, each piece encoded with bpe_encode_piece"))
def bpe_matches_tiktoken_on_validation_split(impl, device):
    """BPETokenizer with GPT-2's ranks equals tiktoken on the whole validation split"""
    text = corpus("val")
    got = impl.call("bpe_encode", [text], GPT2_SPECIAL_TOKENS)[0]
    want = gpt2().encode_ordinary(text)
    expect(got == want, f"on the validation split, BPETokenizer.encode gives {first_difference(got, want)}")


@check("bpe_tokenizer_tests", uses_device=False, contract=("equal to OpenAI's `tiktoken` token for token",))
def bpe_matches_tiktoken_on_hard_cases(impl, device):
    """BPETokenizer equals tiktoken on spaces, newlines, digits, contractions, emoji, accents, CJK and ''"""
    names = list(HARD_CASES)
    got = impl.call("bpe_encode", [HARD_CASES[n] for n in names], GPT2_SPECIAL_TOKENS)
    enc = gpt2()
    wrong = [n for n, ids in zip(names, got) if ids != enc.encode_ordinary(HARD_CASES[n])]
    expect(not wrong, f"BPETokenizer.encode differs from GPT-2's tokenizer on: {', '.join(wrong)}")


@check("bpe_tokenizer_tests", uses_device=False,
       contract=('special tokens named in allowed_special (or all of them when it is "all") become their ids',
                 "special-looking text included, is ordinary text",
                 "Raise ValueError for an allowed_special that is not one of the tokenizer's special tokens"))
def bpe_special_tokens_only_when_allowed(impl, device):
    """special tokens become one id only when allowed; repeated, adjacent and broken ones are handled"""
    specials = {**GPT2_SPECIAL_TOKENS, "<|fim|>": 50257}
    reference = tiktoken.Encoding("gpt2-fim", pat_str=GPT2_PATTERN, mergeable_ranks=gpt2_ranks(),
                                  special_tokens=specials)
    texts = ["<|endoftext|>", "a<|endoftext|><|endoftext|>b", "<|endof<|endoftext|>text|>", "x <|fim|> y<|endoftext|>",
             "<|endoftext|", "no specials here"]
    for allowed in [(), {"<|endoftext|>"}, "all"]:
        got = impl.call("bpe_encode", texts, specials, allowed_special=allowed)
        for text, ids in zip(texts, got):
            want = reference.encode(text, allowed_special=allowed if allowed == "all" else set(allowed),
                                    disallowed_special=())
            if ids != want:
                fail(f"with allowed_special={allowed!r}: " + (
                    "a special token that is not allowed must be encoded as ordinary text" if not allowed else
                    "an allowed special token must become its single id, and the text around it is encoded on its own"))
    expect_raises(impl, "ValueError", "bpe_encode", ["x"], specials, allowed_special={"<|nope|>"},
                  what="encode(text, allowed_special={'<|nope|>'})", why="it is not one of the tokenizer's special tokens")


@check("bpe_tokenizer_tests", uses_device=False,
       contract=("the tokens' bytes joined (a special token's bytes are its text in UTF-8)",
                 'decoded as UTF-8 with errors="replace"'))
def bpe_decodes_bytes_like_tiktoken(impl, device):
    """decode joins bytes before decoding: split characters, invalid UTF-8 and special ids decode like tiktoken"""
    enc = gpt2()
    rng = inputs.Random(5)
    sequences = [enc.encode("👋🏽 東京"), [enc.encode("👋")[0]], list(range(188, 200)), [50256, 0, 50256], []]
    sequences += [[rng.randrange(50257) for _ in range(30)] for _ in range(20)]
    sequences += [[rng.randrange(256) for _ in range(10)] for _ in range(20)]  # mostly single, partial bytes
    got = impl.call("bpe_decode", sequences, GPT2_SPECIAL_TOKENS)
    for ids, text in zip(sequences, got):
        expect(type(text) is str, "decode must return a str")
        expect(text == enc.decode(ids), "decode differs from tiktoken: join all the tokens' bytes first, then "
                                        "decode them once with errors='replace'")


@check("bpe_tokenizer_tests", uses_device=False, contract=("For every string, decode(encode(text)) == text",))
def bpe_round_trips_random_unicode(impl, device):
    """on random Unicode text, encode equals tiktoken and decode(encode(text)) == text"""
    enc = gpt2()

    def wrong(text: str) -> bool:
        ids, decoded = impl.call("bpe_round_trip", GPT2_SPECIAL_TOKENS, text)
        return ids != enc.encode_ordinary(text) or decoded != text

    if wrong("héllo wörld 👋"):  # code that raises, or is wrong on plain text, fails here, before a search shrinks it
        fail("on 'héllo wörld 👋', encode differs from GPT-2's tokenizer or decode does not give the text back")
    try:
        example = find(st.text(min_size=1, max_size=40), wrong, settings=SEARCH)
    except NoSuchExample:
        return
    fail(f"on {describe_text(example)}, encode differs from GPT-2's tokenizer or decode does not give the text back")


# --- load_gpt2_ranks ---------------------------------------------------------------------------------------------
@check("load_gpt2_ranks_tests", uses_device=False,
       contract=("GPT-2's ranks (bytes -> id) for its 50,256 ordinary tokens (not <|endoftext|>), from encoder.json",
                 "**not in byte order**"))
def gpt2_ranks_equal_tiktoken(impl, device):
    """load_gpt2_ranks gives tiktoken's GPT-2 ranks: 50,256 byte strings and their ids"""
    got = impl.call("load_gpt2_ranks")
    expect(got["key_types"] == ["bytes"] and got["value_types"] == ["int"],
           f"the keys must be bytes and the values int, found {got['key_types']} -> {got['value_types']}")
    want = gpt2_ranks()
    expect(len(got["ranks"]) == len(want), f"{len(got['ranks'])} tokens where GPT-2 has {len(want)} ordinary ones")
    wrong = sum(got["ranks"].get(k) != v for k, v in want.items())
    expect(wrong == 0, f"{wrong} tokens have other bytes or ids than GPT-2's: turn each character of a token string "
                       "back into its byte with the inverse of bytes_to_unicode() (not str.encode)")


@check("load_gpt2_ranks_tests", uses_device=False,
       contract=('merge k (line k after the version line, "left right") must produce the token with id 256 + k; raise ValueError if it does not',))
def gpt2_ranks_reject_mismatched_files(impl, device):
    """load_gpt2_ranks raises ValueError when the merges file disagrees with encoder.json"""
    expect_raises(impl, "ValueError", "load_gpt2_ranks", corrupt_merges=True, works=((), {}),
                  what="load_gpt2_ranks with two merges swapped", why="merge k must produce token 256 + k")


# --- encode_iterable ---------------------------------------------------------------------------------------------
def random_cuts(text: str, rng: random.Random, n: int) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), min(n, len(text) - 1)))
    return [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]


@check("encode_iterable_tests", uses_device=False,
       contract=("The result must equal encoding the whole text at once, wherever the pieces are cut",
                 "a piece may end anywhere, even inside a word or a special token"))
def iterable_equals_encoding_the_whole_text(impl, device):
    """encode_iterable gives the ids of the whole text, wherever the pieces are cut"""
    rng = inputs.Random(6)
    enc = gpt2()
    text = corpus("val")[:20_000] + "\n\n   x  <|endoftext|>  \n <|endoftext|><|endoftext|>end  \n"
    for allowed in [(), {"<|endoftext|>"}]:
        want = enc.encode(text, allowed_special=set(allowed), disallowed_special=())
        lines = text.splitlines(keepends=True)
        for name, pieces in [("lines", lines), ("random cuts", random_cuts(text, rng, 3000)),
                             ("single characters", list(text[-300:]))]:
            expected = want if name != "single characters" else enc.encode(text[-300:], allowed_special=set(allowed),
                                                                          disallowed_special=())
            got = impl.call("encode_iterable", pieces, allowed_special=allowed)
            expect(got == expected, f"with pieces cut at {name} (allowed_special={allowed!r}), encode_iterable gives "
                                    f"{first_difference(got, expected)}: a pre-token or special token cut in two "
                                    "must wait for the rest")


@check("encode_iterable_tests", uses_device=False, contract=("reading `pieces` lazily",))
def iterable_streams_lazily(impl, device):
    """encode_iterable yields ids before it has read all of its input"""
    lines = [f"Line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(5000)]
    got = impl.call("encode_iterable_laziness", lines, 100)
    expect(len(got["first"]) == 100, "encode_iterable yielded fewer ids than the text has")
    expect(got["consumed"] < 50, f"encode_iterable read {got['consumed']} of {got['total']} pieces before the first "
                                 "100 ids: yield ids as soon as they are final instead of reading everything first")


# --- chars_per_token ---------------------------------------------------------------------------------------------
@check("chars_per_token_tests", uses_device=False,
       contract=("characters per token, as a Python float", "Raise ValueError for an empty text"))
def chars_per_token_measures_compression(impl, device):
    """chars_per_token divides characters by tokens, as a float, and rejects empty text"""
    text = corpus("val")[:5000] + " 東京 👋"
    for kind, n_tokens in [("chars", len(text)), ("bytes", len(text.encode())), ("gpt2", len(gpt2().encode_ordinary(text)))]:
        got = impl.call("chars_per_token", text, kind)
        expect(type(got) is float, f"chars_per_token must return a Python float, got {type(got).__name__}")
        expect(abs(got - len(text) / n_tokens) < 1e-12, "chars_per_token must be len(text) / number of tokens")
    expect_raises(impl, "ValueError", "chars_per_token", "", "chars", what="chars_per_token('')",
                  why="an empty text has no compression")


# --- SlidingWindowDataset -----------------------------------------------------------------------------------------
def window_count(n: int, max_length: int, stride: int) -> int:
    return len(range(0, n - max_length, stride))  # a window starting at s needs ids s .. s + max_length


@check("sliding_window_dataset_tests", uses_device=False,
       contract=("Only windows that fit entirely (max_length + 1 ids) are kept",))
def windows_count_every_edge_case(impl, device):
    """len() counts exactly the windows that fit, for every length, max_length and stride up to 9"""
    wrong = []
    for n in range(0, 12):
        for max_length in range(1, 10):
            for stride in range(1, 10):
                got = impl.call("sliding_window_dataset", list(range(n)), max_length, stride)["length"]
                if got != window_count(n, max_length, stride):
                    wrong.append((n, max_length, stride))
    if wrong:
        fail(f"len() is wrong for {len(wrong)} of 972 combinations of length, max_length and stride: count the "
             "starts 0, stride, 2*stride, ... whose window and its target (max_length + 1 ids) fit")


@check("sliding_window_dataset_tests", uses_device=False,
       contract=("Window i starts at i * stride", "its target the max_length ids one position later"))
def windows_hold_inputs_and_shifted_targets(impl, device):
    """window i holds ids from i*stride, and its target is the same window shifted by one"""
    ids = torch.randint(0, 50257, (103,), generator=make_generator(7))
    for max_length, stride in [(8, 8), (8, 3), (5, 11), (102, 1)]:
        n = window_count(len(ids), max_length, stride)
        got = impl.call("sliding_window_dataset", ids.tolist(), max_length, stride, list(range(n)) + [-1])
        for i, item in enumerate(got["items"]):
            expect(len(item) == 2, "each item must be a pair (inputs, targets)")
            start = (i if i < n else n - 1) * stride
            x = expect_tensor(item[0], "inputs", shape=(max_length,), dtype=torch.long)
            y = expect_tensor(item[1], "targets", shape=(max_length,), dtype=torch.long)
            expect(torch.equal(x, ids[start:start + max_length]),
                   f"inputs of window {i} must be the ids from position i * stride (stride={stride})"
                   + ("; index -1 is the last window" if i == n else ""))
            expect(torch.equal(y, ids[start + 1:start + max_length + 1]),
                   "targets must be the inputs shifted by one position (the next token at every position)")


@check("sliding_window_dataset_tests", uses_device=False, contract=("both 1-d torch.long tensors",))
def windows_are_long_tensors_from_any_input(impl, device):
    """items are torch.long whatever the input (a list, an int32 tensor)"""
    for ids in [torch.arange(20, dtype=torch.int32), list(range(20)), torch.arange(20)]:
        got = impl.call("sliding_window_dataset", ids, 4, 4, [0])
        x, y = got["items"][0]
        expect_tensor(x, "inputs", shape=(4,), dtype=torch.long)
        expect_tensor(y, "targets", shape=(4,), dtype=torch.long)


@check("sliding_window_dataset_tests", uses_device=False,
       contract=("Raise ValueError if max_length < 1 or stride < 1",
                 "an index past the end (or before the start) raises IndexError"))
def windows_reject_bad_arguments(impl, device):
    """bad max_length or stride raise ValueError; an index past the end raises IndexError"""
    for max_length, stride in [(0, 1), (4, 0), (-1, 2)]:
        expect_raises(impl, "ValueError", "sliding_window_dataset", list(range(20)), max_length, stride,
                      what=f"SlidingWindowDataset(ids, max_length={max_length}, stride={stride})",
                      why="max_length and stride must be >= 1")
    expect_raises(impl, "IndexError", "sliding_window_index_error", list(range(20)), 4, 4, 4,
                  what="dataset[len(dataset)]", why="indexing works as a list's; a for loop over the dataset relies "
                                                    "on it to stop")


# --- create_dataloader --------------------------------------------------------------------------------------------
def ref_windows(ids: list[int], max_length: int, stride: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    t = torch.tensor(ids)
    return [(t[s:s + max_length], t[s + 1:s + max_length + 1]) for s in range(0, len(ids) - max_length, stride)]


def expect_batches(got: list, want: list, what: str) -> None:
    expect(len(got) == len(want), f"{what}: {len(got)} batches where {len(want)} are expected")
    for (x, y), (wx, wy) in zip(got, want):
        expect_tensor(x, "a batch of inputs", shape=wx.shape, dtype=torch.long)
        expect_tensor(y, "a batch of targets", shape=wy.shape, dtype=torch.long)
        expect(torch.equal(x, wx) and torch.equal(y, wy), f"{what}: the batches hold other windows than expected")


@check("create_dataloader_tests", uses_device=False,
       contract=("batches of shape (batch_size, max_length) over SlidingWindowDataset",))
def loader_batches_in_order_without_shuffle(impl, device):
    """without shuffling, batches are consecutive windows, shaped (batch_size, max_length)"""
    ids = list(range(1000, 1100))
    got = impl.call("create_dataloader", ids, batch_size=3, max_length=6, stride=5, shuffle=False, drop_last=False)
    windows = ref_windows(ids, 6, 5)  # 19 windows: the last batch has one
    want = [tuple(torch.stack(w) for w in zip(*windows[i:i + 3])) for i in range(0, len(windows), 3)]
    expect_batches(got["batches"], want, "with shuffle=False, drop_last=False")


@check("create_dataloader_tests", uses_device=False, contract=("drop_last: bool = True",))
def loader_drop_last_controls_the_last_batch(impl, device):
    """drop_last decides whether a last, smaller batch is kept"""
    ids = list(range(101))  # 20 windows of 5: batches of 6 leave 2 over
    for drop_last, n in [(True, 3), (False, 4)]:
        got = impl.call("create_dataloader", ids, batch_size=6, max_length=5, stride=5, shuffle=False,
                        drop_last=drop_last)
        expect(got["length"] == n and len(got["batches"]) == n,
               f"with drop_last={drop_last}, 20 windows in batches of 6 make {n} batches, not {len(got['batches'])}")


@check("create_dataloader_tests", uses_device=False,
       contract=("drawn from `generator` alone", "the same seed gives the same batches",
                 "can prepare them in background workers"))
def loader_shuffles_with_the_given_generator(impl, device):
    """with shuffle=True, the generator alone decides the order (same seed, same batches; another seed, another
    order), every batch holds distinct windows, and workers are passed on"""
    ids = list(range(500))
    kwargs = dict(batch_size=4, max_length=8, stride=8, shuffle=True, drop_last=True)
    got = impl.call("create_dataloader", ids, seed=11, global_seed=1, **kwargs)["batches"]
    again = impl.call("create_dataloader", ids, seed=11, global_seed=2, **kwargs)["batches"]
    other = impl.call("create_dataloader", ids, seed=12, global_seed=1, **kwargs)["batches"]
    windows = ref_windows(ids, 8, 8)  # 62 windows: 15 batches of 4, 2 windows left out
    index = {tuple(x.tolist()): i for i, (x, _) in enumerate(windows)}
    expect(len(got) == len(windows) // 4, f"62 windows in batches of 4 with drop_last=True make 15 batches, not "
                                          f"{len(got)}")
    order = []
    for x, y in got:
        expect_tensor(x, "a batch of inputs", shape=(4, 8), dtype=torch.long)
        expect_tensor(y, "a batch of targets", shape=(4, 8), dtype=torch.long)
        for row, target in zip(x.tolist(), y.tolist()):
            expect(tuple(row) in index and target == windows[index[tuple(row)]][1].tolist(),
                   "with shuffle=True, a batch holds something that is not one of the dataset's windows")
            order.append(index[tuple(row)])
    expect(len(set(order)) == len(order), "with shuffle=True, one epoch gave some window twice: shuffle the order "
                                          "of the windows, do not draw them at random")
    expect(order != sorted(order), "with shuffle=True, the windows came in their original order")
    expect(len(again) == len(got) and all(torch.equal(a[0], b[0]) for a, b in zip(got, again)),
           "two loaders with the same seeded generator gave different batches: the generator, not the global "
           "random state, must decide the order")
    expect(len(other) != len(got) or not all(torch.equal(a[0], b[0]) for a, b in zip(got, other)),
           "generators with different seeds gave the same order: the generator must decide the order")
    workers = impl.call("create_dataloader", ids[:50], num_workers=2, batch_size=2, max_length=4, stride=4,
                        shuffle=False)
    expect(workers["num_workers"] == 2, "num_workers must be passed on to the DataLoader")


# --- GPTEmbedding ------------------------------------------------------------------------------------------------
@check("gpt_embedding_tests",
       contract=("tok_emb of each id plus pos_emb of its position 0 .. seq - 1, on the device of token_ids",))
def embedding_adds_token_and_position_vectors(impl, device):
    """GPTEmbedding returns tok_emb(ids) + pos_emb(positions), (batch, seq, dim), on the ids' device"""
    g = make_generator(8)
    for sizes, shape in [((97, 12, 16), (3, 7)), ((97, 12, 16), (1, 12)), ((50, 4, 8), (2, 1))]:
        ids = torch.randint(0, sizes[0], shape, generator=g)
        got = impl.call("gpt_embedding", sizes, ids, device)
        out = expect_tensor(got["output"], "the embeddings", shape=(*shape, sizes[2]), dtype=torch.float32,
                            device=device)
        expect(tuple(got["tok_emb"].shape) == (sizes[0], sizes[2]) and tuple(got["pos_emb"].shape) == sizes[1:],
               "tok_emb must be vocab_size x emb_dim and pos_emb context_length x emb_dim")
        want = got["tok_emb"][ids.to(device)] + got["pos_emb"][:shape[1]].unsqueeze(0)
        if not torch.allclose(out, want, rtol=1e-6, atol=1e-6):
            if torch.allclose(out, got["tok_emb"][ids.to(device)]):
                fail("the position embeddings are not added")
            fail("the embeddings differ from tok_emb(ids) + pos_emb(0 .. seq - 1)")


@check("gpt_embedding_tests", contract=("Both are learned",))
def embedding_gradients_reach_both_tables(impl, device):
    """gradients reach the token rows used and the first seq position rows, and nothing else"""
    ids = torch.tensor([[1, 5, 5], [7, 1, 2]])
    got = impl.call("gpt_embedding", (10, 6, 4), ids, device, backward=True)
    grads = got["grads"]
    expect(grads["tok_emb"] is not None and grads["pos_emb"] is not None,
           "both embedding tables must be trainable parameters that receive gradients")
    used = grads["tok_emb"].abs().sum(dim=1) > 0
    expect(used.cpu().tolist() == [i in (1, 2, 5, 7) for i in range(10)], "only the rows of used token ids get gradients")
    pos = grads["pos_emb"].abs().sum(dim=1) > 0
    expect(pos.cpu().tolist() == [True, True, True, False, False, False],
           "only the position rows 0 .. seq - 1 get gradients")


@check("gpt_embedding_tests", contract=("Raise ValueError if seq > context_length",))
def embedding_rejects_sequences_longer_than_context(impl, device):
    """a sequence longer than context_length raises ValueError"""
    expect_raises(impl, "ValueError", "gpt_embedding", (10, 4, 8), torch.zeros(2, 5, dtype=torch.long), device,
                  what="GPTEmbedding(context_length=4) on 5 tokens", why="there are only 4 position embeddings",
                  works=(((10, 4, 8), torch.zeros(2, 4, dtype=torch.long), device), {}))
