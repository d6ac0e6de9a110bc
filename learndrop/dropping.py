"""Scaling the network down (SPEC §3): freeze a prefix, take it out of the optimizer, cache its output."""

from __future__ import annotations

import time
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
    """The dropped prefix's output for the whole training set, computed once under ``no_grad``.

    Held on the training device in ``dtype``, stored NHWC so that a gathered batch is already
    channels_last. When the prefix grows from ``k`` to ``k'`` units, the cache is *extended*: units
    ``[k, k')`` are applied to the cached features, never recomputed from the images.
    """

    def __init__(self, features: torch.Tensor, units: int, dtype: torch.dtype):
        self.features = features  # (N, H, W, C), dtype
        self.units = units  # the prefix length whose output this holds
        self.dtype = dtype

    @property
    def nbytes(self) -> int:
        return self.features.numel() * self.features.element_size()

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        """Float32, NCHW shape, channels_last strides."""
        return self.features[idx.to(self.features.device)].float().permute(0, 3, 1, 2)

    @staticmethod
    def bytes_needed(model: UnitNetwork, sample: torch.Tensor, units: int, n: int, dtype: torch.dtype) -> int:
        with torch.no_grad():
            out = model.forward_units(sample[:1], 0, units)
        return out[0].numel() * n * torch.empty(0, dtype=dtype).element_size()

    @classmethod
    def build(cls, model: UnitNetwork, batches, n: int, units: int, dtype: torch.dtype, batch_size: int,
              previous: ActivationCache | None = None) -> tuple[ActivationCache, float]:
        """Run units ``[previous.units or 0, units)`` over all ``n`` samples; returns the cache and seconds.

        ``batches.get(idx)`` gives the (normalised, un-augmented) images when there is no previous cache.
        """
        start_time = time.perf_counter()
        start = previous.units if previous is not None else 0
        features = None
        with torch.no_grad():
            for idx in torch.arange(n).split(batch_size):
                x = previous.batch(idx) if previous is not None else batches.get(idx)[0]
                y = model.forward_units(x, start, units).permute(0, 2, 3, 1).to(dtype)
                if features is None:
                    features = torch.empty((n, *y.shape[1:]), dtype=dtype, device=y.device)
                features[idx.to(y.device)] = y
        return cls(features, units, dtype), time.perf_counter() - start_time
