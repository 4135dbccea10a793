"""Checks for 03_attention: softmax, scaled dot-product attention, the causal mask, one head, multi-head attention.

References are PyTorch's own, independent of the course's solutions: `torch.softmax`,
`torch.nn.functional.scaled_dot_product_attention` (whose boolean mask means "may attend", the opposite of the
course's convention) with and without `is_causal`, `torch.nn.MultiheadAttention` with the student's weights copied
in, and autograd for gradients. Inputs are drawn on the CPU from a seed and moved to the device under test.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from gradebox.checks import builds_on, check
from gradebox.expect import expect, expect_close, expect_gradients, expect_raises, expect_tensor, fail, tolerance
from gradebox.forbidden import forbid
from gradebox.inputs import make_generator
from gradebox.tensors import probe_loss

ASSIGNMENT = "03_attention"
# The shortcuts that would skip what an exercise teaches (its instructions name them; gradebox.forbidden finds them).
FUSED = ("torch.nn.functional.scaled_dot_product_attention", "torch.nn.MultiheadAttention")
forbid(ASSIGNMENT, "softmax_tests", "torch.softmax")
for _grade_id in ("scaled_dot_product_attention_tests", "causal_self_attention_tests", "multi_head_attention_tests"):
    forbid(ASSIGNMENT, _grade_id, *FUSED)
builds_on(ASSIGNMENT, "scaled_dot_product_attention_tests", ["softmax"])
builds_on(ASSIGNMENT, "causal_self_attention_tests", ["scaled_dot_product_attention", "causal_mask"])
builds_on(ASSIGNMENT, "multi_head_attention_tests", ["scaled_dot_product_attention", "causal_mask"])

HALF = {"cpu": torch.bfloat16, "cuda": torch.float16}  # the half precision each device type computes well


def randn(*shape, seed: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=make_generator(seed)) * scale


# --- softmax -------------------------------------------------------------------------------------------------------
@check("softmax_tests",
       contract=("along `dim`", "without overflow", "Entries of -inf get weight 0", "Leave x unchanged"))
def softmax_matches_torch(impl, device):
    """softmax equals torch.softmax along any axis, for huge scores and -inf entries, and leaves its input alone"""
    x = randn(4, 6, 9, seed=1, scale=3.0)
    x[0, 0] += 1000.0          # would overflow exp() without the max subtracted
    x[1, 2:4, 2] = float("-inf")  # blocked entries (never a whole row along any axis)
    for dim in (-1, 0, 1):
        got = impl.call("softmax", x, device, dim=dim)
        expect(not got["input_changed"], "softmax must not change its input (no in-place operations on x)")
        out = expect_tensor(got["output"], f"softmax(x, dim={dim})", shape=x.shape, dtype=x.dtype, device=device)
        if torch.isnan(out).any():
            fail("softmax returned NaN for large scores: subtract the maximum along `dim` before exp()")
        expect_close(out, torch.softmax(x, dim=dim), f"softmax(x, dim={dim})", device,
                     hint="normalise along `dim` (keepdim=True) and only along it")


@check("softmax_tests", contract=("in the dtype of x",))
def softmax_keeps_half_precision(impl, device):
    """softmax of a half-precision tensor is computed and returned in that dtype"""
    dtype = HALF[torch.device(device).type]
    x = randn(3, 17, seed=2, scale=4.0).to(dtype)
    out = expect_tensor(impl.call("softmax", x, device)["output"], "softmax(x) of a half-precision x",
                        shape=x.shape, dtype=dtype, device=device)
    expect_close(out, torch.softmax(x.float(), dim=-1).to(dtype), "softmax in half precision", device)


# --- scaled_dot_product_attention ------------------------------------------------------------------------------
def sdpa_inputs(seed: int, batch=(2, 3), n_q=5, n_k=7, d_k=8, d_v=4):
    return (randn(*batch, n_q, d_k, seed=seed), randn(*batch, n_k, d_k, seed=seed + 1),
            randn(*batch, n_k, d_v, seed=seed + 2))


def expect_attention(got: dict, q, k, v, device: str, allowed: torch.Tensor | None = None, is_causal=False) -> None:
    """Compare (context, weights) with PyTorch; `allowed` is a "may attend" mask (PyTorch's convention)."""
    n_q, n_k = q.shape[-2], k.shape[-2]
    context = expect_tensor(got["context"], "context", shape=(*q.shape[:-1], v.shape[-1]), dtype=q.dtype,
                            device=device)
    weights = expect_tensor(got["weights"], "weights", shape=(*q.shape[:-2], n_q, n_k), dtype=q.dtype, device=device)
    scores = q @ k.transpose(-2, -1)
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    want_weights = torch.softmax(scores / q.shape[-1] ** 0.5, dim=-1)
    rtol, atol = tolerance(q.dtype, device)
    w = weights.cpu()
    if not torch.allclose(w, want_weights, rtol=rtol, atol=atol):
        if allowed is None and torch.allclose(w, torch.softmax(scores, -1), rtol=rtol, atol=atol):
            fail("the weights are softmax(q @ k^T) without the scaling: divide the scores by sqrt(d_k)")
        if allowed is None and torch.allclose(w, torch.softmax(scores / q.shape[-1], -1), rtol=rtol, atol=atol):
            fail("the scores are divided by d_k; divide by sqrt(d_k)")
        if allowed is not None and not torch.allclose(w.sum(-1), torch.ones(w.shape[:-1]), atol=1e-4):
            fail("the weights of a row do not sum to 1: apply the mask to the scores before the softmax, not after")
        if allowed is not None and (w.masked_select(~allowed.expand_as(w)).abs() > 1e-6).any():
            fail("blocked positions get attention weight: True in the mask means blocked (masked_fill with -inf)")
        fail("the attention weights differ from softmax(q @ k^T / sqrt(d_k)) "
             f"({int((~torch.isclose(w, want_weights, rtol=rtol, atol=atol)).sum())} of {w.numel()} entries)")
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, is_causal=is_causal)
    expect_close(context, want, "the context vectors", device, hint="context = weights @ values")


@check("scaled_dot_product_attention_tests",
       contract=("queries @ keys^T / sqrt(d_k)", "Leading axes (batch, heads) are batched"))
def sdpa_matches_pytorch(impl, device):
    """without a mask, (context, weights) equal PyTorch's scaled_dot_product_attention, for any batch axes"""
    for seed, shape in [(3, {}), (6, dict(batch=(), n_q=1, n_k=1)), (9, dict(batch=(1,), n_q=4, n_k=2, d_k=16))]:
        q, k, v = sdpa_inputs(seed, **shape)
        expect_attention(impl.call("scaled_dot_product_attention", q, k, v, device), q, k, v, device)


@check("scaled_dot_product_attention_tests",
       contract=("True = blocked", "sets the blocked scores to -inf BEFORE the softmax"))
def sdpa_masks_before_softmax(impl, device):
    """a mask (True = blocked) removes those keys before the softmax"""
    q, k, v = sdpa_inputs(12)
    blocked = torch.rand(2, 1, 5, 7, generator=make_generator(13)) < 0.4  # broadcast over heads
    blocked[..., 0] = False  # every query keeps at least one key
    got = impl.call("scaled_dot_product_attention", q, k, v, device, mask=blocked)
    expect_attention(got, q, k, v, device, allowed=~blocked)


@check("scaled_dot_product_attention_tests", contract=("broadcastable to (..., n_q, n_k)",))
def sdpa_causal_equals_is_causal(impl, device):
    """with the causal mask, the result equals PyTorch's is_causal=True"""
    q, k, v = sdpa_inputs(15, n_q=6, n_k=6)
    causal = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
    got = impl.call("scaled_dot_product_attention", q, k, v, device, mask=causal)
    expect_attention(got, q, k, v, device, allowed=~causal, is_causal=False)


@check("scaled_dot_product_attention_tests", contract=("gradients",))
def sdpa_gradients_match_autograd(impl, device):
    """gradients reach queries, keys and values and equal PyTorch's"""
    q, k, v = sdpa_inputs(18)
    got = impl.call("scaled_dot_product_attention", q, k, v, device, backward=True)
    expect(all(g is not None for g in got["grads"]), "no gradient reached the queries, keys or values: "
                                                     "use differentiable torch operations (no .detach(), .item())")
    ref = [t.detach().clone().requires_grad_(True) for t in (q, k, v)]
    out = F.scaled_dot_product_attention(*ref)
    probe_loss(out).backward()
    for name, g, r in zip(("queries", "keys", "values"), got["grads"], ref):
        expect_close(g, r.grad, f"the gradient of the {name}", device)


# --- causal_mask -------------------------------------------------------------------------------------------------
@check("causal_mask_tests", points=2,
       contract=("bool mask on `device`", "position i may attend to positions 0 .. i only"))
def causal_mask_blocks_exactly_the_future(impl, device):
    """causal_mask(n) is a bool (n, n) mask on the requested device that blocks exactly the keys after each query"""
    for n in (1, 2, 5, 16):
        mask = expect_tensor(impl.call("causal_mask", n, device), f"causal_mask({n})", shape=(n, n),
                             dtype=torch.bool, device=device)
        want = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
        if not torch.equal(mask.cpu(), want):
            if torch.equal(mask.cpu(), ~want):
                fail("the mask is inverted: True must mean blocked, i.e. the positions after the query")
            if n > 1 and torch.equal(mask.cpu(), torch.triu(torch.ones(n, n, dtype=torch.bool))):
                fail("the mask also blocks the diagonal: a position must attend to itself")
            fail("the mask must be True exactly above the diagonal (torch.triu(..., diagonal=1))")


# --- CausalSelfAttention and MultiHeadAttention ----------------------------------------------------------------
def linear(x, params: dict, name: str):
    return F.linear(x, params[f"{name}.weight"], params.get(f"{name}.bias"))


def ref_attention(params: dict, x: torch.Tensor, num_heads: int = 1, out_proj: bool = False) -> torch.Tensor:
    """Causal multi-head attention from the student's own parameters, with PyTorch's fused attention."""
    batch, seq, _ = x.shape

    def split(t):
        return t.view(batch, seq, num_heads, -1).transpose(1, 2)

    q, k, v = (split(linear(x, params, n)) for n in ("W_query", "W_key", "W_value"))
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(batch, seq, -1)
    return linear(out, params, "out_proj") if out_proj else out


def expect_parameters(params: dict, names: list[str], what: str) -> None:
    missing = [n for n in names if n not in params]
    expect(not missing, f"{what} has no parameters named {missing}: use the attribute names the notebook gives")


CSA = "CausalSelfAttention"
MHA = "MultiHeadAttention"


@check("causal_self_attention_tests",
       contract=("nn.Linear(d_in, d_out, bias=qkv_bias)",
                 "Reuse your `scaled_dot_product_attention` and `causal_mask`"))
def csa_matches_causal_attention(impl, device):
    """CausalSelfAttention equals causal attention over its own query/key/value projections, with and without bias"""
    for qkv_bias, (d_in, d_out, ctx) in [(False, (5, 3, 8)), (True, (4, 6, 6))]:
        x = randn(2, ctx, d_in, seed=20)
        got = impl.call("attention_module", CSA, (d_in, d_out, ctx), dict(qkv_bias=qkv_bias), x, device)
        names = [f"{n}.weight" for n in ("W_query", "W_key", "W_value")]
        expect_parameters(got["parameters"], names + ([f"{n[:-7]}.bias" for n in names] if qkv_bias else []), CSA)
        out = expect_tensor(got["output"], "the output", shape=(2, ctx, d_out), dtype=torch.float32, device=device)
        expect_close(out, ref_attention(got["parameters"], x), "the output", device,
                     hint="weights = softmax of the masked, scaled scores; output = weights @ values")


@check("causal_self_attention_tests",
       contract=("cut it to the current length for shorter sequences", "Raise ValueError when seq > context_length"))
def csa_is_causal_for_every_length(impl, device):
    """outputs never depend on later tokens, for sequences shorter than the context too; too long raises"""
    ctx = 7
    for seq in (1, 4, ctx):
        x = randn(3, seq, 4, seed=21 + seq)
        got = impl.call("attention_module", CSA, (4, 4, ctx), {}, x, device)
        out = expect_tensor(got["output"], f"the output for {seq} tokens", shape=(3, seq, 4), device=device)
        expect_close(out, ref_attention(got["parameters"], x), f"the output for {seq} of {ctx} tokens", device,
                     hint="cut the mask to the sequence: self.mask[:seq, :seq]")
    expect_raises(impl, "ValueError", "attention_module", CSA, (4, 4, ctx), {}, randn(1, ctx + 1, 4, seed=1), device,
                  what=f"{ctx + 1} tokens with context_length={ctx}", why="the mask only covers context_length")


@check("causal_self_attention_tests", contract=("registered as a **buffer**", "moves with `.to(device)`"))
def csa_mask_is_a_buffer(impl, device):
    """the causal mask is a registered buffer (it moves with .to(device)), not a parameter"""
    got = impl.call("attention_module", CSA, (4, 4, 6), {}, randn(1, 6, 4, seed=2), device)
    mask = got["buffers"].get("mask")
    expect(mask is not None, "CausalSelfAttention has no buffer named `mask`: create it with "
                             "self.register_buffer('mask', causal_mask(context_length))")
    expect_tensor(mask, "the mask buffer", shape=(6, 6), dtype=torch.bool, device=device)
    expect(not any(n.startswith("mask") for n in got["parameters"]), "the mask must not be a trainable parameter")


@check("causal_self_attention_tests",
       contract=("*Dropout* on the attention weights randomly drops connections while training",
                 "in `eval()` mode `nn.Dropout` does nothing"))
def csa_dropout_only_in_training(impl, device):
    """dropout on the attention weights changes outputs in train() mode and has no effect in eval() mode"""
    x = randn(2, 6, 4, seed=24)
    got = impl.call("attention_module", CSA, (4, 4, 6), dict(dropout=0.5), x, device)
    expect_close(got["output"], ref_attention(got["parameters"], x), "the output in eval() mode with dropout=0.5",
                 device, hint="use nn.Dropout (it does nothing in eval mode), not an always-on dropout")
    first, second = impl.call("attention_module_twice", CSA, (4, 4, 6), dict(dropout=0.5), x, device, train=True)
    expect(not torch.allclose(first, second), "in train() mode with dropout=0.5, two forward passes gave the same "
                                              "output: apply self.dropout to the attention weights")


def mha_case(seed: int, d_in: int, d_out: int, ctx: int, heads: int, batch: int, seq: int, qkv_bias=False, **kw):
    return (MHA, (d_in, d_out, ctx), dict(num_heads=heads, qkv_bias=qkv_bias, **kw), randn(batch, seq, d_in, seed=seed))


@check("multi_head_attention_tests",
       contract=("the hidden checks copy your weights into it and compare",
                 "Each head scales its scores by sqrt(head_dim)"))
def mha_matches_torch_multihead_attention(impl, device):
    """MultiHeadAttention equals torch.nn.MultiheadAttention with the same weights and a causal mask"""
    name, args, kwargs, x = mha_case(30, 12, 12, 9, 3, 2, 7)
    got = impl.call("attention_module", name, args, kwargs, x, device)
    params = got["parameters"]
    expect_parameters(params, ["W_query.weight", "W_key.weight", "W_value.weight", "out_proj.weight",
                               "out_proj.bias"], MHA)
    torch_mha = torch.nn.MultiheadAttention(12, 3, bias=True, batch_first=True)
    with torch.no_grad():
        torch_mha.in_proj_weight.copy_(torch.cat([params[f"{n}.weight"] for n in ("W_query", "W_key", "W_value")]))
        torch_mha.in_proj_bias.zero_()
        torch_mha.out_proj.weight.copy_(params["out_proj.weight"])
        torch_mha.out_proj.bias.copy_(params["out_proj.bias"])
        causal = torch.triu(torch.ones(7, 7, dtype=torch.bool), diagonal=1)  # True = not allowed, as in the course
        want, _ = torch_mha(x, x, x, attn_mask=causal, need_weights=False)
    out = expect_tensor(got["output"], "the output", shape=(2, 7, 12), dtype=torch.float32, device=device)
    expect_close(out, want, "the output", device,
                 hint="split heads with view(batch, seq, heads, head_dim).transpose(1, 2), scale by sqrt(head_dim), "
                      "merge with transpose(1, 2).reshape(...), then out_proj")


@check("multi_head_attention_tests", contract=("x (batch, seq, d_in) -> (batch, seq, d_out)", "bias=qkv_bias"))
def mha_handles_odd_sizes(impl, device):
    """one token, a full context, a batch of one, d_in != d_out and biased projections all work"""
    for case in [mha_case(31, 5, 8, 6, 4, 1, 1, qkv_bias=True), mha_case(32, 5, 8, 6, 2, 1, 6),
                 mha_case(33, 7, 6, 10, 1, 3, 4)]:
        name, args, kwargs, x = case
        got = impl.call("attention_module", name, args, kwargs, x, device)
        expect(got["attributes"] == {"num_heads": kwargs["num_heads"], "head_dim": args[1] // kwargs["num_heads"]},
               "num_heads and head_dim (d_out // num_heads) must be attributes of the module")
        out = expect_tensor(got["output"], f"the output (batch {x.shape[0]}, {x.shape[1]} tokens)",
                            shape=(x.shape[0], x.shape[1], args[1]), dtype=torch.float32, device=device)
        expect_close(out, ref_attention(got["parameters"], x, kwargs["num_heads"], out_proj=True),
                     f"the output for d_in={args[0]}, d_out={args[1]}, {kwargs['num_heads']} heads, "
                     f"{x.shape[1]} of {args[2]} tokens", device)


@check("multi_head_attention_tests", contract=("Causal multi-head self-attention",))
def mha_is_causal(impl, device):
    """changing a later token never changes an earlier output"""
    name, args, kwargs, x = mha_case(34, 8, 8, 8, 2, 2, 8)
    shape = (x.shape[0], x.shape[1], args[1])
    base = expect_tensor(impl.call("attention_module", name, args, kwargs, x, device)["output"], "the output",
                         shape=shape, device=device)
    for t in (7, 3):
        changed = x.clone()
        changed[:, t] += randn(2, 8, seed=35 + t)
        out = expect_tensor(impl.call("attention_module", name, args, kwargs, changed, device)["output"],
                            "the output", shape=shape, device=device)
        expect(not torch.allclose(out[:, t:].cpu(), base[:, t:].cpu()), f"changing token {t} changed no output at "
               "or after it: the outputs must depend on the input (causality alone is easy for a constant)")
        expect_close(out[:, :t], base[:, :t], f"the outputs before position {t} after changing token {t}", device,
                     hint="the future leaks in: check the mask (True = blocked, above the diagonal, before softmax)")


@check("multi_head_attention_tests", contract=("gradients",))
def mha_gradients_reach_every_parameter(impl, device):
    """a backward pass reaches every parameter, with the gradients autograd gives the reference"""
    name, args, kwargs, x = mha_case(36, 6, 8, 5, 2, 2, 5, qkv_bias=True)
    got = impl.call("attention_module", name, args, kwargs, x, device, backward=True)
    params = {n: p.clone().requires_grad_(True) for n, p in got["parameters"].items()}
    probe_loss(ref_attention(params, x, 2, out_proj=True)).backward()
    expect_gradients(got["grads"], params, device, "every projection must take part in the output")


@check("multi_head_attention_tests",
       contract=("Raise ValueError if d_out is not divisible by num_heads, or when seq > context_length",))
def mha_rejects_impossible_shapes(impl, device):
    """d_out not divisible by num_heads, and sequences longer than the context, raise ValueError"""
    expect_raises(impl, "ValueError", "build_attention_module", MHA, (8, 10, 5), dict(num_heads=4),
                  what="MultiHeadAttention(d_out=10, num_heads=4)", why="10 cannot be split into 4 equal heads",
                  works=((MHA, (8, 12, 5), dict(num_heads=4)), {}))
    name, args, kwargs, x = mha_case(37, 4, 4, 5, 2, 1, 6)
    expect_raises(impl, "ValueError", "attention_module", name, args, kwargs, x, device,
                  what="6 tokens with context_length=5", why="the mask only covers context_length",
                  works=((name, args, kwargs, x[:, :5], device), {}))


@check("multi_head_attention_tests", contract=("half precision",))
def mha_runs_in_half_precision(impl, device):
    """in half precision (bfloat16 on CPU, float16 on CUDA) the output keeps that dtype and stays close"""
    dtype = HALF[torch.device(device).type]
    name, args, kwargs, x = mha_case(38, 16, 16, 8, 4, 2, 8)
    got = impl.call("attention_module", name, args, kwargs, x, device, dtype=dtype)
    out = expect_tensor(got["output"], "the half-precision output", shape=(2, 8, 16), dtype=dtype, device=device)
    want = ref_attention(got["parameters"], x.to(dtype).float(), 4, out_proj=True).to(dtype)
    expect_close(out, want, f"the output in {dtype}", device,
                 hint="create new tensors with the dtype of the inputs (and keep softmax in that dtype)")
