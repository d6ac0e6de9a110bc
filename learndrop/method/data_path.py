"""The opt-in path for a training set held in memory (``LearnDrop(data=...)``): the steps' batches, served
from the activation cache once a prefix is dropped, and the forward pass of what they give.

Without the cache the dropped prefix runs forward under ``no_grad`` on every batch (its FLOPs are not saved,
its backward is); with it, the prefix's output for the whole training set is computed once and the steps
start from it (``prefix_cache``). A data-parallel run wraps what still trains (``suffix.WrappedSuffix``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..models import UnitNetwork
from .accounting import FlopAccount
from .prefix_cache import CacheSettings, CacheUpdate, InMemoryData, PrefixCache
from .suffix import WrappedSuffix


class DataPath:
    def __init__(self, model: UnitNetwork, data: InMemoryData | None, settings: CacheSettings,
                 account: FlopAccount, train_mode: Callable[[], None],
                 wrap: Callable[[nn.Module], nn.Module] | None = None, refused: int = -1):
        self.model = model
        self.data = data
        self.account = account
        self.train_mode = train_mode
        self.cache = PrefixCache(model, data, settings, account.unit_fwd, refused)
        self._wrapped = WrappedSuffix(model, wrap) if wrap is not None else None

    def update(self, rows: torch.Tensor, dropped: int, frozen: Sequence[int], epochs_left: int, chunk: int
               ) -> CacheUpdate | None:
        """Fill or extend the cache when the prefix or the training rows changed
        (``LearnDrop.update_cache``)."""
        return self._counted(self.cache.update(rows, dropped, epochs_left, chunk, self.train_mode), dropped,
                             frozen)

    def rebuild(self, ops: Sequence[list], chunks: Sequence[torch.Tensor] | None, dropped: int,
                frozen: Sequence[int], frozen_names: Sequence[str]) -> CacheUpdate:
        """The cache built again the way ``ops`` built it (a resumed run trains on the same features)."""
        chunks = chunks or [torch.arange(len(self.data))]
        return self._counted(self.cache.rebuild(ops, chunks, frozen_names), dropped, frozen)

    def batch(self, idx: torch.Tensor,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and labels of the batch ``idx``: the cached prefix output (one random view per image when
        the cache holds several), or the data's images (augmented with ``generator``)."""
        return self.cache.batch(idx, generator) if self.cache.active else self.data.get(idx, generator)

    def forward(self, x: torch.Tensor, dropped: int, frozen: Sequence[int]) -> torch.Tensor:
        """Logits for what ``batch`` gave: the dropped prefix under no_grad (skipped when the input is its
        cached output), then the suffix with autograd."""
        if dropped and not self.cache.active:
            with torch.no_grad():
                x = self.model.forward_units(x, 0, dropped)
        if self._wrapped is None:
            return self.model.forward_from(x, dropped)
        return self._wrapped(x, dropped, tuple(frozen))

    def release(self) -> None:
        """Training is over: the data-parallel wrapper goes now, while its process group is alive."""
        if self._wrapped is not None:
            self._wrapped.release()

    def prefix_changed(self) -> None:
        """A drop: the next ``update`` looks at the cache again."""
        self.cache.rows = None

    def _counted(self, update: CacheUpdate | None, dropped: int, frozen: Sequence[int]) -> CacheUpdate | None:
        """Count a cache build's FLOPs; the steps from now on skip the prefix when the cache holds it."""
        if update is None:
            return None
        store = self.cache.store
        self.account.network_changed(dropped, bool(frozen), store is not None and store.units == dropped)
        self.account.add_forward(update.fwd_flops)
        return update
