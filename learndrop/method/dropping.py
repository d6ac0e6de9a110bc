"""Scaling the network down: freeze a prefix, take it out of the optimizer, keep its BatchNorm in eval mode."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..models import UnitNetwork


def param_groups(model: UnitNetwork) -> list[dict]:
    """One optimizer param group per unit and one for the head, each named by its module path."""
    groups = [{"name": name, "params": list(unit.parameters())} for name, unit in model.units()]
    groups.append({"name": model.head_name, "params": list(model.head_module().parameters())})
    return [g for g in groups if g["params"]]


def freeze_units(model: UnitNetwork, optimizer: torch.optim.Optimizer, names: Sequence[str]) -> None:
    """Stop learning in ``names``: no gradients, out of the optimizer (groups and state), BN in eval mode.

    Removing the param group and its state is what keeps momentum and weight decay from moving the
    weights on; ``requires_grad=False`` alone would not.
    """
    names = set(names)
    for name in names:
        unit = model.get_submodule(name)
        for p in unit.parameters():
            p.requires_grad_(False)
            p.grad = None
            optimizer.state.pop(p, None)
        unit.eval()
    optimizer.param_groups[:] = [g for g in optimizer.param_groups if g.get("name") not in names]


def set_train_mode(model: UnitNetwork, dropped: int, frozen: Sequence[str] = ()) -> None:
    """``model.train()`` for the units still learning; the dropped prefix and frozen units stay in eval."""
    model.train()
    for name in (*model.unit_names[:dropped], *frozen):
        model.get_submodule(name).eval()


class Suffix(nn.Module):
    """Units ``[start, n)`` and the head of ``model`` (the very modules) as one: what a data-parallel wrapper
    wraps, so that it holds only what may still train."""

    def __init__(self, model: UnitNetwork, start: int):
        super().__init__()
        self.parts = nn.ModuleList([model.unit(k) for k in range(start, len(model.unit_names))]
                                   + [model.head_module()])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for part in self.parts:
            x = part(x)
        return x


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
