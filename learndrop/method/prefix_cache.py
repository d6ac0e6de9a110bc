"""The controller's cache bookkeeping: when to fill or extend the activation cache, how it was built
(replayed op by op when a checkpoint is restored), and what each build cost.

``PrefixCache`` holds the ``ActivationCache`` of the dropped prefix and the ops that built it; the
controller (``method.controller``) tells it the prefix length and adds the FLOPs it reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from .. import events as ev
from ..errors import LearnDropError
from ..models import UnitNetwork
from .cache import ActivationCache, Transform, cache_cost, choose_views
from .dropping import set_train_mode

BUILD_BATCH = 512  # images per no-grad pass when the cache is built
GPU_SHARE = 0.5  # on a GPU, the cache takes at most this share of the memory free when it is built



@runtime_checkable
class InMemoryData(Protocol):
    """A training set held in memory, which the activation cache can compute the prefix's output for:
    ``labels`` (N,), its length, and ``get(idx, generator)`` -> (normalised inputs, labels) of the rows
    ``idx`` (augmented with ``generator`` when it augments; ``generator`` None: never augmented).
    ``ImageBatches`` is one (``learndrop.data.loader``)."""

    labels: torch.Tensor

    def __len__(self) -> int: ...

    def get(self, idx: torch.Tensor, generator: torch.Generator | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]: ...


def check_data(data: object) -> InMemoryData:
    """``data`` as the cache needs it, or a ``LearnDropError`` naming what it lacks."""
    missing = [name for name in ("labels", "__len__", "get") if not hasattr(data, name)]
    if missing:
        raise LearnDropError(f"LearnDrop(data=...) serves batches from a training set in memory: a "
                             f"{type(data).__name__} has no {', '.join(missing)} (the protocol: "
                             "learndrop.method.prefix_cache.InMemoryData)", field="data")
    return data  # type: ignore[return-value]


@dataclass(frozen=True)
class CacheSettings:
    enabled: bool = True
    max_mb: float = 2048.0  # cap on the cache's memory
    dtype: str = "float16"  # float16 | float32
    # candidate view sets, richest first (cache.augmented_views); one un-augmented view without augmentation
    view_sets: tuple[tuple[Transform, ...], ...] = (((0, 0, False),),)
    amp: bool = False  # fill it under the bf16 autocast the loop runs the uncached prefix in (CUDA)


@dataclass(frozen=True)
class CacheUpdate:
    events: list[ev.Event]  # cache_built or cache_skipped, unstamped
    fwd_flops: int  # what building it cost (already counted in ``LearnDrop.flops``)
    seconds: float


class PrefixCache:
    """The activation cache of ``model``'s dropped prefix over ``data`` (``ImageBatches``), and its history.

    ``unit_fwd``: per-image forward FLOPs of each unit (what building costs), asked for when a build is
    counted.
    """

    def __init__(self, model: UnitNetwork, data: InMemoryData | None, settings: CacheSettings,
                 unit_fwd: Callable[[], Sequence[int]], refused: int = -1):
        self.model = model
        self.data = data
        self.settings = settings
        self.unit_fwd = unit_fwd
        self.store: ActivationCache | None = None
        self.ops: list[list] = []  # ["new", views] | ["add", units, chunk] | ["extend", units]
        self.refused = refused  # prefix length for which it was refused (over its cap)
        self.rows: torch.Tensor | None = None  # the rows ``update`` last saw
        self.active = False  # the next batches come from it

    def update(self, rows: torch.Tensor, dropped: int, epochs_left: int, chunk: int,
               train_mode: Callable[[], None]) -> CacheUpdate | None:
        """Fill or extend the cache when the prefix (``dropped`` units) or the training rows changed."""
        if self.data is None or (self.rows is not None
                                 and (rows is self.rows or torch.equal(rows, self.rows))):
            return None
        self.rows, update = rows, None
        if (dropped and self.settings.enabled and self.refused != dropped
                and not (self.store is not None and self.store.covers(dropped, rows))):
            update = self._grow(rows, dropped, chunk, epochs_left, train_mode)
        self.active = dropped > 0 and self.store is not None and self.store.covers(dropped, rows)
        return update

    def batch(self, idx: torch.Tensor,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The cached prefix output of ``idx`` (one random view per image when it holds several), its
        labels."""
        views = self.store.views
        view = torch.randint(0, views, (len(idx),), generator=generator) if views > 1 else None
        return self.store.batch(idx, view), self.data.labels[idx.to(self.data.labels.device)]

    def _grow(self, rows: torch.Tensor, k: int, chunk: int, epochs_left: int, train_mode: Callable[[], None]
              ) -> CacheUpdate:
        """Extend the cache to the prefix of ``k`` units and add the ``rows`` it lacks."""
        s = self.settings
        dtype = getattr(torch, s.dtype)
        sample = self.data.get(rows[:1])[0]
        view_sets = [self.store.transforms] if self.store is not None and self.store.rows else s.view_sets
        sizes = [ActivationCache.bytes_needed(self.model, sample, k, len(self.data), dtype, len(v))
                 for v in view_sets]
        cap, where = self._cap(sample.device)
        views = choose_views(view_sets, sizes, cap, epochs_left)
        if views is None:
            return self._skipped(k, min(sizes),
                                 f"the prefix output needs {min(sizes) / 2**20:.0f} MiB, over {where}")
        start = time.perf_counter()
        train_mode()
        try:
            with torch.autocast(sample.device.type, dtype=torch.bfloat16, enabled=s.amp):
                if self.store is None:
                    self.store = ActivationCache(len(self.data), dtype, views)
                    self.ops.append(["new", [list(t) for t in views]])
                old_units, extended = self.store.units, 0
                if self.store.rows and self.store.units != k:
                    extended = self.store.extend(self.model, k, BUILD_BATCH)
                    self.ops.append(["extend", k])
                added = self.store.add(self.model, self.data, rows, k, BUILD_BATCH)
        except torch.OutOfMemoryError:  # the estimate was short (fragmentation, another process): no cache
            self.ops = []
            torch.cuda.empty_cache()
            return self._skipped(k, min(sizes), "the device ran out of memory while building it")
        if added:
            self.ops.append(["add", k, chunk])
        cost = cache_cost(self.unit_fwd(), old_units, k, extended, added, self.store.views)
        return self._built(cost, time.perf_counter() - start, extended, added)

    def _cap(self, device: torch.device) -> tuple[float, str]:
        """The bytes a cache may take, and what sets it: ``max_mb``, or on a GPU ``GPU_SHARE`` of its free
        memory when that is less (an extension holds the old features beside the new ones: they are not
        free)."""
        cap, where = self.settings.max_mb * 2**20, f"the {self.settings.max_mb:g} MiB cap"
        if device.type == "cuda":
            free = GPU_SHARE * torch.cuda.mem_get_info(device)[0]
            if free < cap:
                cap, where = free, (f"{GPU_SHARE:.0%} of the GPU memory free ({free / GPU_SHARE / 2**20:.0f} "
                                    "MiB)")
        return cap, where

    def _skipped(self, k: int, needed: int, why: str) -> CacheUpdate:
        self.store, self.refused = None, k
        reason = f"{why}; the prefix is recomputed every step under no_grad"
        return CacheUpdate([ev.CacheSkipped(bytes_needed=needed, reason=reason)], 0, 0.0)

    def rebuild(self, ops: Sequence[list], chunks: Sequence[torch.Tensor],
                frozen: Sequence[str]) -> CacheUpdate:
        """Build the cache again the way ``ops`` built it (``chunks``: the training rows of each chunk)."""
        start = time.perf_counter()
        device = self.data.labels.device
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.settings.amp):
            cost = self._replay(ops, chunks, frozen)
        self.ops = [list(op) for op in ops]
        return self._built(cost, time.perf_counter() - start, 0, self.store.rows)

    def _replay(self, ops: Sequence[list], chunks: Sequence[torch.Tensor], frozen: Sequence[str]) -> int:
        cost = 0
        for op in ops:
            if op[0] == "new":
                self.store = ActivationCache(len(self.data), getattr(torch, self.settings.dtype),
                                             [tuple(t) for t in op[1]])
                continue
            set_train_mode(self.model, op[1], frozen)
            old = self.store.units
            if op[0] == "extend":
                cost += cache_cost(self.unit_fwd(), old, op[1],
                                   self.store.extend(self.model, op[1], BUILD_BATCH), 0, self.store.views)
            else:
                cost += cache_cost(self.unit_fwd(), 0, op[1], 0,
                                   self.store.add(self.model, self.data, chunks[op[2]], op[1], BUILD_BATCH),
                                   self.store.views)
        return cost

    def _built(self, cost: int, seconds: float, extended: int, added: int) -> CacheUpdate:
        store = self.store
        event = ev.CacheBuilt(units=store.units, extended_rows=extended, added_rows=added, rows=store.rows,
                              bytes=store.nbytes, seconds=round(seconds, 4),
                              dtype=str(store.dtype).replace("torch.", ""), fwd_flops=cost)
        return CacheUpdate([event], cost, seconds)
