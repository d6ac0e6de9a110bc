"""A CNN seen as a chain of droppable units followed by a head."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from torch import nn


class UnitNetwork(nn.Module):
    """``head(unit_n(...unit_1(x)))``, with the units named by their module path.

    ``children`` are registered as top-level submodules in order; ``unit_names`` are module paths into
    them (``"features.0"``, ``"layer2.1"``), in forward order; ``head_name`` is the classifier, which is
    never dropped. Together the units and the head own every parameter exactly once.

    ``normalization`` names the input normalisation the weights expect (``models.weights``: ``imagenet``,
    ``inception``; None: trained here, the data's own); ``source_keys`` maps the state-dict keys of the
    model it was cut from (``learndrop.units``) to its own, so that model's weight files load.
    """

    def __init__(self, children: Mapping[str, nn.Module], unit_names: list[str], head_name: str = "head"):
        super().__init__()
        for name, module in children.items():
            self.add_module(name, module)
        self.unit_names: tuple[str, ...] = tuple(unit_names)
        self.head_name = head_name
        self.normalization: str | None = None
        self.source_keys: dict[str, str] = {}
        self.grouped: frozenset[str] = frozenset()  # units that group several modules of the source model
        self._check_cover()

    # --- structure -------------------------------------------------------------------------------
    def head_module(self) -> nn.Module:
        return self.get_submodule(self.head_name)

    def unit(self, index: int) -> nn.Module:
        return self.get_submodule(self.unit_names[index])

    def units(self) -> Iterator[tuple[str, nn.Module]]:
        for name in self.unit_names:
            yield name, self.get_submodule(name)

    def call_modules(self, name: str) -> list[nn.Module]:
        """The modules a forward calls for unit ``name``: the unit, or the members of a grouped one (the
        source model's own forward calls them one by one, not the group)."""
        unit = self.get_submodule(name)
        return list(unit.children()) if name in self.grouped else [unit]

    def _check_cover(self) -> None:
        owners: dict[int, str] = {}
        for name in (*self.unit_names, self.head_name):
            for p in self.get_submodule(name).parameters():
                if id(p) in owners:
                    raise ValueError(f"parameter owned by both {owners[id(p)]} and {name}")
                owners[id(p)] = name
        missing = [n for n, p in self.named_parameters() if id(p) not in owners]
        if missing:
            raise ValueError(f"parameters outside every unit and the head: {missing[:3]}")

    # --- forward ---------------------------------------------------------------------------------
    def forward_units(self, x: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Run units ``[start, stop)``: the prefix, the suffix's units, or one unit."""
        for name in self.unit_names[start:stop]:
            x = self.get_submodule(name)(x)
        return x

    def forward_from(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """Logits from the input of unit ``start`` (the suffix of a dropped prefix)."""
        return self.head_module()(self.forward_units(x, start))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_from(x, 0)


def pooled_head(channels: int, num_classes: int) -> nn.Sequential:
    """The classifier both families use: global average pooling, then one linear layer."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))
