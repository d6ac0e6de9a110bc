"""Scaling the network down (SPEC §3): freeze a prefix, take it out of the optimizer, cache its output."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
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


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


Transform = tuple[int, int, bool]  # (dy, dx, flip): shift the image by dy, dx px (zero fill), then mirror it


def apply_transform(x: torch.Tensor, transform: Transform) -> torch.Tensor:
    """The crop of the zero-padded image at offset (dy, dx) from the centre, mirrored if asked."""
    dy, dx, flip = transform
    if dy or dx:
        p = max(abs(dy), abs(dx))
        h, w = x.shape[-2:]
        x = F.pad(x, (p, p, p, p))[..., p + dy:p + dy + h, p + dx:p + dx + w]
    return x.flip(3) if flip else x


class ActivationCache:
    """The dropped prefix's output for the training set, computed under ``no_grad`` and kept.

    Held on the training device in ``dtype``, stored NHWC so that a gathered batch is already
    channels_last. Rows are filled as data arrives (all of it at once, or chunk by chunk when
    streaming): ``add`` computes the prefix for new rows only. When the prefix grows from ``k`` to ``k'``
    units, ``extend`` applies units ``[k, k')`` to the cached rows; they are never recomputed from images.

    For training with augmentation a fixed prefix output cannot follow fresh random crops, so the cache
    holds a fixed set of augmented *views* of every image (``transforms``: shifts and mirror images,
    each computed exactly) and training picks one view per image and step.
    """

    def __init__(self, n: int, dtype: torch.dtype, transforms: Sequence[Transform] = ((0, 0, False),)):
        self.n = n
        self.dtype = dtype
        self.transforms = tuple(tuple(t) for t in transforms)
        self.units = 0  # the prefix length whose output the rows hold
        self.features: torch.Tensor | None = None  # (n, views, H, W, C)
        self.filled = torch.zeros(n, dtype=torch.bool)

    @property
    def views(self) -> int:
        return len(self.transforms)

    @property
    def rows(self) -> int:
        return int(self.filled.sum())

    @property
    def nbytes(self) -> int:
        return 0 if self.features is None else self.features.numel() * self.features.element_size()

    def covers(self, units: int, rows: torch.Tensor) -> bool:
        return self.units == units and bool(self.filled[rows].all())

    def batch(self, idx: torch.Tensor, view: torch.Tensor | None = None) -> torch.Tensor:
        """Float32, NCHW shape, channels_last strides; ``view`` picks each row's view (default the first)."""
        idx = idx.to(self.features.device)
        picked = self.features[idx, 0] if view is None else self.features[idx, view.to(idx.device)]
        return picked.float().permute(0, 3, 1, 2)

    @staticmethod
    def bytes_needed(model: UnitNetwork, sample: torch.Tensor, units: int, n: int, dtype: torch.dtype,
                     views: int = 1) -> int:
        with torch.no_grad():
            out = model.forward_units(sample[:1], 0, units)
        return out[0].numel() * n * views * torch.empty(0, dtype=dtype).element_size()

    def _store(self, target: torch.Tensor | None, idx: torch.Tensor, outputs: list[torch.Tensor]) -> torch.Tensor:
        y = torch.stack([o.permute(0, 2, 3, 1).to(self.dtype) for o in outputs], dim=1)  # (B, views, H, W, C)
        if target is None:
            target = torch.empty((self.n, *y.shape[1:]), dtype=self.dtype, device=y.device)
        target[idx.to(y.device)] = y
        return target

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
            x = images.get(idx)[0]
            outputs = [model.forward_units(apply_transform(x, t), 0, units) for t in self.transforms]
            self.features = self._store(self.features, idx, outputs)
        self.filled[new] = True
        return len(new)

    @torch.no_grad()
    def extend(self, model: UnitNetwork, units: int, batch_size: int) -> int:
        """Grow the cached prefix to ``units`` by running units ``[self.units, units)`` on the cached rows."""
        rows = torch.nonzero(self.filled).flatten()
        features = None
        for idx in rows.split(batch_size):
            outputs = [model.forward_units(self.batch(idx, torch.full((len(idx),), v)), self.units, units)
                       for v in range(self.views)]
            features = self._store(features, idx, outputs)
        self.features, self.units = features, units
        return len(rows)


def augmented_views(padding: int, flip: bool) -> list[list[Transform]]:
    """Candidate view sets for a cache under augmentation, richest first: the 3 x 3 grid of crops
    (offsets -padding, 0, +padding) times the mirror images, then the centre and four corners, then the
    mirror images alone. The training loop takes the richest that fits under the cache cap."""
    grid = [(dy, dx) for dy in (-padding, 0, padding) for dx in (-padding, 0, padding)]
    corners = [(0, 0), (-padding, -padding), (-padding, padding), (padding, -padding), (padding, padding)]
    mirrors = (False, True) if flip else (False,)
    sets = [[(dy, dx, m) for m in mirrors for dy, dx in offsets] for offsets in (grid, corners, [(0, 0)])]
    return [s for i, s in enumerate(sets) if s not in sets[:i]]
