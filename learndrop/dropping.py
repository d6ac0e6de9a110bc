"""Scaling the network down (SPEC §3): freeze a prefix, take it out of the optimizer, cache its output."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
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

    For training with augmentation the cache keeps what a fixed prefix output can keep of it:
    ``views=2`` also stores the output for the mirrored image (random flips), and ``pad`` > 0 stores the
    output for the image with ``pad`` px of zero padding around it, of which ``batch`` crops a window at
    a random offset that is a multiple of the prefix's stride (random crops on that grid).
    """

    def __init__(self, n: int, dtype: torch.dtype, views: int = 1, pad: int = 0, margin: int = 0):
        self.n = n
        self.dtype = dtype
        self.views = views  # 1, or 2: the image and its mirror image
        self.pad = pad  # px of padding around each image before the prefix
        self.margin = margin  # the same padding in feature-map px (pad / stride of the prefix)
        self.units = 0  # the prefix length whose output the rows hold
        self.features: torch.Tensor | None = None  # (n, views, H + 2 margin, W + 2 margin, C)
        self.filled = torch.zeros(n, dtype=torch.bool)

    @property
    def rows(self) -> int:
        return int(self.filled.sum())

    @property
    def nbytes(self) -> int:
        return 0 if self.features is None else self.features.numel() * self.features.element_size()

    def covers(self, units: int, rows: torch.Tensor) -> bool:
        return self.units == units and bool(self.filled[rows].all())

    def batch(self, idx: torch.Tensor, view: torch.Tensor | None = None,
              offset: torch.Tensor | None = None) -> torch.Tensor:
        """Float32, NCHW shape, channels_last strides.

        ``view`` picks each row's image (0) or mirror (1); ``offset`` (B, 2) the top-left corner of each
        row's crop in [0, 2 margin] (default: the centre, the unpadded image's place).
        """
        idx = idx.to(self.features.device)
        picked = self.features[idx, 0] if view is None else self.features[idx, view.to(idx.device)]
        if self.margin:
            b, hp, wp, _ = picked.shape
            h, w = hp - 2 * self.margin, wp - 2 * self.margin
            if offset is None:
                picked = picked[:, self.margin:self.margin + h, self.margin:self.margin + w]
            else:
                offset = offset.to(idx.device)
                rows = torch.arange(h, device=idx.device).view(1, h, 1) + offset[:, 0].view(b, 1, 1)
                cols = torch.arange(w, device=idx.device).view(1, 1, w) + offset[:, 1].view(b, 1, 1)
                picked = picked[torch.arange(b, device=idx.device).view(b, 1, 1), rows, cols]
        return picked.float().permute(0, 3, 1, 2)

    @staticmethod
    def bytes_needed(model: UnitNetwork, sample: torch.Tensor, units: int, n: int, dtype: torch.dtype,
                     views: int = 1, pad: int = 0) -> int:
        with torch.no_grad():
            out = model.forward_units(F.pad(sample[:1], (pad,) * 4), 0, units)
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
            x = F.pad(images.get(idx)[0], (self.pad,) * 4)
            inputs = [x, x.flip(3)][: self.views]
            self.features = self._store(self.features, idx, [model.forward_units(v, 0, units) for v in inputs])
        self.filled[new] = True
        return len(new)

    @torch.no_grad()
    def extend(self, model: UnitNetwork, units: int, batch_size: int) -> int:
        """Grow the cached prefix to ``units`` by running units ``[self.units, units)`` on the cached rows.

        Only for an unpadded cache: a padded one changes its crop grid with the stride, so it is rebuilt.
        """
        if self.pad:
            raise ValueError("a padded cache is rebuilt from the images, not extended")
        rows = torch.nonzero(self.filled).flatten()
        features = None
        for idx in rows.split(batch_size):
            outputs = [model.forward_units(self.batch(idx, torch.full((len(idx),), v)), self.units, units)
                       for v in range(self.views)]
            features = self._store(features, idx, outputs)
        self.features, self.units = features, units
        return len(rows)


def crop_grid(model: UnitNetwork, sample: torch.Tensor, units: int, padding: int) -> tuple[int, int]:
    """(pad px, margin px) for a padded cache of ``units``: the crop padding rounded to the prefix's stride.

    Returns (0, 0) when the stride is too coarse for any crop, or the padded output is not exactly
    ``margin`` feature px wider on each side.
    """
    with torch.no_grad():
        size = model.forward_units(sample[:1], 0, units).shape[-1]
        stride = sample.shape[-1] // size
        margin = int(padding / stride + 0.5) if stride <= 2 * padding else 0
        if margin == 0:
            return 0, 0
        padded = model.forward_units(F.pad(sample[:1], (margin * stride,) * 4), 0, units).shape[-1]
    return (margin * stride, margin) if padded == size + 2 * margin else (0, 0)
