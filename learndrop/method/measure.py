"""What the controller measures of each unit between two checks: its change ``d`` and its gradient norms.

``d`` is the change per unit of learning rate (``lr_normalized``): divided by the interval's mean learning
rate as a share of the peak, so a decaying schedule is not read as convergence (never scaled up more than
``1 / MIN_LR_FACTOR`` times, at the end of a decay to 0).

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
from .probe import Probe, unit_weights
from .probe import changes as function_changes
from .scores import relative_changes, snapshot

MIN_LR_FACTOR = 0.01  # the lr normalisation never scales d up more than 100x (the end of a decay to 0)


class Measurement:
    """The snapshots ``d`` is measured against, and each unit's summed gradient norms since the last check.

    ``probe``: the fixed batch of ``measure="function"`` (None: refused when that measure is asked for);
    ``unit_fwd``: per-image forward FLOPs of each unit, once known (the probe passes' cost);
    ``restore_mode``: puts the network back in its training modes after a probe pass (eval mode);
    ``peak_lr``: the learning rate ``d`` is normalised by.
    """

    def __init__(self, model: UnitNetwork, probe: Probe | None, restore_mode: Callable[[], None],
                 peak_lr: float):
        self.model = model
        self.probe = probe
        self.restore_mode = restore_mode
        self.peak_lr = peak_lr
        self._lr_sum = 0.0
        self._lr_steps = 0
        self.previous: dict[int, torch.Tensor] = {}
        self.rewind_points: dict[int, dict[str, torch.Tensor]] = {}  # per unit, its weights at the last check
        # (modules run, passes) since the caller took them
        self.probe_passes: list[tuple[list[str], int]] = []
        # per unit, summed gradient norms since the last check (on device)
        self._g_sum: torch.Tensor | None = None
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
            self.probe_passes.append((list(self.model.unit_names[:max(indices, default=-1) + 1]), 1))
            return grams
        units = [self.model.unit(k) for k in indices]
        return dict(zip(indices, snapshot(units, directions=config.measure == "directions")))

    def start(self, config: PolicyConfig, indices: Sequence[int]) -> None:
        """Take every unit's first snapshot (at the start, or after a restore)."""
        self.previous = self.snapshot(config, indices)

    def add_lr(self, lr: float) -> None:
        """A step taken at learning rate ``lr``."""
        self._lr_sum += lr
        self._lr_steps += 1

    def interval(self, config: PolicyConfig, active: Sequence[int], n_units: int
                 ) -> tuple[list[float | None], float]:
        """Every unit's ``d`` since the last check (None where not active) and ``lr_factor``, the interval's
        mean learning rate as a share of the peak; the learning rates start again."""
        measured = self.changes(config, active)
        lr_factor = (self._lr_sum / max(1, self._lr_steps)) / self.peak_lr
        self._lr_sum = 0.0
        self._lr_steps = 0
        scale = 1.0 / max(lr_factor, MIN_LR_FACTOR) if config.lr_normalized else 1.0
        d: list[float | None] = [None] * n_units
        for k in active:
            d[k] = measured[k] * scale
        return d, lr_factor

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

    def keep_rewind_points(self, config: PolicyConfig, active: Sequence[int]) -> None:
        """With the rewind gate, a copy of every unit still training, to put it back to at the next check."""
        self.rewind_points = unit_weights(self.model, active) if config.rewind_eps > 0 else {}

    def rewind(self, config: PolicyConfig, units: Sequence[int], n_units: int) -> tuple[float | None, ...]:
        """The rewind gate's test of ``units``: the probe loss's relative change with each put back to its
        weights of the last check (None for the others)."""
        effects = self.need_probe(config.measure).rewind_effects(self.model, units, self.rewind_points)
        self.restore_mode()
        self.probe_passes.append(([*self.model.unit_names, self.model.head_name], 1 + len(units)))
        return tuple(effects.get(k) for k in range(n_units))

    def take_probe_passes(self) -> list[tuple[list[str], int]]:
        passes, self.probe_passes = self.probe_passes, []
        return passes
