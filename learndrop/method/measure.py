"""What the controller measures of each unit between two checks: its change ``d`` and its gradient norms.

``d`` is measured on what ``PolicyConfig.measure`` names: the unit's parameters (``params``), their
filter directions where BatchNorm makes a conv scale-invariant (``directions``), or its function on the
probe batch (``function``: 1 − linear CKA of its output then and now, ``method.probe``). The probe batch's
passes are forward FLOPs the method spends: ``Measurement`` reports them, the controller counts them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..config import PolicyConfig
from ..errors import LearnDropError
from ..models import UnitNetwork
from .probe import Probe
from .probe import changes as function_changes
from .scores import relative_changes, snapshot


class Measurement:
    """The snapshots ``d`` is measured against, and each unit's summed gradient norms since the last check.

    ``probe``: the fixed batch of ``measure="function"`` (None: refused when that measure is asked for);
    ``unit_fwd``: per-image forward FLOPs of each unit, once known (the probe passes' cost);
    ``restore_mode``: puts the network back in its training modes after a probe pass (eval mode).
    """

    def __init__(self, model: UnitNetwork, probe: Probe | None, restore_mode: Callable[[], None]):
        self.model, self.probe, self.restore_mode = model, probe, restore_mode
        self.previous: dict[int, torch.Tensor] = {}
        self.probe_passes: list[int] = []  # units run by each probe pass since the caller last took them
        self._g_sum: torch.Tensor | None = None  # per unit, summed gradient norms since the last check (on device)
        self._g_steps = 0
        self._g_index: torch.Tensor | None = None  # the training units' indices, on the device

    def need_probe(self, measure: str) -> Probe:
        if self.probe is None:
            raise LearnDropError(f"measure={measure!r} and rewind_eps need a probe batch: give LearnDrop "
                                 "probe=(images, labels) (a validation batch) or data", field="measure")
        return self.probe

    def snapshot(self, config: PolicyConfig, indices: Sequence[int]) -> dict[int, torch.Tensor]:
        """Per unit, what its change is measured against: its parameters, or its output's Gram matrix."""
        indices = list(indices)
        if config.measure == "function":
            grams = self.need_probe(config.measure).grams(self.model, indices)
            self.restore_mode()
            self.probe_passes.append(max(indices, default=-1) + 1)
            return grams
        units = [self.model.unit(k) for k in indices]
        return dict(zip(indices, snapshot(units, directions=config.measure == "directions")))

    def start(self, config: PolicyConfig, indices: Sequence[int]) -> None:
        """Take every unit's first snapshot (at the start, or after a restore)."""
        self.previous = self.snapshot(config, indices)

    def changes(self, config: PolicyConfig, active: Sequence[int]) -> dict[int, float]:
        """Each active unit's change ``d`` since the last check; the new snapshots kept."""
        current = self.snapshot(config, active)
        if config.measure == "function":
            values = function_changes(self.previous, current)
        else:
            changed = relative_changes([self.previous[k] for k in active], [current[k] for k in active])
            values = dict(zip(active, changed))
        self.previous.update(current)
        return values

    def add_grad_norms(self, active: Sequence[int], n_units: int) -> None:
        """Add each training unit's L1 gradient norm of this step to a device tensor (no host sync)."""
        params = [[p.grad for p in self.model.unit(k).parameters() if p.grad is not None] for k in active]
        device = next(self.model.parameters()).device
        if self._g_sum is None:
            self._g_sum = torch.zeros(n_units, device=device)
        zero = torch.zeros((), device=device)
        norms = torch.stack([sum((g.detach().abs().sum(dtype=torch.float32) for g in grads), zero)
                             for grads in params])
        if self._g_index is None or len(self._g_index) != len(params):  # sent once per set of training units
            self._g_index = torch.tensor(list(active), device=device)
        self._g_sum.index_add_(0, self._g_index, norms)
        self._g_steps += 1

    def grad_norms(self, active: Sequence[int], n_units: int) -> tuple[float | None, ...]:
        """Per unit, its mean gradient norm since the last check (one sync), then the sums start again."""
        total = self._g_sum.tolist() if self._g_sum is not None else [0.0] * n_units
        steps = max(1, self._g_steps)
        self.reset_grad_norms()
        return tuple(total[k] / steps if k in active else None for k in range(n_units))

    def reset_grad_norms(self) -> None:
        self._g_sum, self._g_steps = None, 0

    def take_probe_passes(self) -> list[int]:
        passes, self.probe_passes = self.probe_passes, []
        return passes
