"""Per-unit change between checks (SPEC §3): pure functions of parameter snapshots.

``d = ||θ(t) − θ(t−1)||₂ / (||θ(t−1)||₂ + 1e-12)`` over all of a unit's learnable parameters
(BatchNorm's affine included, running statistics excluded: they are buffers, not parameters).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

EPS = 1e-12


def snapshot(units: Sequence[nn.Module]) -> list[torch.Tensor]:
    """One flat fp32 copy of each unit's learnable parameters, on the parameters' device."""
    return [torch.cat([p.detach().reshape(-1).float() for p in unit.parameters()]).clone()
            if any(True for _ in unit.parameters()) else torch.zeros(0) for unit in units]


def relative_changes(previous: Sequence[torch.Tensor], current: Sequence[torch.Tensor]) -> list[float]:
    """``d`` for each unit, with one device sync for all of them."""
    if not previous:
        return []
    values = torch.stack([
        torch.linalg.vector_norm(cur - prev) / (torch.linalg.vector_norm(prev) + EPS)
        for prev, cur in zip(previous, current)
    ])
    return [float(v) for v in values.cpu()]


def change_score(d: float, peak: float) -> float:
    """``s = d / max_k d(k)``, in (0, 1] once the peak includes ``d``."""
    return d / peak if peak > 0 else 1.0


def continuation_score(history: Sequence[float], window: int) -> float | None:
    """``c = d(t) / d(t − w)``: below 1 the unit slows down, at or above 1 it still learns.

    At the start of a run the window shortens to the checks there are; with one check there is no ``c``.
    """
    if len(history) < 2:
        return None
    back = history[-1 - min(window, len(history) - 1)]
    return history[-1] / back if back > 0 else float("inf")
