"""The activation cache: the dropped prefix's output for the training set, computed once and kept.

With augmentation a fixed prefix output cannot follow fresh random crops, so the cache holds a fixed set
of exact augmented *views* of every image (shifts and mirror images); training picks one per image and
step. ``choose_views`` picks the richest set that fits the cap and pays for itself; ``cache_cost`` is the
forward FLOPs of building or growing it (also used by the threshold explorer's estimate).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..models import UnitNetwork

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
        # pinned: the copy does not wait for the GPU's queue
        if view is not None and idx.device.type == "cuda":
            view = view.pin_memory().to(idx.device, non_blocking=True)
        picked = self.features[idx, 0] if view is None else self.features[idx, view.to(idx.device)]
        return picked.float().permute(0, 3, 1, 2)

    @staticmethod
    def bytes_needed(model: UnitNetwork, sample: torch.Tensor, units: int, n: int, dtype: torch.dtype,
                     views: int = 1) -> int:
        with torch.no_grad():
            out = model.forward_units(sample[:1], 0, units)
        return out[0].numel() * n * views * torch.empty(0, dtype=dtype).element_size()

    def _store(self, target: torch.Tensor | None, idx: torch.Tensor,
               outputs: list[torch.Tensor]) -> torch.Tensor:
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


def cache_cost(unit_fwd: Sequence[int], old_units: int, units: int, extended_rows: int, added_rows: int,
               views: int = 1) -> int:
    """Forward FLOPs of growing a cache: units ``[old_units, units)`` over the ``extended_rows`` it held,
    the whole prefix ``[0, units)`` over the ``added_rows`` it takes from images; once per view.
    ``unit_fwd``: per-image forward FLOPs of each unit."""
    return views * (sum(unit_fwd[old_units:units]) * extended_rows + sum(unit_fwd[:units]) * added_rows)


def choose_views(view_sets: Sequence[Sequence[Transform]], sizes: Sequence[int], cap_bytes: float,
                 epochs_left: int) -> list[Transform] | None:
    """The richest view set that fits the cap and costs at most half of what it saves, or None.

    Building V views costs V prefix passes over the data; each remaining epoch saves one. A set of one
    or two views is always worth it (it pays back within the epoch it is built in and the next).
    """
    for views, size in zip(view_sets, sizes):
        if size <= cap_bytes and (len(views) <= epochs_left / 2 or len(views) <= 2):
            return list(views)
    return None
