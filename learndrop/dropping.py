"""Scaling the network down (SPEC §3): freeze a prefix, take it out of the optimizer, cache its output."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .models import UnitNetwork


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


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class ActivationCache:
    """The dropped prefix's output for the training set, computed under ``no_grad`` and kept.

    Held on the training device in ``dtype``, stored NHWC so that a gathered batch is already
    channels_last. Rows are filled as data arrives (all of it at once, or chunk by chunk when
    streaming): ``add`` computes the prefix for new rows only. When the prefix grows from ``k`` to ``k'``
    units, ``extend`` applies units ``[k, k')`` to the cached rows; they are never recomputed from images.
    """

    def __init__(self, n: int, dtype: torch.dtype):
        self.n = n
        self.dtype = dtype
        self.units = 0  # the prefix length whose output the rows hold
        self.features: torch.Tensor | None = None  # (n, H, W, C)
        self.filled = torch.zeros(n, dtype=torch.bool)

    @property
    def rows(self) -> int:
        return int(self.filled.sum())

    @property
    def nbytes(self) -> int:
        return 0 if self.features is None else self.features.numel() * self.features.element_size()

    def covers(self, units: int, rows: torch.Tensor) -> bool:
        return self.units == units and bool(self.filled[rows].all())

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        """Float32, NCHW shape, channels_last strides."""
        return self.features[idx.to(self.features.device)].float().permute(0, 3, 1, 2)

    @staticmethod
    def bytes_needed(model: UnitNetwork, sample: torch.Tensor, units: int, n: int, dtype: torch.dtype) -> int:
        with torch.no_grad():
            out = model.forward_units(sample[:1], 0, units)
        return out[0].numel() * n * torch.empty(0, dtype=dtype).element_size()

    @torch.no_grad()
    def add(self, model: UnitNetwork, images, rows: torch.Tensor, units: int, batch_size: int) -> int:
        """Compute the prefix ``[0, units)`` for the ``rows`` not cached yet; returns how many were added.

        ``images.get(idx)`` gives normalised, un-augmented images. An empty cache takes ``units``;
        a filled one must already hold that prefix (``extend`` it first).
        """
        if self.rows and units != self.units:
            raise ValueError(f"cache holds {self.units} units, asked to add rows for {units}")
        self.units = units
        new = rows[~self.filled[rows]]
        for idx in new.split(batch_size):
            y = model.forward_units(images.get(idx)[0], 0, units).permute(0, 2, 3, 1).to(self.dtype)
            if self.features is None:
                self.features = torch.empty((self.n, *y.shape[1:]), dtype=self.dtype, device=y.device)
            self.features[idx.to(y.device)] = y
        self.filled[new] = True
        return len(new)

    @torch.no_grad()
    def extend(self, model: UnitNetwork, units: int, batch_size: int) -> int:
        """Grow the cached prefix to ``units`` by running units ``[self.units, units)`` on the cached rows."""
        rows = torch.nonzero(self.filled).flatten()
        features = None
        for idx in rows.split(batch_size):
            y = model.forward_units(self.batch(idx), self.units, units).permute(0, 2, 3, 1).to(self.dtype)
            if features is None:
                features = torch.empty((self.n, *y.shape[1:]), dtype=self.dtype, device=y.device)
            features[idx.to(y.device)] = y
        self.features, self.units = features, units
        return len(rows)
