"""Tensor helpers that both sides use: the checks in the grader and the adapters next to student code."""
from __future__ import annotations

import torch


def available_devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def prepare_device(device: str) -> None:
    """Comparisons on CUDA run in true float32: TF32 would loosen every matmul to ~1e-3."""
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def probe_loss(t: torch.Tensor) -> torch.Tensor:
    """A scalar for gradient checks that weighs every entry differently (a plain sum would hide swapped entries).
    Adapters backpropagate it through student code and checks through the reference: both must use this one.

    >>> probe_loss(torch.tensor([1.0, 2.0, 3.0])).item()   # -1*1 + 0*2 + 1*3
    2.0
    """
    return (t.float() * torch.linspace(-1, 1, t.numel(), device=t.device).reshape(t.shape)).sum()


def make_generator(seed: int) -> torch.Generator:
    """The plain generator an adapter rebuilds what a check asked for with: the seed a check passes is already its
    student's (gradebox.inputs.seed), and nothing in the box knows any key. On the CPU, then moved: CPU and CUDA
    random streams differ."""
    return torch.Generator().manual_seed(seed)
