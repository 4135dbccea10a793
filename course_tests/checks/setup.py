"""Checks for 01_setup: counting parameters, greedy decoding, temperature, top-k, sampling and generation.

References are independent of the course's solutions: `model.parameters()`, `torch.argmax`, `torch.softmax`,
`torch.topk` and Hugging Face's own `GPT2LMHeadModel.generate` on a tiny GPT-2 built here from a seed.
"""
from __future__ import annotations


import torch

from course_tests import models
from gradebox.checks import builds_on, check
from gradebox.expect import expect, expect_close, expect_int, expect_raises, expect_tensor, fail
from gradebox.student import StudentError
from gradebox import tensors
from gradebox.inputs import make_generator

ASSIGNMENT = "01_setup"
builds_on(ASSIGNMENT, "sample_next_token_tests", ["greedy_next_token", "apply_temperature", "top_k_filter"])
builds_on(ASSIGNMENT, "generate_tests", ["sample_next_token"])


def spread_logits(rows: int, vocab: int, seed: int) -> torch.Tensor:
    """Logits whose entries in each row are at least 0.25 apart: no near-ties, so argmax and top-k are unambiguous
    on every device."""
    g = make_generator(seed)
    return torch.stack([torch.randperm(vocab, generator=g).float() * 0.25 - vocab / 8 for _ in range(rows)])


# --- count_parameters ---------------------------------------------------------------------------------------
def reference_count(model, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@check("count_parameters_tests",
       contract=("The number of scalar parameters in `model`, as a Python int", "counts once"))
def counts_every_parameter_once(impl, device):
    """count_parameters counts every parameter once, tied weights included, as a Python int"""
    for spec in (dict(seed=1, tie_word_embeddings=True), dict(seed=2, n_layer=1, vocab_size=57)):
        got = expect_int(impl.call("count_parameters", spec), "count_parameters(model)")
        model = models.tiny_gpt2(**spec)
        want = reference_count(model)
        if got == want:
            continue
        if got == sum(t.numel() for t in model.state_dict().values()):
            fail("count_parameters counts the tied token embedding twice: state_dict() lists the shared weight "
                 "under two names, model.parameters() yields it once")
        if got == len(list(model.parameters())):
            fail("count_parameters returned the number of parameter tensors; count their elements (p.numel())")
        fail(f"count_parameters returned {'more' if got > want else 'fewer'} parameters than the model has")


@check("count_parameters_tests",
       contract=("With trainable_only=True, count only the parameters that have requires_grad=True",))
def trainable_only_counts_trainable(impl, device):
    """trainable_only=True counts only parameters with requires_grad; False counts all of them"""
    spec, frozen = dict(seed=3), ("transformer.wte", "transformer.wpe")
    model = models.tiny_gpt2(**spec)
    for name, p in model.named_parameters():
        p.requires_grad_(not name.startswith(frozen))
    for trainable_only in (True, False):
        got = expect_int(impl.call("count_parameters", spec, trainable_only=trainable_only, freeze=frozen),
                         "count_parameters(model, trainable_only)")
        expect(got == reference_count(model, trainable_only),
               f"with some parameters frozen, count_parameters(model, trainable_only={trainable_only}) is wrong: "
               + ("only parameters with requires_grad=True count" if trainable_only else
                  "frozen parameters still belong to the model"))


@check("count_parameters_tests", contract=("built on the meta device",))
def counts_gpt2_small_without_memory(impl, device):
    """count_parameters works on a full GPT-2 small built on the meta device (no weights in memory)"""
    got = expect_int(impl.call("count_parameters", {}, meta=True), "count_parameters(gpt2_small)")
    expect(got == reference_count(models.meta_gpt2()),
           "count_parameters is wrong for GPT-2 small: count with p.numel() on the parameters themselves, "
           "without copying them (.cpu(), .numpy() and .tolist() fail for weights that are not in memory)")


# --- greedy_next_token --------------------------------------------------------------------------------------
@check("greedy_next_token_tests", contract=("shape (batch,), dtype torch.long, on the same device",))
def greedy_shape_dtype_device(impl, device):
    """greedy_next_token returns one token id per row: shape (batch,), dtype int64, on the input's device"""
    for rows, vocab in ((5, 37), (1, 12)):
        out = impl.call("greedy_next_token", spread_logits(rows, vocab, seed=10 + rows), device)
        expect_tensor(out, f"greedy_next_token(logits of shape ({rows}, {vocab}))", shape=(rows,),
                      dtype=torch.long, device=device)


@check("greedy_next_token_tests", contract=("Returns the id of the highest-scoring token of each row",))
def greedy_picks_highest(impl, device):
    """greedy_next_token picks the highest logit of each row"""
    for rows, vocab in ((6, 40), (9, 4)):  # a batch larger than the vocabulary catches the wrong axis
        logits = spread_logits(rows, vocab, seed=20 + rows)
        out = expect_tensor(impl.call("greedy_next_token", logits, device), "greedy_next_token(logits)",
                            shape=(rows,))
        expect(torch.equal(out.cpu().long(), logits.argmax(dim=-1)),
               "greedy_next_token did not pick the highest logit of every row "
               "(argmax over the last axis, the vocabulary, not the batch)")


# --- apply_temperature --------------------------------------------------------------------------------------
@check("apply_temperature_tests", contract=("Divide the logits by `temperature`",))
def temperature_divides_logits(impl, device):
    """apply_temperature divides the logits by the temperature and keeps shape, dtype and device"""
    logits = torch.randn(3, 17, generator=make_generator(30))
    for t in (0.5, 1.0, 2.5):
        res = impl.call("apply_temperature", logits, t, device)
        out = expect_tensor(res["output"], f"apply_temperature(logits, {t})", shape=logits.shape,
                            dtype=logits.dtype, device=device)
        hint = "it looks like the logits were multiplied by the temperature" \
            if torch.allclose(out.cpu(), logits * t) and t != 1.0 else "expected logits / temperature"
        expect_close(out, logits / t, f"apply_temperature(logits, {t})", device, hint)


@check("apply_temperature_tests", contract=("return a new tensor (the input is left unchanged)",))
def temperature_leaves_input_alone(impl, device):
    """apply_temperature returns a new tensor and leaves the caller's logits unchanged"""
    logits = torch.randn(2, 9, generator=make_generator(31))
    res = impl.call("apply_temperature", logits, 2.0, device)
    out = expect_tensor(res["output"], "apply_temperature(logits, 2.0)", shape=logits.shape, dtype=logits.dtype,
                        device=device)
    expect_close(out, logits / 2.0, "apply_temperature(logits, 2.0)", device)  # it did the work, then:
    expect(not res["input_changed"], "apply_temperature changed the logits it was given (an in-place /= or "
                                     "div_): return a new tensor, the caller still needs the original")


@check("apply_temperature_tests", contract=("Raise ValueError if temperature <= 0",))
def temperature_rejects_nonpositive(impl, device):
    """apply_temperature raises ValueError for a temperature <= 0"""
    logits = torch.randn(2, 5, generator=make_generator(32))
    for t in (0.0, -1.0):
        expect_raises(impl, "ValueError", "apply_temperature", logits, t, device,
                      what=f"apply_temperature(logits, {t})", works=((logits, 0.5, device), {}),
                      why="dividing by zero or a negative temperature gives inf/NaN or inverts the ranking")


# --- top_k_filter -------------------------------------------------------------------------------------------
def _finite_per_row(out: torch.Tensor) -> list[int]:
    return torch.isfinite(out).sum(dim=-1).tolist()


@check("top_k_filter_tests", contract=("Keep the k largest logits of each row (last axis) and set all others to -inf",))
def top_k_keeps_exactly_k(impl, device):
    """top_k_filter leaves exactly k finite logits per row and sets the rest to -inf"""
    logits = spread_logits(4, 20, seed=40)
    for k in (5, 2):
        out = expect_tensor(impl.call("top_k_filter", logits, k, device)["output"], f"top_k_filter(logits, {k})",
                            shape=logits.shape, dtype=logits.dtype, device=device).cpu()
        removed = out[~torch.isfinite(out)]
        expect(bool((removed == float("-inf")).all()),
               "filtered logits must be -inf (not NaN or +inf), so that softmax gives them probability 0")
        counts = _finite_per_row(out)
        if any(c == 20 for c in counts):
            fail("top_k_filter kept finite values outside the top k: set the others to -inf "
                 "(0 is still a valid logit and keeps its probability)")
        expect(all(c == k for c in counts),
               f"top_k_filter(logits, k={k}) kept {sorted(set(counts))} finite logits per row instead of {k}"
               + (" (off by one?)" if any(abs(c - k) == 1 for c in counts) else ""))


@check("top_k_filter_tests", contract=("Keep the k largest logits of each row (last axis)",))
def top_k_keeps_the_largest(impl, device):
    """top_k_filter keeps the k largest logits of each row, unchanged and in place"""
    logits = spread_logits(5, 16, seed=41)
    out = expect_tensor(impl.call("top_k_filter", logits, 4, device)["output"], "top_k_filter(logits, 4)",
                        shape=logits.shape).cpu()
    top = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, logits.topk(4, dim=-1).indices, True)
    expect(torch.equal(torch.isfinite(out), top),
           "top_k_filter kept the wrong entries: keep the k largest of each row (not the smallest, "
           "and not the largest of the whole batch)")
    expect(torch.equal(out[top], logits[top]), "top_k_filter changed the values it kept; only remove the others")


@check("top_k_filter_tests", contract=("If k >= the vocabulary size, nothing is removed", "Raise ValueError if k < 1"))
def top_k_edge_cases(impl, device):
    """top_k_filter: k=1 keeps the argmax, k >= vocabulary size changes nothing, k < 1 raises ValueError"""
    logits = spread_logits(3, 10, seed=42)
    out = impl.call("top_k_filter", logits, 1, device)["output"]
    out = expect_tensor(out, "top_k_filter(logits, 1)", shape=logits.shape).cpu()
    expect(torch.equal(torch.isfinite(out).float().argmax(-1), logits.argmax(-1)) and _finite_per_row(out) == [1] * 3,
           "top_k_filter(logits, 1) should keep exactly the highest logit of each row")
    for k in (10, 15):
        out = expect_tensor(impl.call("top_k_filter", logits, k, device)["output"], f"top_k_filter(logits, {k})",
                            shape=logits.shape).cpu()
        expect(torch.equal(out, logits), f"with k={k} >= vocabulary size 10, top_k_filter should return the "
                                         "logits unchanged (clamp k to the vocabulary size)")
    expect_raises(impl, "ValueError", "top_k_filter", logits, 0, device, what="top_k_filter(logits, 0)",
                  why="keeping no token leaves nothing to sample")


@check("top_k_filter_tests", contract=("return a new tensor",))
def top_k_leaves_input_alone(impl, device):
    """top_k_filter returns a new tensor and leaves the caller's logits unchanged"""
    res = impl.call("top_k_filter", spread_logits(2, 8, seed=43), 3, device)
    out = expect_tensor(res["output"], "top_k_filter(logits, 3)", shape=(2, 8), device=device)
    expect(_finite_per_row(out) == [3, 3], "top_k_filter(logits, 3) must leave 3 finite logits per row")  # the work
    expect(not res["input_changed"], "top_k_filter changed the logits it was given (masked_fill_ or item "
                                     "assignment on the input): work on a copy or use out-of-place ops")


# --- sample_next_token --------------------------------------------------------------------------------------
SAMPLES = 20000


def expect_frequencies(samples: torch.Tensor, probs: torch.Tensor, what: str) -> None:
    """Empirical frequencies within 5 standard errors (plus 0.002) of the expected probabilities."""
    freq = torch.bincount(samples.cpu().long(), minlength=probs.numel()).double() / samples.numel()
    p = probs.double()
    bound = 5 * torch.sqrt(p * (1 - p) / samples.numel()) + 2e-3
    zero = p == 0
    expect(not bool((freq[zero] > 0).any()), f"{what} sampled tokens whose probability should be 0")
    expect(bool(((freq - p).abs() <= bound).all()),
           f"{what}: the sampled frequencies (over {samples.numel()} draws) do not follow the expected "
           "distribution")


@check("sample_next_token_tests", contract=("shape (batch,), dtype torch.long, on its device",))
def sample_shape_dtype_device(impl, device):
    """sample_next_token returns one valid token id per row: shape (batch,), int64, on the input's device"""
    out = impl.call("sample_next_token", spread_logits(6, 11, seed=50), device, seed=1)
    out = expect_tensor(out, "sample_next_token(logits of shape (6, 11))", shape=(6,), dtype=torch.long,
                        device=device)
    expect(bool(((out >= 0) & (out < 11)).all()), "sample_next_token returned ids outside the vocabulary")


@check("sample_next_token_tests", contract=("temperature == 0 means greedy decoding",))
def sample_temperature_zero_is_greedy(impl, device):
    """temperature=0 picks the argmax, and a tiny positive temperature does too"""
    logits = spread_logits(8, 13, seed=51)
    for t in (0.0, 1e-3):
        out = expect_tensor(impl.call("sample_next_token", logits, device, temperature=t, seed=2),
                            f"sample_next_token(logits, temperature={t})", shape=(8,))
        expect(torch.equal(out.cpu().long(), logits.argmax(-1)),
               f"sample_next_token with temperature={t} should pick the highest logit of every row"
               + (" (treat temperature == 0 as greedy decoding)" if t == 0 else ""))


@check("sample_next_token_tests",
       contract=("Otherwise apply the temperature", "sample from the softmax with torch.multinomial"))
def sample_frequencies_match_softmax(impl, device):
    """sampled frequencies follow softmax(logits / temperature)"""
    row = torch.randn(8, generator=make_generator(52)) * 1.5
    for t in (1.0, 0.6):
        out = impl.call("sample_next_token", row.expand(SAMPLES, -1), device, temperature=t, seed=3)
        out = expect_tensor(out, f"sample_next_token(temperature={t})", shape=(SAMPLES,))
        expect_frequencies(out, torch.softmax(row / t, dim=-1), f"sample_next_token(temperature={t})")


@check("sample_next_token_tests",
       contract=("then top-k filtering (when top_k is given), then sample from the softmax",))
def sample_top_k_renormalises(impl, device):
    """with top_k, only the k most likely tokens are sampled, in proportion to their probabilities"""
    row = torch.randn(8, generator=make_generator(53))
    out = impl.call("sample_next_token", row.expand(SAMPLES, -1), device, temperature=1.0, top_k=3, seed=4)
    out = expect_tensor(out, "sample_next_token(top_k=3)", shape=(SAMPLES,))
    keep = row >= row.topk(3).values[-1]
    expect_frequencies(out, torch.softmax(row.masked_fill(~keep, float("-inf")), -1), "sample_next_token(top_k=3)")


@check("sample_next_token_tests",
       contract=("using `generator` for the randomness", "without touching anybody else's random state"))
def sample_uses_generator(impl, device):
    """sampling draws from the generator it is given: same seed, same tokens, whatever the global RNG"""
    logits = torch.randn(64, 8, generator=make_generator(54))
    first = impl.call("sample_next_token", logits, device, seed=5, global_seed=1)
    again = impl.call("sample_next_token", logits, device, seed=5, global_seed=2)
    other = impl.call("sample_next_token", logits, device, seed=6, global_seed=1)
    for out in (first, again, other):
        expect_tensor(out, "sample_next_token(logits, generator=g)", shape=(64,))
    expect(torch.equal(first.cpu(), again.cpu()),
           "two calls with identically seeded generators gave different tokens: pass generator=generator to "
           "torch.multinomial instead of using the global random state")
    expect(not torch.equal(first.cpu(), other.cpu()), "differently seeded generators gave identical tokens: the "
                                                      "samples do not depend on the generator")


# --- generate -----------------------------------------------------------------------------------------------
def hf_greedy(spec: dict, prompt: torch.Tensor, device: str, max_new_tokens: int, eos_token_id=None):
    """Hugging Face's own greedy generation, the independent reference."""
    model = models.tiny_gpt2(device=device, **spec)
    with models.quiet_transformers(), torch.no_grad():
        return model.generate(prompt.to(device), attention_mask=torch.ones_like(prompt, device=device),
                              max_new_tokens=max_new_tokens, do_sample=False, use_cache=False,
                              eos_token_id=eos_token_id, pad_token_id=eos_token_id).cpu()


def expect_generated(impl, result: dict, prompt: torch.Tensor, new: int, device: str, what: str) -> torch.Tensor:
    batch, length = prompt.shape
    out = result["output"]
    if type(out) is torch.Tensor and out.dim() == 2 and out.shape == (batch, new):
        fail(f"{what} returned only the new tokens: return the prompt followed by them, shape (batch, seq + new)")
    out = expect_tensor(out, what, shape=(batch, length + new), dtype=torch.long, device=device).cpu()
    expect(torch.equal(out[:, :length], prompt), f"{what} changed the prompt: the output must start with it")
    expect(not result["input_changed"], f"{what} modified the input_ids it was given")
    return out


@check("generate_tests",
       contract=("Append up to max_new_tokens tokens to input_ids (batch, seq) and return the whole sequences",))
def generate_greedy_matches_transformers(impl, device):
    """greedy generate returns the prompt plus max_new_tokens tokens, equal to transformers' generate"""
    spec = dict(seed=60)
    prompt = torch.randint(0, 101, (2, 5), generator=make_generator(60))
    res = impl.call("generate", spec, prompt, device, max_new_tokens=8, temperature=0.0)
    out = expect_generated(impl, res, prompt, 8, device, "generate(model, prompt, 8, temperature=0)")
    want = hf_greedy(spec, prompt, device, 8)
    expect(torch.equal(out, want), "greedy generate picked different tokens than transformers' generate: "
                                   "use the logits of the last position, logits[:, -1, :], at every step")


@check("generate_tests",
       contract=("feed the model at most its context length of tokens (the last model.config.n_positions)",))
def generate_crops_to_context(impl, device):
    """generate keeps going past the model's context length by feeding only the last context-length tokens"""
    spec, ctx = dict(seed=61, n_positions=16), 16
    prompt = torch.randint(0, 101, (1, 10), generator=make_generator(61))
    try:
        res = impl.call("generate", spec, prompt, device, max_new_tokens=20, temperature=0.0)
    except StudentError as err:
        if err.type_name != "IndexError":
            raise
        fail("generate raised IndexError once the text grew past the model's context length (position embeddings "
             "only go up to the context length): feed the model only the last context-length tokens")
    out = expect_generated(impl, res, prompt, 20, device, "generate past the context length")
    model = models.tiny_gpt2(device=device, **spec)
    with torch.no_grad():
        for t in range(10, 30):
            logits = model(out[:, max(0, t - ctx):t].to(device)).logits[0, -1]
            expect(int(logits.argmax()) == int(out[0, t]),
                   "past the context length, generate must feed the model its last context-length tokens "
                   "(input_ids[:, -context_length:]), not the first ones")


@check("generate_tests",
       contract=("a row that has produced it keeps producing it, and generation stops early once every row has",))
def generate_stops_at_eos(impl, device):
    """generate stops once every row has produced eos_token_id, and pads finished rows with it"""
    spec = dict(seed=62)
    prompt = torch.randint(0, 101, (2, 4), generator=make_generator(62))
    free = hf_greedy(spec, prompt, device, 12)[0, 4:].tolist()
    first_seen = [j for j, tok in enumerate(free) if tok not in free[:j]]
    eos = free[first_seen[min(2, len(first_seen) - 1)]]  # a token row 0 produces a few steps in
    # One row must stop early; two rows must also pad the row that finished first.
    for rows in (prompt[:1], prompt):
        want = hf_greedy(spec, rows, device, 12, eos_token_id=eos)
        res = impl.call("generate", spec, rows, device, max_new_tokens=12, temperature=0.0, eos_token_id=eos)
        what = f"generate(..., eos_token_id) on a batch of {len(rows)}"
        out = expect_tensor(res["output"], what, dtype=torch.long, device=device)
        expect(out.dim() == 2 and out.shape[0] == len(rows), f"{what} must return shape (batch, length)")
        if out.shape[1] == 4 + 12 and want.shape[1] < 4 + 12:
            fail(f"{what} ignored eos_token_id: stop as soon as every row has produced it")
        expect(out.shape == want.shape, f"{what} stopped at the wrong step: stop right after the step in which "
                                         "the last unfinished row produced eos_token_id")
        expect(torch.equal(out.cpu(), want), f"{what}: after a row produces eos_token_id, every later token of "
                                             "that row must be eos_token_id too")


@check("generate_tests", contract=("choose the next token with sample_next_token",))
def generate_sampling_reproducible(impl, device):
    """sampled generation honours temperature, top_k and the generator"""
    spec = dict(seed=63)
    # The same prompt for every student: whether a wrong top_k shows depends on the tokens sampled, and one code's
    # verdict must not depend on whose inputs it meets (test_mutants: no planted bug is caught on some inputs only).
    prompt = torch.randint(0, 101, (4, 3), generator=tensors.make_generator(63))
    kwargs = dict(max_new_tokens=10, temperature=0.8, top_k=4)
    first = impl.call("generate", spec, prompt, device, seed=7, global_seed=1, **kwargs)
    again = impl.call("generate", spec, prompt, device, seed=7, global_seed=2, **kwargs)
    other = impl.call("generate", spec, prompt, device, seed=8, global_seed=1, **kwargs)
    a, b, c = (expect_generated(impl, r, prompt, 10, device, "generate(..., temperature=0.8, top_k=4)")
               for r in (first, again, other))
    expect(torch.equal(a, b), "generate gave different text for identically seeded generators: pass the generator "
                              "on to sample_next_token")
    expect(not torch.equal(a, c), "generate gave identical text for different generators")
    model = models.tiny_gpt2(device=device, **spec)
    with torch.no_grad():
        for t in range(3, 13):
            top = model(a[:, :t].to(device)).logits[:, -1].topk(4).indices.cpu()
            expect(bool((top == a[:, t:t + 1]).any(-1).all()),
                   "generate sampled a token outside the top_k most likely ones: pass top_k on to "
                   "sample_next_token")


# 04_gpt's students write generate again, for their own GPTModel: the same checks run there through its adapters.
GENERATE_CHECKS = [generate_greedy_matches_transformers, generate_crops_to_context, generate_stops_at_eos,
                   generate_sampling_reproducible]
