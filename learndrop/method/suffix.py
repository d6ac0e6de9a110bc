"""The part of the network that still trains, as one module, and its data-parallel wrapper.

``Suffix`` is units ``[start, n)`` and the head (the very modules); ``WrappedSuffix`` keeps it under a wrapper
such as ``DistributedDataParallel`` (``training.world``), wrapped anew after every drop, so the wrapper never
holds a parameter that gets no gradient.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

import torch
from torch import nn

from ..models import UnitNetwork


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


class WrappedSuffix:
    """``wrap(Suffix(model, dropped))``, made again whenever the dropped prefix or the frozen units change."""

    def __init__(self, model: UnitNetwork, wrap: Callable[[nn.Module], nn.Module]):
        self.model = model
        self.wrap = wrap
        self._key: tuple[int, tuple[int, ...]] | None = None  # (dropped, frozen) of the current wrapper
        self._wrapper: nn.Module | None = None

    def __call__(self, x: torch.Tensor, dropped: int, frozen: tuple[int, ...]) -> torch.Tensor:
        if self._key != (dropped, frozen):  # after a drop: wrapped anew, around what trains
            self.release()
            self._wrapper = self.wrap(Suffix(self.model, dropped))
            self._key = (dropped, frozen)
        return self._wrapper(x)

    def release(self) -> None:
        """Let the wrapper and its gradient hooks go now (it may sit in a cycle): a DistributedDataParallel
        wrapper left to the interpreter's exit ends with the process group already gone, and gloo aborts."""
        if self._wrapper is not None:
            self._wrapper = None
            self._key = None
            gc.collect()
