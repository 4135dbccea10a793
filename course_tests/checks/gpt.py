"""Checks for 04_gpt: LayerNorm, GELU, the feed-forward network, the transformer block, the GPT model, loading
GPT-2 checkpoints, generation.

References are independent of the course's solutions: `F.layer_norm`, `F.gelu(approximate="tanh")`, and
Hugging Face's `GPT2Block` / `GPT2LMHeadModel` holding the student's own parameters (copied across by the mapping
below, which is the checks' own). Parameters are replaced by seeded random values before a comparison, so
LayerNorm's initial ones and zeros cannot hide a swapped weight and bias.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from course_tests import models
from course_tests.checks import setup
from gradebox.checks import builds_on, check, register
from gradebox.expect import expect, expect_close, expect_gradients, expect_raises, expect_tensor, fail
from gradebox.forbidden import forbid
from gradebox.inputs import make_generator
from gradebox.tensors import probe_loss

ASSIGNMENT = "04_gpt"
# The shortcuts that would skip what an exercise teaches (its instructions name them; gradebox.forbidden finds them).
forbid(ASSIGNMENT, "layer_norm_tests", "torch.nn.LayerNorm", "torch.nn.functional.layer_norm")
forbid(ASSIGNMENT, "gelu_tests", "torch.nn.functional.gelu", "torch.nn.GELU")
builds_on(ASSIGNMENT, "feed_forward_tests", ["gelu"])
builds_on(ASSIGNMENT, "transformer_block_tests", ["LayerNorm", "FeedForward"])
builds_on(ASSIGNMENT, "gpt_model_tests", ["TransformerBlock"])
builds_on(ASSIGNMENT, "load_gpt2_weights_tests", ["GPTModel"])
# The same function as assignment 1's generate, for the student's own model, stated in this notebook's words.
GENERATE_CONTRACT = {
    "generate_greedy_matches_transformers": (
        "Append up to max_new_tokens tokens to input_ids (batch, seq) and return the whole sequences",),
    "generate_crops_to_context": ("feed it at most model.cfg.context_length tokens",),
    "generate_stops_at_eos": ("with `eos_token_id` let finished rows keep producing it and stop once every row has",),
    "generate_sampling_reproducible": ("choose the next token with `sample_next_token`",
                                       "(temperature 0 is greedy; then temperature and top-k)"),
}
for _check in setup.GENERATE_CHECKS:
    register(ASSIGNMENT, "generate_tests", _check, contract=GENERATE_CONTRACT[_check.__name__])

HALF = {"cpu": torch.bfloat16, "cuda": torch.float16}
GPT2_SMALL_PARAMETERS = 124_439_808  # with tied embeddings, as published; untied adds 50257 * 768


def randn(*shape, seed: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=make_generator(seed)) * scale


def cfg_dict(vocab=61, ctx=12, emb=24, heads=3, layers=2, drop=0.0, tie=False, qkv_bias=True) -> dict:
    return dict(vocab_size=vocab, context_length=ctx, emb_dim=emb, n_heads=heads, n_layers=layers, drop_rate=drop,
                qkv_bias=qkv_bias, tie_weights=tie)


def expect_parameters(params: dict, shapes: dict, what: str) -> None:
    """The parameters the notebook names exist, with the right shapes, and there are no others."""
    missing = [n for n in shapes if n not in params]
    expect(not missing, f"{what} has no parameters named {missing}: use the attribute names the notebook gives")
    wrong = [f"{n} {tuple(params[n].shape)} instead of {shapes[n]}" for n in shapes
             if tuple(params[n].shape) != tuple(shapes[n])]
    expect(not wrong, f"{what}: wrong parameter shapes: {'; '.join(wrong)}")
    extra = sorted(set(params) - set(shapes))
    expect(not extra, f"{what} has parameters GPT-2 does not have: {extra}")


# --- the checks' own mapping from the student's parameter names to Hugging Face's GPT-2 ----------------------
def linear_shapes(prefix: str, n_in: int, n_out: int, bias: bool = True) -> dict:
    return {f"{prefix}weight": (n_out, n_in), **({f"{prefix}bias": (n_out,)} if bias else {})}


def block_shapes(c: dict, prefix: str = "") -> dict:
    e = c["emb_dim"]
    shapes = {f"{prefix}{n}.{p}": (e,) for n in ("norm1", "norm2") for p in ("weight", "bias")}
    for n in ("W_query", "W_key", "W_value"):
        shapes.update(linear_shapes(f"{prefix}attn.{n}.", e, e, c["qkv_bias"]))
    shapes.update(linear_shapes(f"{prefix}attn.out_proj.", e, e))
    shapes.update(linear_shapes(f"{prefix}ff.fc.", e, 4 * e))
    shapes.update(linear_shapes(f"{prefix}ff.proj.", 4 * e, e))
    return shapes


def model_shapes(c: dict) -> dict:
    shapes = {"tok_emb.weight": (c["vocab_size"], c["emb_dim"]), "pos_emb.weight": (c["context_length"], c["emb_dim"]),
              "final_norm.weight": (c["emb_dim"],), "final_norm.bias": (c["emb_dim"],)}
    for i in range(c["n_layers"]):
        shapes.update(block_shapes(c, f"blocks.{i}."))
    if not c["tie_weights"]:
        shapes["out_head.weight"] = (c["vocab_size"], c["emb_dim"])
    return shapes


def hf_block_state(params: dict, prefix: str = "") -> dict:
    """A GPT2Block's state dict from the student's block parameters (Conv1D weights are (in, out))."""
    p = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
    qkv = ("W_query", "W_key", "W_value")
    return {"ln_1.weight": p["norm1.weight"], "ln_1.bias": p["norm1.bias"],
            "ln_2.weight": p["norm2.weight"], "ln_2.bias": p["norm2.bias"],
            "attn.c_attn.weight": torch.cat([p[f"attn.{n}.weight"] for n in qkv]).T,
            "attn.c_attn.bias": torch.cat([p.get(f"attn.{n}.bias", torch.zeros(len(p[f"attn.{n}.weight"])))
                                           for n in qkv]),
            "attn.c_proj.weight": p["attn.out_proj.weight"].T, "attn.c_proj.bias": p["attn.out_proj.bias"],
            "mlp.c_fc.weight": p["ff.fc.weight"].T, "mlp.c_fc.bias": p["ff.fc.bias"],
            "mlp.c_proj.weight": p["ff.proj.weight"].T, "mlp.c_proj.bias": p["ff.proj.bias"]}


def hf_spec(c: dict) -> dict:
    return dict(vocab_size=c["vocab_size"], n_positions=c["context_length"], n_embd=c["emb_dim"], n_head=c["n_heads"],
                n_layer=c["n_layers"], tie_word_embeddings=c["tie_weights"])


def hf_model_state(params: dict, c: dict) -> dict:
    tok = params["tok_emb.weight"]
    state = {"transformer.wte.weight": tok, "transformer.wpe.weight": params["pos_emb.weight"],
             "transformer.ln_f.weight": params["final_norm.weight"], "transformer.ln_f.bias": params["final_norm.bias"],
             "lm_head.weight": tok if c["tie_weights"] else params["out_head.weight"]}
    for i in range(c["n_layers"]):
        state.update({f"transformer.h.{i}.{k}": v for k, v in hf_block_state(params, f"blocks.{i}.").items()})
    return state


def reference_logits(params: dict, c: dict, ids: torch.Tensor, device: str) -> torch.Tensor:
    """GPT2LMHeadModel's logits with the student's parameters (differentiable in them), on `device`."""
    model = models.tiny_gpt2(device=device, **hf_spec(c))
    state = {k: v.to(device) for k, v in hf_model_state(params, c).items()}
    return torch.func.functional_call(model, state, (ids.to(device),)).logits


def reference_block(params: dict, c: dict, x: torch.Tensor, device: str) -> torch.Tensor:
    """GPT2Block's output with the student's parameters (differentiable in them), on `device`."""
    from transformers.models.gpt2.modeling_gpt2 import GPT2Block

    config = models.gpt2_config(**hf_spec(c))
    config._attn_implementation = "eager"  # plain softmax attention, another code path than the provided one's
    block = GPT2Block(config, layer_idx=0).to(device).eval()
    state = {k: v.to(device) for k, v in hf_block_state(params).items()}
    seq = x.shape[-2]
    # A lone block gets its causal mask from outside (GPT2Model builds it): additive, -inf above the diagonal.
    causal = torch.full((seq, seq), float("-inf"), device=device).triu(1)[None, None]
    out = torch.func.functional_call(block, state, (x.to(device),), {"attention_mask": causal})
    return out[0] if isinstance(out, tuple) else out


def expect_reference_gradients(got: dict, reference, device: str) -> None:
    """Every parameter got a gradient, equal to what autograd gives `reference(params)` for the same probe loss."""
    params = {n: t.clone().requires_grad_(True) for n, t in got["parameters"].items()}
    probe_loss(reference(params)).backward()
    expect_gradients(got["grads"], params, device, "every parameter must take part in the output")


# --- LayerNorm -----------------------------------------------------------------------------------------------------
@check("layer_norm_tests",
       contract=("Normalise over the last axis", "`eps` goes *inside* the square root",
                 "The variance is the *biased* one"))
def ln_matches_torch(impl, device):
    """LayerNorm equals F.layer_norm with its weight and bias, for any eps and any leading axes"""
    for seed, shape, eps, scale in [(1, (3, 5, 16), 1e-5, 3.0), (2, (7,), 1e-5, 1.0), (3, (2, 4, 6), 0.5, 0.3)]:
        x = randn(*shape, seed=seed, scale=scale) + 2.0
        got = impl.call("run_module", "LayerNorm", x, device, args=(shape[-1], eps), seed=seed)
        expect_parameters(got["parameters"], {"weight": (shape[-1],), "bias": (shape[-1],)}, "LayerNorm")
        out = expect_tensor(got["output"], f"LayerNorm({shape[-1]}, eps={eps}) of a {shape} input", shape=shape,
                            dtype=torch.float32, device=device)
        p = got["parameters"]
        want = F.layer_norm(x, (shape[-1],), p["weight"], p["bias"], eps)
        if not torch.allclose(out.cpu(), want, rtol=1e-4, atol=1e-5):
            unbiased = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + eps) * p["weight"] + \
                p["bias"]
            if torch.allclose(out.cpu(), unbiased, rtol=1e-4, atol=1e-5):
                fail("LayerNorm uses the unbiased variance (divides by n - 1): use var(..., unbiased=False)")
        expect_close(out, want, f"LayerNorm({shape[-1]}, eps={eps}) of a {shape} input", device,
                     hint="normalise over the last axis only, eps inside the square root, then * weight + bias")


@check("layer_norm_tests", contract=("weight starts as ones and bias as zeros (nn.Parameter)",))
def ln_parameters_start_as_identity(impl, device):
    """a new LayerNorm has trainable weight = ones and bias = zeros, so it starts as a pure normalisation"""
    x = randn(2, 3, 10, seed=4, scale=2.0)
    got = impl.call("run_module", "LayerNorm", x, device, args=(10,), randomize=False)
    p = got["parameters"]
    expect_parameters(p, {"weight": (10,), "bias": (10,)}, "LayerNorm")
    expect(torch.equal(p["weight"], torch.ones(10)) and torch.equal(p["bias"], torch.zeros(10)),
           "a new LayerNorm must start with weight = ones and bias = zeros")
    expect_close(got["output"], F.layer_norm(x, (10,)), "a new LayerNorm's output", device,
                 hint="the default eps is 1e-5")


@check("layer_norm_tests", contract=("Compute in the dtype of x", "gradients"))
def ln_gradients_and_half_precision(impl, device):
    """gradients reach x, weight and bias and equal autograd's; half precision in, half precision out"""
    x = randn(2, 5, 12, seed=5, scale=2.0)
    got = impl.call("run_module", "LayerNorm", x, device, args=(12,), seed=5, backward=True)
    p = {n: t.clone().requires_grad_(True) for n, t in got["parameters"].items()}
    xr = x.clone().requires_grad_(True)
    probe_loss(F.layer_norm(xr, (12,), p["weight"], p["bias"], 1e-5)).backward()
    expect(got["input_grad"] is not None, "no gradient reaches the input: use differentiable torch operations")
    expect_close(got["input_grad"], xr.grad, "the gradient of the input", device)
    for n in ("weight", "bias"):
        expect(got["grads"].get(n) is not None, f"no gradient reaches LayerNorm.{n}: make it an nn.Parameter")
        expect_close(got["grads"][n], p[n].grad, f"the gradient of {n}", device)
    dtype = HALF[torch.device(device).type]
    half = impl.call("run_module", "LayerNorm", x, device, args=(12,), seed=5, dtype=dtype)
    out = expect_tensor(half["output"], f"LayerNorm in {dtype}", shape=x.shape, dtype=dtype, device=device)
    ph = half["parameters"]
    want = F.layer_norm(x.to(dtype).float(), (12,), ph["weight"], ph["bias"], 1e-5)
    expect_close(out, want.to(dtype), f"LayerNorm in {dtype}", device)


# --- GELU -----------------------------------------------------------------------------------------------------------
@check("gelu_tests", contract=("GPT-2's GELU (the tanh approximation above), elementwise",))
def gelu_matches_tanh_approximation(impl, device):
    """gelu equals GPT-2's tanh approximation (not the exact erf GELU) from -20 to 20, without NaN"""
    x = torch.cat([torch.linspace(-20, 20, 801), randn(3, 50, seed=6, scale=3.0).flatten()])
    got = impl.call("gelu", x, device)
    out = expect_tensor(got["output"], "gelu(x)", shape=x.shape, dtype=x.dtype, device=device)
    expect(not got["input_changed"], "gelu must not change its input (no in-place operations)")
    expect(not torch.isnan(out).any(), "gelu returned NaN for large inputs")
    want = F.gelu(x, approximate="tanh")
    if not torch.allclose(out.cpu(), want, rtol=1e-5, atol=1e-6) and \
            torch.allclose(out.cpu(), F.gelu(x), rtol=1e-5, atol=1e-6):
        fail("gelu is the exact (erf) GELU; GPT-2's weights expect the tanh approximation")
    expect_close(out, want, "gelu(x)", device, hint="0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))")


@check("gelu_tests", contract=("elementwise, in the dtype of x", "gradients"))
def gelu_keeps_shape_dtype_and_gradient(impl, device):
    """gelu keeps any shape and half precision, and its gradient equals autograd's"""
    x = randn(2, 3, 4, seed=7, scale=2.0)
    got = impl.call("gelu", x, device, backward=True)
    expect_tensor(got["output"], "gelu of a (2, 3, 4) tensor", shape=(2, 3, 4), dtype=torch.float32, device=device)
    expect(got["grad"] is not None, "no gradient flows through gelu: use differentiable torch operations")
    xr = x.clone().requires_grad_(True)
    probe_loss(F.gelu(xr, approximate="tanh")).backward()
    expect_close(got["grad"], xr.grad, "the gradient of gelu", device)
    dtype = HALF[torch.device(device).type]
    out = expect_tensor(impl.call("gelu", x.to(dtype), device)["output"], f"gelu in {dtype}", shape=x.shape,
                        dtype=dtype, device=device)
    expect_close(out, F.gelu(x.to(dtype).float(), approximate="tanh").to(dtype), f"gelu in {dtype}", device)


# --- FeedForward --------------------------------------------------------------------------------------------------
def ff_reference(p: dict, x: torch.Tensor) -> torch.Tensor:
    return F.linear(F.gelu(F.linear(x, p["fc.weight"], p["fc.bias"]), approximate="tanh"), p["proj.weight"],
                    p["proj.bias"])


@check("feed_forward_tests",
       contract=("x (..., emb_dim) -> proj(gelu(fc(x)))", "fc = nn.Linear(emb_dim, 4 * emb_dim)",
                 "both with biases"))
def ff_matches_reference(impl, device):
    """FeedForward expands to 4 * emb_dim, applies GPT-2's GELU and projects back, for any leading axes"""
    for seed, shape in [(8, (2, 5, 16)), (9, (1, 1, 8)), (10, (3, 8))]:
        c = cfg_dict(emb=shape[-1])
        x = randn(*shape, seed=seed)
        got = impl.call("run_module", "FeedForward", x, device, cfg=c, seed=seed)
        e = shape[-1]
        expect_parameters(got["parameters"], {**linear_shapes("fc.", e, 4 * e), **linear_shapes("proj.", 4 * e, e)},
                          "FeedForward")
        out = expect_tensor(got["output"], f"FeedForward of a {shape} input", shape=shape, dtype=torch.float32,
                            device=device)
        expect_close(out, ff_reference(got["parameters"], x), f"FeedForward of a {shape} input", device,
                     hint="proj(gelu(fc(x))) with your gelu")


@check("feed_forward_tests", contract=("gradients",))
def ff_gradients_match_autograd(impl, device):
    """a backward pass reaches both layers with the gradients autograd gives the reference"""
    x = randn(2, 4, 8, seed=11)
    got = impl.call("run_module", "FeedForward", x, device, cfg=cfg_dict(emb=8), seed=11, backward=True)
    expect_parameters(got["parameters"], {**linear_shapes("fc.", 8, 32), **linear_shapes("proj.", 32, 8)},
                      "FeedForward")
    expect_reference_gradients(got, lambda p: ff_reference(p, x), device)


# --- TransformerBlock -------------------------------------------------------------------------------------------
def expect_block(got: dict, c: dict, x: torch.Tensor, device: str, what: str) -> None:
    expect_parameters(got["parameters"], block_shapes(c), "TransformerBlock")
    out = expect_tensor(got["output"], what, shape=x.shape, dtype=torch.float32, device=device)
    with torch.no_grad():
        want = reference_block(got["parameters"], c, x, "cpu")
    expect_close(out, want, what, device, hint="x = x + drop_resid(attn(norm1(x))); then "
                                               "x = x + drop_resid(ff(norm2(x))): LayerNorm before each sub-layer, "
                                               "the residual added after it")


@check("transformer_block_tests",
       contract=("x = x + dropout(attention(norm1(x)))", "x = x + dropout(feed_forward(norm2(x)))"))
def block_matches_gpt2_block(impl, device):
    """TransformerBlock equals Hugging Face's GPT2Block with the same weights: pre-LayerNorm, two residuals"""
    for seed, c, shape in [(12, cfg_dict(), (2, 12, 24)), (13, cfg_dict(emb=16, heads=4, ctx=9), (1, 1, 16)),
                           (14, cfg_dict(emb=12, heads=2, ctx=5, qkv_bias=False), (3, 5, 12))]:
        x = randn(*shape, seed=seed)
        got = impl.call("run_module", "TransformerBlock", x, device, cfg=c, seed=seed)
        expect_block(got, c, x, device, f"the block's output for a {shape} input")


def expect_dropout_only_in_training(impl, name: str, x: torch.Tensor, c: dict, device: str, seed: int, exact,
                                    hint: str) -> None:
    """With drop_rate=0.5, eval() mode is exact (`exact` compares it) and train() mode differs between passes."""
    exact(impl.call("run_module", name, x, device, cfg=c, seed=seed))
    first, second = impl.call("run_module_twice", name, x, device, cfg=c, train=True)
    expect(not torch.allclose(first, second), f"in train() mode with drop_rate=0.5, two forward passes of {name} gave "
                                              f"the same output: {hint}")


@check("transformer_block_tests",
       contract=("drop_resid (nn.Dropout(drop_rate) on each sub-layer's output, before it is added to the residual)",))
def block_dropout_only_in_training(impl, device):
    """with drop_rate=0.5 a block is exact in eval() mode and random in train() mode"""
    c, x = cfg_dict(drop=0.5), randn(2, 12, 24, seed=15)
    expect_dropout_only_in_training(
        impl, "TransformerBlock", x, c, device, 15,
        lambda got: expect_block(got, c, x, device, "the block's output in eval() mode with drop_rate=0.5"),
        "apply drop_resid to each sub-layer's output")


@check("transformer_block_tests", contract=("causality",))
def block_is_causal(impl, device):
    """changing a later token never changes an earlier output of the block"""
    c, x = cfg_dict(), randn(2, 12, 24, seed=16)
    base = impl.call("run_module", "TransformerBlock", x, device, cfg=c, seed=16)["output"]
    changed = x.clone()
    changed[:, 7] += randn(2, 24, seed=17)
    out = impl.call("run_module", "TransformerBlock", changed, device, cfg=c, seed=16)["output"]
    expect_tensor(base, "the block's output", shape=x.shape, device=device)
    expect_tensor(out, "the block's output", shape=x.shape, device=device)
    expect(not torch.allclose(out[:, 7:].cpu(), base[:, 7:].cpu()), "changing token 7 changed no output at or after "
           "it: the outputs must depend on the input (causality alone is easy for a constant)")
    expect_close(out[:, :7], base[:, :7], "the outputs before position 7 after changing token 7", device,
                 hint="the future leaks in: LayerNorm must normalise each token on its own (over the last axis)")


@check("transformer_block_tests", contract=("The residual path lets gradients flow straight through the whole stack",))
def block_gradients_match_autograd(impl, device):
    """a backward pass reaches every parameter of the block with the gradients GPT2Block gets"""
    c, x = cfg_dict(emb=16, heads=2, ctx=6), randn(2, 6, 16, seed=18)
    got = impl.call("run_module", "TransformerBlock", x, device, cfg=c, seed=18, backward=True)
    expect_parameters(got["parameters"], block_shapes(c), "TransformerBlock")
    expect_reference_gradients(got, lambda p: reference_block(p, c, x, "cpu"), device)


# --- GPTModel -------------------------------------------------------------------------------------------------------
def token_ids(c: dict, batch: int, seq: int, seed: int) -> torch.Tensor:
    return torch.randint(0, c["vocab_size"], (batch, seq), generator=make_generator(seed))


def expect_logits(got: dict, c: dict, ids: torch.Tensor, device: str, what: str) -> torch.Tensor:
    expect_parameters(got["parameters"], model_shapes(c), "GPTModel")
    out = expect_tensor(got["output"], what, shape=(*ids.shape, c["vocab_size"]), dtype=torch.float32,
                        device=device)
    with torch.no_grad():
        want = reference_logits(got["parameters"], c, ids, "cpu")
    if not torch.allclose(out.cpu(), want, rtol=1e-4, atol=1e-4):
        no_pos = {**got["parameters"], "pos_emb.weight": torch.zeros_like(got["parameters"]["pos_emb.weight"])}
        with torch.no_grad():
            if torch.allclose(out.cpu(), reference_logits(no_pos, c, ids, "cpu"), rtol=1e-4, atol=1e-4):
                fail(f"{what}: the position embeddings are not added (tok_emb(idx) + pos_emb(positions))")
    expect_close(out, want, what, device, hint="embeddings (token + position), dropout, blocks, final_norm, "
                                               "out_head")
    return out


@check("gpt_model_tests",
       contract=("idx (batch, seq) of token ids -> logits (batch, seq, vocab_size)", "a linear *head* without bias"))
def gpt_logits_match_gpt2(impl, device):
    """GPTModel's logits equal Hugging Face's GPT2LMHeadModel holding the same weights"""
    for seed, c, (batch, seq) in [(20, cfg_dict(), (2, 12)), (21, cfg_dict(layers=3, emb=16, heads=4), (3, 7))]:
        ids = token_ids(c, batch, seq, seed)
        got = impl.call("run_module", "GPTModel", ids, device, cfg=c, seed=seed)
        expect_logits(got, c, ids, device, f"the logits of a {c['n_layers']}-block model")


@check("gpt_model_tests",
       contract=("make `out_head.weight` the very same `Parameter` as `tok_emb.weight` (assign it; do not copy it)",))
def gpt_ties_weights_when_configured(impl, device):
    """with tie_weights=True the head is the token embedding Parameter itself; with False it is its own"""
    c = cfg_dict(tie=True)
    ids = token_ids(c, 2, 9, 22)
    got = impl.call("run_module", "GPTModel", ids, device, cfg=c, seed=22)
    expect(got["tied"], "with tie_weights=True, out_head.weight must be the very same Parameter as tok_emb.weight "
                        "(self.out_head.weight = self.tok_emb.weight)")
    expect_logits(got, c, ids, device, "the logits of a tied model")
    untied = impl.call("run_module", "GPTModel", ids, device, cfg=cfg_dict(tie=False), seed=22)
    expect(not untied["tied"], "with tie_weights=False, out_head must have its own weight")


@check("gpt_model_tests",
       contract=('Building it must work under `with torch.device("meta"):`',
                 "read none of their values in __init__"))
def gpt2_small_has_124m_parameters(impl, device):
    """GPT2_SMALL's configuration gives exactly 124,439,808 parameters tied (built on the meta device)"""
    small = cfg_dict(vocab=50257, ctx=1024, emb=768, heads=12, layers=12, drop=0.1, tie=True)
    got = impl.call("build_module", "GPTModel", small, meta=True)
    if got["total"] != GPT2_SMALL_PARAMETERS:
        extra = sorted(set(got["shapes"]) - set(model_shapes(small)))
        missing = sorted(set(model_shapes(small)) - set(got["shapes"]))
        fail(f"GPT-2 small has {got['total']:,} parameters, expected {GPT2_SMALL_PARAMETERS:,}" +
             (f"; unexpected: {extra[:4]}" if extra else "") + (f"; missing: {missing[:4]}" if missing else "") +
             (" (is the head tied? are the blocks separate modules, not one block repeated?)"
              if not extra and not missing else ""))
    untied = impl.call("build_module", "GPTModel", {**small, "tie_weights": False}, meta=True)["total"]
    expect(untied == GPT2_SMALL_PARAMETERS + 50257 * 768,
           f"untied, GPT-2 small has {untied:,} parameters; it should add exactly one 50257 x 768 head")


@check("gpt_model_tests",
       contract=("Raise ValueError when seq > context_length", "Create new tensors on the device of idx"))
def gpt_handles_odd_sizes(impl, device):
    """one token, a full context and a batch of one work; everything moves with .to(device); too long raises"""
    c = cfg_dict(ctx=10)
    for seed, (batch, seq) in [(23, (1, 1)), (24, (1, 10)), (25, (4, 3))]:
        ids = token_ids(c, batch, seq, seed)
        got = impl.call("run_module", "GPTModel", ids, device, cfg=c, seed=seed)
        expect(got["devices"] == [torch.device(device).type],
               f"after model.to({device!r}) some parameters or buffers are on {got['devices']}: register tensors "
               "the model owns as parameters or buffers")
        expect_logits(got, c, ids, device, f"the logits for batch {batch}, {seq} of {c['context_length']} tokens")
    expect_raises(impl, "ValueError", "run_module", "GPTModel", token_ids(c, 1, 11, 26), device, cfg=c,
                  what="11 tokens with context_length=10", why="there are only context_length position embeddings")


@check("gpt_model_tests", contract=("drop_emb (nn.Dropout)", "dropout"))
def gpt_dropout_only_in_training(impl, device):
    """with drop_rate=0.5 the model is exact in eval() mode and random in train() mode"""
    c = cfg_dict(drop=0.5)
    ids = token_ids(c, 2, 12, 27)
    expect_dropout_only_in_training(
        impl, "GPTModel", ids, c, device, 27,
        lambda got: expect_logits(got, c, ids, device, "the logits in eval() mode with drop_rate=0.5"),
        "apply drop_emb after the embeddings")


@check("gpt_model_tests", contract=("causality",))
def gpt_is_causal(impl, device):
    """changing a later token never changes the logits of earlier positions"""
    c = cfg_dict()
    ids = token_ids(c, 2, 12, 28)
    base = impl.call("run_module", "GPTModel", ids, device, cfg=c, seed=28)["output"]
    changed = ids.clone()
    changed[:, 6] = (changed[:, 6] + 1) % c["vocab_size"]
    out = impl.call("run_module", "GPTModel", changed, device, cfg=c, seed=28)["output"]
    expect_tensor(out, "the logits", shape=(2, 12, c["vocab_size"]), device=device)
    expect_close(out[:, :6], base[:, :6], "the logits before position 6 after changing token 6", device,
                 hint="the future leaks in: every sub-layer must treat each position on its own or causally")


@check("gpt_model_tests", contract=("gradients",))
def gpt_gradients_match_autograd(impl, device):
    """a backward pass reaches every parameter with the gradients GPT2LMHeadModel gets, tied or not"""
    for tie in (False, True):
        c = cfg_dict(emb=16, heads=2, ctx=8, tie=tie)
        ids = token_ids(c, 2, 8, 29)
        got = impl.call("run_module", "GPTModel", ids, device, cfg=c, seed=29, backward=True)
        expect_parameters(got["parameters"], model_shapes(c), "GPTModel")
        expect_reference_gradients(got, lambda p: reference_logits(p, c, ids, "cpu"), device)


@check("gpt_model_tests", contract=("half precision",))
def gpt_runs_in_half_precision(impl, device):
    """in half precision (bfloat16 on CPU, float16 on CUDA) the logits keep that dtype and stay close"""
    dtype = HALF[torch.device(device).type]
    c = cfg_dict()
    ids = token_ids(c, 2, 12, 30)
    got = impl.call("run_module", "GPTModel", ids, device, cfg=c, seed=30, dtype=dtype)
    out = expect_tensor(got["output"], f"the logits in {dtype}", shape=(2, 12, c["vocab_size"]), dtype=dtype,
                        device=device)
    with torch.no_grad():
        want = reference_logits(got["parameters"], c, ids, "cpu")
    # Half precision keeps 3 significant digits per operation; through 2 blocks, compare with a scale-aware bound.
    err = (out.float().cpu() - want).abs().max().item()
    expect(err <= 0.05 * want.abs().max().item(), f"the logits in {dtype} differ from float32 by up to {err:.3g}: "
                                                  "create new tensors with the dtype of the inputs")


# --- load_gpt2_weights ------------------------------------------------------------------------------------------
# The most a logit may differ from transformers', relative to the largest logit (at least 1): float32 rounding grows
# with the values (a correct load of a 3-block GPT-2 with large weights differs by 2.2e-5 where its logits reach 20).
LOAD_LIMIT = {"cpu": 1e-5, "cuda": 1e-4}  # CUDA: TF32 off


def expect_same_logits_as_transformers(impl, spec: dict, device: str, seed: int, what: str) -> dict:
    ids = torch.randint(0, spec.get("vocab_size", models.TINY_GPT2["vocab_size"]), (2, 11),
                        generator=make_generator(seed))
    got = impl.call("load_checkpoint", spec, ids, device, seed)
    expect(not got["not_loaded"], f"{what}: these parameters were not loaded from the checkpoint: "
                                  f"{got['not_loaded'][:6]}")
    hf = models.tiny_gpt2(seed=seed, device=device, **spec)
    with torch.no_grad():
        want = hf(ids.to(device)).logits
    logits = expect_tensor(got["logits"], f"{what}: the logits", shape=want.shape, dtype=torch.float32,
                           device=device)
    diff = (logits - want).abs().max().item()
    limit = LOAD_LIMIT[torch.device(device).type] * max(1.0, want.abs().max().item())
    expect(diff <= limit, f"{what}: the logits differ from transformers' GPT2LMHeadModel by up to {diff:.3g} "
                          f"(allowed {limit:.3g}): check the Conv1D transposes and the order query, key, value in "
                          "c_attn")
    return got


@check("load_gpt2_weights_tests", points=2,
       contract=("Transpose the Conv1D weights",
                 "it produces exactly the logits Hugging Face's implementation does"))
def load_gives_transformers_logits(impl, device):
    """a checkpoint saved by transformers loads into GPTModel and gives GPT2LMHeadModel's logits (to 1e-5 of their size)"""
    expect_same_logits_as_transformers(impl, dict(initializer_range=0.2), device, 40, "an untied 2-block checkpoint")
    expect_same_logits_as_transformers(impl, dict(n_layer=3, n_embd=48, n_head=6, initializer_range=0.2), device, 41,
                                       "a 3-block checkpoint")


@check("load_gpt2_weights_tests",
       contract=("skip it when your head is tied: it is the token embedding",
                 "so your model keeps its own parameters"))
def load_tied_checkpoint(impl, device):
    """a tied checkpoint (GPT-2's own layout) loads, and the model's head stays tied to its embedding"""
    got = expect_same_logits_as_transformers(impl, dict(tie_word_embeddings=True, initializer_range=0.2), device, 42,
                                             "a tied checkpoint")
    expect(got["tied"], "after loading a tied checkpoint, out_head.weight must still be tok_emb.weight: copy into "
                        "the parameters with .copy_(), do not replace them")


@check("load_gpt2_weights_tests",
       contract=("Raise ValueError (naming the parameter) when a shape does not fit",
                 "and when the number of blocks differs"))
def load_rejects_mismatched_checkpoint(impl, device):
    """a checkpoint with another number of blocks raises ValueError instead of loading part of the model"""
    ids = torch.zeros(1, 3, dtype=torch.long)
    for blocks in (1, 3):
        expect_raises(impl, "ValueError", "load_checkpoint", {}, ids, device, 43, n_layers=blocks,
                      works=(({}, ids, device, 43), {}),
                      what=f"loading a 2-block checkpoint into a {blocks}-block model",
                      why="a partly loaded model gives wrong answers without any error")
