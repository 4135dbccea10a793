"""Small models the checks build themselves: no hub, no download, the same weights on every machine."""
from __future__ import annotations

import contextlib
import warnings

import torch

# Untied embeddings and a wide initialisation: with GPT-2's defaults a random tiny model only repeats its last
# token, which would hide bugs in cropping and stopping. Top-2 logit gaps stay above 1e-2, far from float noise.
TINY_GPT2 = dict(vocab_size=101, n_positions=32, n_embd=32, n_layer=2, n_head=4, tie_word_embeddings=False,
                 initializer_range=0.5)
GPT2_SMALL = dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12, tie_word_embeddings=True,
                  initializer_range=0.02)


def gpt2_config(**overrides):
    from transformers import GPT2Config

    spec = {**TINY_GPT2, **overrides}
    # No bos/eos ids: GPT-2's 50256 lies outside a tiny vocabulary, and transformers warns about it.
    return GPT2Config(**spec, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None)


def tiny_gpt2(seed: int = 0, device: str = "cpu", **overrides):
    """A GPT2LMHeadModel with random weights drawn on the CPU from `seed`, in eval mode, moved to `device`."""
    from transformers import GPT2LMHeadModel

    config = gpt2_config(**overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    return model.eval().to(device)


def meta_gpt2(**overrides):
    """A full-size GPT-2 on the meta device: shapes and parameter counts without memory."""
    from transformers import GPT2LMHeadModel

    with torch.device("meta"):
        return GPT2LMHeadModel(gpt2_config(**{**GPT2_SMALL, **overrides}))


@contextlib.contextmanager
def quiet_transformers():
    """No progress bars, warnings or info lines from transformers (saving and loading checkpoints, generate)."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
