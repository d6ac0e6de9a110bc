"""What the network costs as it trains now, and what training has cost so far, in FLOPs.

``FlopAccount`` measures one training step's per-image FLOPs of the full network once the input shape is known
(given, or the first batch's), and of the network as it trains whenever it changes (a drop, a freeze, a cache
that now serves the prefix), and adds up every step's, cache build's and probe pass's FLOPs (``FlopCount``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import LearnDropError
from ..models import UnitNetwork
from .flops import FlopCount, StepFlops, measure_step_flops


class FlopAccount:
    def __init__(self, model: UnitNetwork, input_shape: Sequence[int] | None):
        self.model = model
        self.input_shape = tuple(int(v) for v in input_shape) if input_shape is not None else None
        self.count = FlopCount()
        self._full: StepFlops | None = None
        self._step: StepFlops | None = None  # None: measure again
        self._dropped = 0
        self._frozen = False
        self._cached = False

    @property
    def full(self) -> StepFlops:
        """Per-image FLOPs of one training step of the full network."""
        if self._full is None:
            if self.input_shape is None:
                raise LearnDropError("the FLOPs are measured on the first batch: run a forward pass first, "
                                     "or give LearnDrop input_shape=(C, H, W)")
            self._full = measure_step_flops(self.model, self.input_shape)
        return self._full

    @property
    def step(self) -> StepFlops:
        """Per-image FLOPs of one training step of the network as it trains now."""
        if self._step is None:
            whole = not self._dropped and not self._frozen
            self._step = self.full if whole else measure_step_flops(self.model, self.input_shape,
                                                                    self._dropped, cached=self._cached)
        return self._step

    def network_changed(self, dropped: int, frozen: bool, cached: bool) -> None:
        """The network trains ``dropped`` units fewer (and some frozen); ``cached``: its prefix from the
        cache."""
        self._dropped = dropped
        self._frozen = frozen
        self._cached = cached
        self._step = None

    def saw_input(self, shape: Sequence[int]) -> None:
        if self.input_shape is None:
            self.input_shape = tuple(int(v) for v in shape)

    def add_step(self, images: int) -> None:
        """A training step on ``images`` images, and what the full network would have cost for them."""
        c = self.count
        c.fwd += self.step.fwd_total * images
        c.bwd += self.step.bwd_total * images
        c.baseline_fwd += self.full.fwd_total * images
        c.baseline_bwd += self.full.bwd_total * images

    def add_forward(self, flops: int) -> None:
        """Forward FLOPs outside the steps: a cache build."""
        self.count.fwd += flops

    def add_probe(self, names: Sequence[str], images: int, passes: int = 1) -> None:
        """``passes`` forward passes of ``images`` probe images through the modules ``names``."""
        flops = passes * images * sum(self.full.fwd[n] for n in names)
        self.count.fwd += flops
        self.count.probe += flops

    def unit_fwd(self) -> list[int]:
        """Per-image forward FLOPs of each unit (what a cache build costs)."""
        return [self.full.fwd[n] for n in self.model.unit_names]
