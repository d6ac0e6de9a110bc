"""Per-unit change between checks: pure functions of parameter snapshots.

``d = ||θ(t) − θ(t−1)||₂ / (||θ(t−1)||₂ + 1e-12)`` over all of a unit's learnable parameters
(BatchNorm's affine included, running statistics excluded: they are buffers, not parameters).

``directions=True`` first scales each filter of a conv that a BatchNorm follows to unit length. Such
a filter is scale-invariant (the BN undoes its length), and with weight decay its length keeps
shrinking or growing towards an equilibrium set by the learning rate and the decay: a change in length
that the raw ``d`` counts as learning although the network computes the same function.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

EPS = 1e-12


def scale_invariant(unit: nn.Module) -> set[int]:
    """Ids of the conv weights in ``unit`` that a BatchNorm directly follows (registration order)."""
    modules = list(unit.modules())
    return {id(a.weight) for a, b in zip(modules, modules[1:])
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d)}


def _flat(p: torch.Tensor, unit_length: bool) -> torch.Tensor:
    w = p.detach().float()
    if unit_length:  # one row per output filter, each scaled to length 1
        rows = w.reshape(w.shape[0], -1)
        return (rows / rows.norm(dim=1, keepdim=True).clamp_min(EPS)).reshape(-1)
    return w.reshape(-1).clone()


def snapshot(units: Sequence[nn.Module], directions: bool = False) -> list[torch.Tensor]:
    """One flat fp32 copy of each unit's learnable parameters, on the parameters' device."""
    out = []
    for unit in units:
        invariant = scale_invariant(unit) if directions else set()
        parts = [_flat(p, id(p) in invariant) for p in unit.parameters()]
        out.append(torch.cat(parts) if parts else torch.zeros(0))
    return out


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
