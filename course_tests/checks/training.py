"""Checks for 05_training: the next-token loss, evaluation, the learning-rate schedule, weight-decay groups, the
training step and checkpoints. References: F.cross_entropy, the schedule's formula, PyTorch's own zero_grad /
backward / clip_grad_norm_ / step sequence on an identical copy of the checks' tiny model, and a run that never
stops. No long training ever runs here.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from course_tests.adapters.training import make_optimizer, tiny_lm, tokens, uninterrupted
from gradebox import inputs
from gradebox.checks import builds_on, check
from gradebox.expect import expect, expect_close, expect_gradients, expect_tensor, fail

ASSIGNMENT = "05_training"
builds_on(ASSIGNMENT, "evaluate_tests", ["batch_loss"])
builds_on(ASSIGNMENT, "train_step_tests", ["batch_loss"])


# References. They live here, not in the adapters, because the grading box lets student code import the adapters.
def next_token_loss(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    logits = model(batch[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))


def reference_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: torch.Tensor,
                   max_grad_norm: float) -> tuple[float, float]:
    """PyTorch's own zero_grad / backward / clip_grad_norm_ / step; returns (loss, pre-clip norm)."""
    optimizer.zero_grad()
    loss = next_token_loss(model, batch)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    return loss.item(), norm.item()


# --- batch_loss -------------------------------------------------------------------------------------------------
@check("batch_loss_tests",
       contract=("the model reads `tokens[:, :-1]` and must predict", "`tokens[:, 1:]`", "as a 0-dim tensor"))
def loss_equals_cross_entropy_of_the_next_token(impl, device):
    """batch_loss is F.cross_entropy of the logits for tokens[:, :-1] against tokens[:, 1:], a 0-dim tensor"""
    for number, (batch, length) in [(1, (3, 7)), (2, (1, 1)), (3, (5, 12))]:
        seed = inputs.seed(number)
        t = tokens(seed, batch, length)
        got = impl.call("batch_loss", seed, t, device)
        loss = expect_tensor(got["loss"], "the loss", shape=(), dtype=torch.float32, device=device)
        expect(got["requires_grad"], "the loss must be differentiable: return the tensor (no .item(), no detach)")
        model = tiny_lm(seed, "cpu")
        with torch.no_grad():
            want = next_token_loss(model, t)
            logits = model(t[:, :-1])
            unshifted = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), t[:, :-1].reshape(-1))
        if length > 1 and torch.allclose(loss.cpu(), unshifted, atol=1e-6):
            fail("the targets are the inputs themselves: predict tokens[:, 1:] from tokens[:, :-1]")
        expect_close(loss, want, f"the loss for a batch of {batch} windows of {length} tokens", device,
                     hint="mean cross-entropy over every position: flatten logits to (N, vocab) and targets to (N,)")


@check("batch_loss_tests", contract=("as a 0-dim tensor with grad",))
def loss_gradients_match_autograd(impl, device):
    """backpropagating the loss gives every parameter the gradient of the reference loss"""
    seed = inputs.seed(4)
    t = tokens(seed)
    got = impl.call("batch_loss", seed, t, device)
    expect("grads" in got, "the loss must be a differentiable 0-dim tensor")
    model = tiny_lm(seed, "cpu")
    next_token_loss(model, t).backward()
    expect_gradients(got["grads"], dict(model.named_parameters()), device, "the loss must come from the model's logits")


# --- evaluate ---------------------------------------------------------------------------------------------------
def eval_reference(seed: int, batches: list) -> float:
    model = tiny_lm(seed, "cpu", dropout=0.5).eval()
    with torch.no_grad():
        return sum(next_token_loss(model, b).item() for b in batches) / len(batches)


@check("evaluate_tests",
       contract=("The mean batch_loss over `batches` (an iterable of token windows), or over its first max_batches",
                 "Returns a Python float", "(dropout off)"))
def evaluate_is_the_mean_loss_in_eval_mode(impl, device):
    """evaluate returns the mean loss over the batches (or the first max_batches) with dropout off, as a float"""
    batches, seed = [tokens(inputs.seed(10 + i)) for i in range(4)], inputs.seed(5)
    for max_batches, used in [(None, 4), (2, 2), (10, 4)]:
        got = impl.call("evaluate", seed, batches, device, max_batches=max_batches)
        expect(type(got["value"]) is float, f"evaluate must return a Python float, got {type(got['value']).__name__}")
        expect(not any(got["modes_seen"]), "the model ran in train() mode: call model.eval() before evaluating "
                                           "(dropout must be off)")
        expect(len(got["modes_seen"]) == used, f"with max_batches={max_batches} and 4 batches, evaluate ran the model "
                                               f"{len(got['modes_seen'])} times instead of {used}")
        want = eval_reference(seed, batches[:used])
        expect(abs(got["value"] - want) <= 1e-5 * max(1.0, abs(want)),
               f"with max_batches={max_batches}, evaluate is not the mean loss of the batches it used")


@check("evaluate_tests", contract=("Runs in eval() mode without gradients and restores the mode the model had",))
def evaluate_restores_mode_and_records_no_graph(impl, device):
    """evaluate runs without autograd and leaves the model in the mode it found it in"""
    batches = [tokens(inputs.seed(20)), tokens(inputs.seed(21))]
    for train in (True, False):
        got = impl.call("evaluate", inputs.seed(6), batches, device, train=train)
        expect(len(got["grad_enabled_seen"]) == len(batches), f"evaluate ran the model {len(got['grad_enabled_seen'])} "
               f"times on {len(batches)} batches: it must run it on each of them")  # the work first, then its manners
        expect(got["training_after"] == train, f"a model in {'train' if train else 'eval'}() mode came back in "
                                               f"{'train' if got['training_after'] else 'eval'}() mode: restore "
                                               "model.training at the end")
        expect(not any(got["grad_enabled_seen"]), "the model ran with autograd on: wrap evaluation in "
                                                  "torch.no_grad()")
        expect(not got["grads"], "evaluate left gradients in the parameters")


# --- lr_at --------------------------------------------------------------------------------------------------------
def reference_lr(step, max_lr, min_lr, warmup, total):
    if step < warmup:
        return max_lr * (step + 1) / warmup
    if step >= total:
        return min_lr
    return min_lr + (max_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def expect_schedule(impl, args: tuple, steps, what: str) -> None:
    for step in steps:
        got = impl.call("lr_at", step, *args)
        expect(isinstance(got, (int, float)) and not isinstance(got, bool),
               f"lr_at must return a Python number, got {type(got).__name__}")
        want = reference_lr(step, *args)
        expect(abs(got - want) <= 1e-12 + 1e-9 * abs(want), f"{what}: the learning rate at step {step} is wrong")


@check("lr_at_tests", uses_device=False, contract=("for `step < warmup_steps`: `max_lr * (step + 1) / warmup_steps`",))
def lr_warms_up_linearly_from_the_first_step(impl, device):
    """during warmup the rate is max_lr * (step + 1) / warmup_steps: above zero at step 0, max_lr at the end"""
    args = (3e-4, 3e-5, 16, 200)
    expect(impl.call("lr_at", 0, *args) > 0, "the learning rate at step 0 is 0, so the first step is wasted: "
                                              "use (step + 1) / warmup_steps")
    expect_schedule(impl, args, range(0, 17), "warmup")


@check("lr_at_tests", uses_device=False,
       contract=("from `max_lr` down to `min_lr` along half a cosine", "for `step >= total_steps`: `min_lr`",
                 "with `warmup_steps = total_steps` there is no decay"))
def lr_decays_along_a_cosine_to_the_floor(impl, device):
    """after warmup the rate follows half a cosine from max_lr to min_lr and then stays at min_lr"""
    args = (1e-3, 1e-4, 10, 110)
    expect_schedule(impl, args, [10, 11, 35, 60, 85, 109, 110, 111, 1000], "cosine decay")
    expect_schedule(impl, (6e-4, 0.0, 5, 5), [5, 6, 50], "a schedule that ends with its warmup")


@check("lr_at_tests", uses_device=False,
       contract=("With `warmup_steps = 0` there is no warmup (and no division by zero)",))
def lr_without_warmup(impl, device):
    """with warmup_steps=0 the schedule starts at max_lr and never divides by zero"""
    expect_schedule(impl, (1e-3, 1e-5, 0, 40), [0, 1, 20, 39, 40], "no warmup")


# --- param_groups -------------------------------------------------------------------------------------------------
@check("param_groups_tests", uses_device=False,
       contract=("Two AdamW parameter groups",
                 "Every trainable parameter appears exactly once; a tied parameter once; a frozen one (requires_grad=False) not at all"))
def groups_decay_matrices_and_spare_the_rest(impl, device):
    """two groups: every parameter with 2+ dimensions decays, every 1-D one does not; each listed exactly once"""
    got = impl.call("param_groups", 7, 0.1)
    groups, dims = got["groups"], got["all"]
    expect(len(groups) == 2, f"param_groups must return 2 groups, got {len(groups)}")
    listed = [n for g in groups for n in g["params"]]
    expect(sorted(listed) == sorted(dims), "every trainable parameter must appear in exactly one group (the tied "
                                           "embedding and head once): use model.parameters()")
    decayed = {n for g in groups if g["weight_decay"] == 0.1 for n in g["params"]}
    spared = {n for g in groups if g["weight_decay"] == 0.0 for n in g["params"]}
    expect(decayed | spared == set(dims), "the groups' weight_decay must be weight_decay and 0.0")
    wrong = sorted(n for n in decayed if dims[n] < 2)
    expect(not wrong, f"weight decay is applied to 1-D parameters {wrong}: biases and LayerNorm parameters get 0.0")
    missing = sorted(n for n in spared if dims[n] >= 2)
    expect(not missing, f"these weight matrices get no weight decay: {missing}")
    frozen = impl.call("param_groups", 7, 0.1, freeze=("norm.",))
    expect(not any(n.startswith("norm.") for g in frozen["groups"] for n in g["params"]),
           "frozen parameters (requires_grad=False) must not be handed to the optimizer")


# --- train_step ---------------------------------------------------------------------------------------------------
def reference_steps(seed: int, batches: list, max_grad_norm: float, lr: float, optimizer: str):
    model = tiny_lm(seed, "cpu")
    opt = make_optimizer(model, optimizer, lr)
    returned = [reference_step(model, opt, b, max_grad_norm) for b in batches]
    return returned, {n: p.detach() for n, p in model.named_parameters()}


def expect_same_steps(impl, seed: int, batches: list, device: str, max_grad_norm: float, lr: float,
                      optimizer: str, what: str) -> None:
    got = impl.call("train_steps", seed, batches, device, max_grad_norm, lr=lr, optimizer=optimizer)
    want_returned, want_params = reference_steps(seed, batches, max_grad_norm, lr, optimizer)
    for i, (r, (loss, norm)) in enumerate(zip(got["returned"], want_returned)):
        expect(isinstance(r, tuple) and len(r) == 2 and all(type(v) is float for v in r),
               "train_step must return (loss, grad_norm) as two Python floats")
        expect(math.isclose(r[0], loss, rel_tol=1e-5, abs_tol=1e-6), f"{what}: the loss returned by step {i + 1} is "
                                                                     "not the batch's loss before the update")
        expect(math.isclose(r[1], norm, rel_tol=1e-4, abs_tol=1e-6),
               f"{what}: step {i + 1} returned a gradient norm of {r[1]:.4g}; it must be the global norm before "
               "clipping (the value clip_grad_norm_ returns)")
    for name, p in want_params.items():
        expect_close(got["parameters"][name], p, f"{what}: {name} after {len(batches)} steps", device,
                     hint="zero the gradients, backward, clip, then step")


@check("train_step_tests",
       contract=("clear the old gradients (PyTorch *adds* into `.grad`), compute the loss, backpropagate, clip the gradients",))
def step_equals_zero_grad_backward_clip_step(impl, device):
    """three steps equal PyTorch's zero_grad, backward, clip_grad_norm_, step sequence, with AdamW"""
    batches = [tokens(inputs.seed(30 + i)) for i in range(3)]
    expect_same_steps(impl, inputs.seed(8), batches, device, 1.0, 0.05, "adamw", "three AdamW steps")


@check("train_step_tests",
       contract=("returns (loss, gradient norm before clipping) as Python floats",
                 "global norm is at most `max_grad_norm`"))
def step_clips_before_the_update(impl, device):
    """with a tight max_grad_norm the SGD update is exactly the clipped gradient; the unclipped norm is returned"""
    batches = [tokens(inputs.seed(40)), tokens(inputs.seed(41))]
    expect_same_steps(impl, inputs.seed(9), batches, device, 0.05, 1.0, "sgd", "SGD with max_grad_norm=0.05")


@check("train_step_tests", contract=("One optimizer step on the batch `tokens`",))
def step_overfits_one_batch(impl, device):
    """forty steps on one fixed batch drive its loss below half of where it started"""
    batch = tokens(inputs.seed(50), batch=4, length=6)
    got = impl.call("train_steps", inputs.seed(10), [batch] * 40, device, 1.0, lr=0.05, optimizer="adamw")
    first, last = got["returned"][0][0], got["returned"][-1][0]
    expect(last < 0.5 * first, f"the loss went from {first:.3f} to {last:.3f} in 40 steps on one batch: the "
                               "model is not learning (are the gradients zeroed and the optimizer stepped?)")


# --- checkpoints --------------------------------------------------------------------------------------------------
STATE_HINTS = {
    "model": "the model's parameters were not restored: save model.state_dict() and load it with "
             "model.load_state_dict",
    "optimizer": "the optimizer's state (AdamW's moments and step counts) was not restored: save "
                 "optimizer.state_dict() and load it with optimizer.load_state_dict",
    "rng.torch": "PyTorch's random state was not restored, so dropout masks differ after resuming: save "
                 "torch.get_rng_state() and restore it with torch.set_rng_state",
    "rng.cuda": "the CUDA random state was not restored, so dropout masks on the GPU differ after resuming: save "
                "torch.cuda.get_rng_state_all() and restore it with torch.cuda.set_rng_state_all",
    "rng.data": "the data generator's state was not restored, so the batches differ after resuming: save "
                "generator.get_state() and restore it with generator.set_state",
}


@check("checkpoint_tests", points=2,
       contract=("the model's parameters", "the optimizer's state", "the step", "the random state",
                 "return the saved step"))
def checkpoint_restores_the_whole_state(impl, device):
    """loading into a fresh model, optimizer and generator restores parameters, optimizer moments, the step, and
    both random states exactly"""
    got = impl.call("checkpoint_resume", inputs.seed(60), device, stop_at=3, total=7)
    expect(type(got["step"]) is int, f"load_checkpoint must return the saved step as a Python int, got "
                                     f"{type(got['step']).__name__}")
    expect(got["step"] == 3, f"after saving at step 3, load_checkpoint returned {got['step']}")
    saved, restored = got["saved"], got["restored"]
    for prefix, hint in STATE_HINTS.items():
        keys = [k for k in saved if k == prefix or k.startswith(prefix + ".")]
        for key in keys:
            expect(key in restored and restored[key].shape == saved[key].shape
                   and torch.equal(restored[key], saved[key]), hint)


@check("checkpoint_tests", points=2,
       contract=("the resumed run takes the same steps, bit for bit, as one that was never interrupted",))
def resume_continues_bit_identically(impl, device):
    """a run stopped and resumed from its checkpoint ends with the same parameters as one never stopped, bit for
    bit on the CPU"""
    seed = inputs.seed(61)
    for stop_at, total in [(2, 6), (5, 6)]:
        got = impl.call("checkpoint_resume", seed, device, stop_at=stop_at, total=total)
        expect(got["final"] is not None, f"load_checkpoint returned {got['step']!r} instead of the saved step")
        want = uninterrupted(seed, device, total)
        for name, p in want.items():
            what = f"{name} after stopping at step {stop_at} of {total} and resuming"
            if torch.device(device).type == "cpu":
                expect(torch.equal(got["final"][name], p), f"{what}: it differs from the run that never stopped "
                                                           "(save and restore every part of the state)")
            else:
                expect_close(got["final"][name], p, what, device, hint="save and restore every part of the state")
