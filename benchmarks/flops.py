"""FLOP counts and GPU peaks shared by the benchmarks (figures only; nothing here is a test)."""
from __future__ import annotations

import torch

# Dense peak FLOP/s of the GPUs these benchmarks meet, by dtype (vendor datasheets, SXM parts, no sparsity).
PEAK_FLOPS = {"H100": {torch.bfloat16: 989e12, torch.float32: 67e12},
              "H200": {torch.bfloat16: 989e12, torch.float32: 67e12}}


def training_flops_per_token(n_params: int, layers: int, seq: int, emb: int) -> float:
    """Forward + backward: 6 per parameter, plus attention's 12 * layers * seq * emb (PaLM's appendix B)."""
    return 6 * n_params + 12 * layers * seq * emb


def peak_flops(device: str, dtype: torch.dtype) -> float | None:
    if device != "cuda":
        return None
    name = torch.cuda.get_device_name(0)
    return next((p.get(dtype) for key, p in PEAK_FLOPS.items() if key in name), None)
