"""A fixed probe batch, and what it tells about each unit's function: the two probe-based criteria.

* **Function-space change** (``measure="function"``): ``d = 1 − CKA(A_prev, A_now)``, the linear centred
  kernel alignment (Kornblith et al. 2019) of a unit's output on the probe batch at the last check and
  now, the network in eval mode. Where weight movement under BatchNorm and weight decay settles at an
  equilibrium, this measures what the unit computes. For the frontier (the first unit still training)
  the input is the frozen prefix's fixed output, so its ``d`` is its own change alone; behind it, a
  unit's output also moves with every unit before it. Each output is kept as its centred Gram matrix
  (probe × probe), not as the maps themselves, so the memory does not grow with the feature maps.
* **Rewind gate** (``rewind_eps``): the relative change of the probe loss when one unit is put back
  to its weights of the last check, the rest of the network as it is now. Below ``rewind_eps`` the
  unit's last interval of learning no longer mattered to the loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..models import UnitNetwork

PROBE_IMAGES = 256  # the probe batch: this many validation images (or training images, without a split)


def centred_gram(a: torch.Tensor) -> torch.Tensor:
    """``H (A Aᵀ) H`` for a batch of outputs ``a`` (n, ...), each flattened: n × n, fp32."""
    x = a.detach().reshape(a.shape[0], -1).float()
    x = x - x.mean(dim=0, keepdim=True)  # centring the features centres the Gram matrix on both sides
    return x @ x.T


def cka(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    """Linear CKA of two centred Gram matrices: ``<K, L> / (‖K‖ ‖L‖)``, in [0, 1] (1: the same function up to
    rotation and scale). A constant output (zero Gram) has nothing to align: CKA 1 with another constant
    one."""
    denom = torch.linalg.matrix_norm(k) * torch.linalg.matrix_norm(l)
    return torch.where(denom > 0, (k * l).sum() / denom.clamp_min(1e-30), torch.ones_like(denom))


class Probe:
    """A fixed batch ``x, y`` on the model's device, and the unit outputs and losses measured on it."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    @torch.no_grad()
    def grams(self, model: UnitNetwork, units: Sequence[int]) -> dict[int, torch.Tensor]:
        """The centred Gram matrix of each of ``units``' outputs (eval mode; the caller restores the mode)."""
        model.eval()
        wanted = set(units)
        out = {}
        x = self.x
        for k in range(max(units, default=-1) + 1):
            x = model.forward_units(x, k, k + 1)
            if k in wanted:
                out[k] = centred_gram(x)
        return out

    @torch.no_grad()
    def loss(self, model: UnitNetwork) -> torch.Tensor:
        model.eval()
        return F.cross_entropy(model(self.x).float(), self.y)

    @torch.no_grad()
    def rewind_effects(self, model: UnitNetwork, units: Sequence[int],
                       earlier: dict[int, dict[str, torch.Tensor]]) -> dict[int, float]:
        """Per unit of ``units``: ``|L(unit at its earlier weights) − L(now)| / L(now)`` on the probe batch,
        each unit rewound alone and then put back (its buffers too: BatchNorm's running statistics)."""
        now = self.loss(model)
        out = {}
        for k in units:
            unit = model.unit(k)
            current = {name: t.clone() for name, t in unit.state_dict().items()}
            unit.load_state_dict(earlier[k])
            out[k] = self.loss(model)
            unit.load_state_dict(current)
        values = torch.stack([(v - now).abs() / now.clamp_min(1e-12) for v in out.values()]) if out else None
        return dict(zip(out, values.tolist())) if values is not None else {}


def probe_of(data: Any) -> Probe:
    """``PROBE_IMAGES`` of ``data`` (``get(rows) -> (x, y)``, not augmented), spread evenly over it: data
    sets stored class by class then give every class its share."""
    rows = torch.linspace(0, len(data) - 1, min(PROBE_IMAGES, len(data))).round().long()
    return Probe(*data.get(rows))


def unit_weights(model: UnitNetwork, units: Sequence[int]) -> dict[int, dict[str, torch.Tensor]]:
    """A copy of each unit's parameters and buffers, to rewind it to later."""
    return {k: {name: t.detach().clone() for name, t in model.unit(k).state_dict().items()} for k in units}


def changes(previous: dict[int, torch.Tensor], current: dict[int, torch.Tensor]) -> dict[int, float]:
    """``1 − CKA`` per unit between two sets of centred Gram matrices, with one device sync for all."""
    keys = [k for k in current if k in previous]
    if not keys:
        return {}
    values = torch.stack([1.0 - cka(previous[k], current[k]) for k in keys]).clamp_min(0.0)
    return dict(zip(keys, values.cpu().tolist()))
