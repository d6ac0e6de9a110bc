"""The Learn&Drop controller: the method's state beside any training loop.

``LearnDrop`` owns what the method needs while a network trains: the weight snapshots and change
scores, the policy and its state, dropping (freeze, optimizer surgery, BatchNorm in eval mode), the
activation cache, and the per-unit FLOPs of the network as it is now. It knows nothing of run folders,
dashboards or command lines; what it has to say comes back as events for the caller to emit.

A loop builds its optimizer over ``param_groups(model)`` (one group per unit, so a drop can take a
unit's group and momentum out), then at every step::

    ld.update_cache(rows, epochs_left)   # a no-op unless the prefix or the data changed
    x, y = ld.batch(idx, generator)       # the cached prefix output, or the (augmented) images
    loss = F.cross_entropy(ld.forward(x), y)
    optimizer.zero_grad(); loss.backward(); optimizer.step()
    ld.after_step(len(idx))               # the step's learning rate and FLOPs (and gradient norms, if observed)
    if at a check: result = ld.check()    # scores, the policy's decision, the drop itself

with ``ld.set_lr(lr, progress)`` before each step when the policy scales units' learning rates (FreezeOut).

Without ``data`` it works on whatever batches the loop has (``ld.forward(images)``), with no cache.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn

from .. import events as ev
from ..config import PolicyConfig
from ..models import UnitNetwork
from .cache import ActivationCache
from .dropping import Suffix, freeze_units, set_train_mode, trainable_parameters
from .flops import FlopCount, StepFlops, measure_step_flops
from .peers import get_policy
from .policy import Decision, Drop, Observations, PolicyState, initial_state
from .prefix_cache import BUILD_BATCH, CacheSettings, CacheUpdate, Pending, PrefixCache
from .probe import Probe, probe_of, unit_weights, changes as function_changes

__all__ = ["BUILD_BATCH", "CacheSettings", "CacheUpdate", "CheckResult", "FlopCount", "LearnDrop", "Pending"]
from .scores import relative_changes, snapshot

MIN_LR_FACTOR = 0.01  # the lr normalisation never scales d up more than 100x (the end of a decay to 0)


@dataclass(frozen=True)
class CheckResult:
    decision: Decision
    lr_factor: float  # the interval's mean learning rate as a share of the peak
    events: list[Pending]  # thresholds_changed?, layer_scores, layer_dropped..., layer_frozen...


class LearnDrop:
    """Learn&Drop on ``model`` (a ``UnitNetwork``) trained by ``optimizer`` (built over ``param_groups``).

    ``input_shape`` (C, H, W) sizes the FLOPs measurement; ``data`` (``get(idx, generator) -> (x, y)``,
    ``labels``, ``len``: the loader's ``ImageBatches``) lets it serve batches and cache the prefix;
    ``reference_peaks`` are per-unit peaks carried over from an earlier run (fine-tuning); ``peak_lr`` is
    the learning rate that the change is normalised by (default: the optimizer's at construction);
    ``probe`` (images, labels: a validation batch) serves ``measure="function"`` and the rewind gate
    (default: ``PROBE_IMAGES`` of ``data``, spread over it); ``wrap`` puts the trainable suffix under a
    data-parallel wrapper (``DistributedDataParallel``), anew after every drop (``training.world``).
    """

    def __init__(self, model: UnitNetwork, optimizer: torch.optim.Optimizer, policy: PolicyConfig | None = None,
                 input_shape: Sequence[int] | None = None, *, data: Any = None, cache: CacheSettings | None = None,
                 reference_peaks: Sequence[float] | None = None, peak_lr: float | None = None,
                 probe: Probe | tuple[torch.Tensor, torch.Tensor] | None = None,
                 wrap: Callable[[nn.Module], nn.Module] | None = None):
        self.model, self.optimizer, self.data = model, optimizer, data
        self.config = policy or PolicyConfig()
        self.config.validate()
        self.policy = get_policy(self.config.name)
        self.names = list(model.unit_names)
        if input_shape is None:
            if data is None:
                raise ValueError("LearnDrop needs input_shape (C, H, W) when it is given no data")
            input_shape = data.images.shape[1:]
        self.input_shape = tuple(int(v) for v in input_shape)
        self.cache_settings = cache or CacheSettings(enabled=data is not None)
        self.state = initial_state(self.names, reference_peaks)
        self.full_flops = measure_step_flops(model, self.input_shape)
        self.step_flops: StepFlops = self.full_flops
        self.flops = FlopCount()
        self.peak_lr = float(peak_lr if peak_lr is not None else optimizer.param_groups[-1]["lr"])
        self._lr_sum, self._lr_steps = 0.0, 0
        self._progress = 0.0  # the share of the run's steps done, as ``set_lr`` or ``check`` last said
        self._g_sum, self._g_steps = None, 0  # per unit, summed gradient norms since the last check (on device)
        self._g_index: torch.Tensor | None = None  # the training units' indices, on the device
        self._cache = PrefixCache(model, data, self.cache_settings, self._unit_fwd())
        if isinstance(probe, tuple):
            probe = Probe(*probe)
        self._probe = probe if probe is not None or data is None else probe_of(data)
        self._pending = self._start()  # drops before any training (freeze-first-k), reported at the first check
        self._previous = self._snapshot(range(len(self.names)))
        self._weights = self._rewind_points()
        self._wrap, self._wrapped = wrap, None  # (what it wraps: dropped, frozen), the wrapper

    # --- what the network is now ------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        """Length of the dropped prefix."""
        return self.state.dropped

    @property
    def frozen(self) -> list[str]:
        """Units frozen behind the frontier (``freeze_candidates``)."""
        return [self.names[k] for k in self.state.frozen]

    @property
    def active_units(self) -> int:
        return len(self.names) - self.dropped - len(self.state.frozen)

    @property
    def trainable_params(self) -> int:
        return trainable_parameters(self.model)

    @property
    def cache(self) -> ActivationCache | None:
        return self._cache.store

    def set_lr(self, lr: float, progress: float) -> None:
        """Set every param group's learning rate to ``lr`` times its unit's multiplier under the policy at
        ``progress`` (the share of the run's steps done); the head's, and every unit's unless the policy
        scales them (FreezeOut), is 1."""
        self._progress = float(progress)
        scales = self.policy.lr_scales(self.state, self._progress, self.config)
        by_name = dict(zip(self.names, scales)) if scales is not None else {}
        for group in self.optimizer.param_groups:
            group["lr"] = lr * by_name[group["name"]] if group.get("name") in by_name else lr

    def train_mode(self) -> None:
        """``model.train()`` for what still learns; the dropped prefix and frozen units stay in eval."""
        set_train_mode(self.model, self.dropped, self.frozen)

    # --- one step -------------------------------------------------------------------------------------
    def update_cache(self, rows: torch.Tensor, epochs_left: int, chunk: int = 0) -> CacheUpdate | None:
        """Fill or extend the activation cache when the prefix or the training rows changed.

        ``rows``: the indices the coming batches are drawn from (the whole training set, or the stream's
        current ``chunk``); ``epochs_left``: epochs still to train, counting this one. Cheap when nothing
        changed (the same ``rows`` object, no drop since): call it before every step.
        """
        return self._counted(self._cache.update(rows, self.dropped, epochs_left, chunk, self.train_mode))

    def batch(self, idx: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and labels of the batch ``idx``: the cached prefix output (one random view per image
        when the cache holds several), or the data's images (augmented with ``generator``)."""
        return self._cache.batch(idx, generator) if self._cache.active else self.data.get(idx, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for what ``batch`` gave: the dropped prefix under no_grad (skipped when the input is
        its cached output), then the suffix with autograd."""
        if self.dropped and not self._cache.active:
            with torch.no_grad():
                x = self.model.forward_units(x, 0, self.dropped)
        if self._wrap is None:
            return self.model.forward_from(x, self.dropped)
        key = (self.dropped, tuple(self.state.frozen))
        if self._wrapped is None or self._wrapped[0] != key:  # after a drop: wrapped anew, around what trains
            if self._wrapped is not None:  # the old wrapper and its gradient hooks go first (it may sit in a cycle)
                self._wrapped = None
                gc.collect()
            self._wrapped = (key, self._wrap(Suffix(self.model, self.dropped)))
        return self._wrapped[1](x)

    def after_step(self, images: int, lr: float | None = None) -> None:
        """Count the step: its learning rate (default: the optimizer's) and its FLOPs for ``images``; and,
        when the policy observes them, each unit's gradient norm (summed on the device, no sync)."""
        self._lr_sum += self.optimizer.param_groups[-1]["lr"] if lr is None else lr
        self._lr_steps += 1
        if "grad_norm" in self.policy.observes:
            self._add_grad_norms()
        f = self.flops
        f.fwd += self.step_flops.fwd_total * images
        f.bwd += self.step_flops.bwd_total * images
        f.baseline_fwd += self.full_flops.fwd_total * images
        f.baseline_bwd += self.full_flops.bwd_total * images

    # --- a check ----------------------------------------------------------------------------------------
    def check(self, policy: PolicyConfig | None = None, progress: float | None = None) -> CheckResult:
        """Score every unit still training, let the policy decide, and drop (or freeze) what it says.

        ``policy``: the thresholds to use from now on (the live ones); a change is reported first.
        ``progress``: the share of the run's optimizer steps done (default: what ``set_lr`` was last told).
        """
        events, self._pending = self._pending, []
        if progress is not None:
            self._progress = float(progress)
        if policy is not None and policy != self.config:
            events.append((ev.ThresholdsChanged, dict(old=self.config.thresholds(), new=policy.thresholds())))
            self.config, self.policy = policy, get_policy(policy.name)
        active = self._active()
        measured = self._changes(active)
        # lr_factor: the mean learning rate since the last check, as a share of the peak. Dividing by it
        # makes d the change per unit of learning rate, so a decaying schedule is not read as convergence.
        lr_factor = (self._lr_sum / max(1, self._lr_steps)) / self.peak_lr
        self._lr_sum, self._lr_steps = 0.0, 0
        scale = 1.0 / max(lr_factor, MIN_LR_FACTOR) if self.config.lr_normalized else 1.0
        d: list[float | None] = [None] * len(self.names)
        for k in active:
            d[k] = measured[k] * scale
        observations = Observations(tuple(d), min(1.0, max(0.0, self._progress)), self._grad_norms(active))
        state, decision = self.policy.step(self.state, observations, self.config)
        if decision.untested:  # the rewind gate: test the units that would drop, then decide again
            effects = self._need_probe().rewind_effects(self.model, decision.untested, self._weights)
            self._count_probe(len(self.names), passes=1 + len(decision.untested), head=True)
            self.train_mode()
            observations = replace(observations, rewind=tuple(effects.get(k) for k in range(len(self.names))))
            state, decision = self.policy.step(self.state, observations, self.config)
        self.state = state

        observed = decision.observed or ({},) * len(decision.scores)
        events.append((ev.LayerScores, dict(check=decision.check, thresholds=self.config.thresholds(),
                                             lr_factor=round(lr_factor, 6),
                                             scores=[{**asdict(s), **o} for s, o in zip(decision.scores, observed)])))
        events += [_dropped_event(dr, decision.check) for dr in decision.drops]
        events += [(ev.LayerFrozen, dict(unit=name, check=decision.check)) for name in decision.frozen]
        if decision.drops or decision.frozen:
            freeze_units(self.model, self.optimizer, [dr.unit for dr in decision.drops] + list(decision.frozen))
            self.step_flops = measure_step_flops(self.model, self.input_shape, self.dropped, cached=False)
            self._cache.rows = None  # the next update_cache looks again
        self._weights = self._rewind_points()
        return CheckResult(decision, lr_factor, events)

    def _start(self) -> list[Pending]:
        """Apply the policy's drops before any training; their ``layer_dropped`` events (check 0)."""
        self.state, drops = self.policy.start(self.state, self.config)
        if not drops:
            return []
        freeze_units(self.model, self.optimizer, [dr.unit for dr in drops])
        self.step_flops = measure_step_flops(self.model, self.input_shape, self.dropped, cached=False)
        return [_dropped_event(dr, 0) for dr in drops]

    def _active(self) -> list[int]:
        return [k for k in range(len(self.names)) if k >= self.dropped and k not in self.state.frozen]

    def _add_grad_norms(self) -> None:
        """Add each training unit's L1 gradient norm of this step to a device tensor (no host sync)."""
        params = [[p.grad for p in self.model.unit(k).parameters() if p.grad is not None] for k in self._active()]
        device = next(self.model.parameters()).device
        if self._g_sum is None:
            self._g_sum = torch.zeros(len(self.names), device=device)
        zero = torch.zeros((), device=device)
        norms = torch.stack([sum((g.detach().abs().sum(dtype=torch.float32) for g in grads), zero)
                             for grads in params])
        if self._g_index is None or len(self._g_index) != len(params):  # sent once per set of training units
            self._g_index = torch.tensor(self._active(), device=device)
        self._g_sum.index_add_(0, self._g_index, norms)
        self._g_steps += 1

    def _grad_norms(self, active: Sequence[int]) -> tuple[float | None, ...] | None:
        """Per unit, its mean gradient norm since the last check (one sync); None unless observed."""
        if "grad_norm" not in self.policy.observes:
            return None
        total = self._g_sum.tolist() if self._g_sum is not None else [0.0] * len(self.names)
        steps = max(1, self._g_steps)
        self._g_sum, self._g_steps = None, 0
        return tuple(total[k] / steps if k in active else None for k in range(len(self.names)))

    # --- saved and restored whole ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain values and tensors (``torch.load(weights_only=True)`` reads it back), the optimizer
        included: its param groups follow the drops."""
        c, f = self._cache, self.flops
        return {"policy": asdict(self.config), "policy_state": self.state.to_dict(),
                "optimizer": self.optimizer.state_dict(), "cache_ops": [list(op) for op in c.ops],
                "cache_refused": c.refused, "flops": [f.fwd, f.bwd, f.baseline_fwd, f.baseline_bwd, f.probe]}

    def load_state_dict(self, state: dict[str, Any], chunks: Sequence[torch.Tensor] | None = None
                        ) -> CacheUpdate | None:
        """Put the method back where ``state_dict`` left it; load the model's weights first.

        The cache is rebuilt the way it was built (``chunks``: the stream's chunks, default the whole
        training set), so a resumed run trains on the same features; returns that rebuild.
        """
        self.config = PolicyConfig(**state["policy"])
        self.policy = get_policy(self.config.name)
        self.state = PolicyState.from_dict(state["policy_state"])
        freeze_units(self.model, self.optimizer, [*self.names[:self.dropped], *self.frozen])
        self.optimizer.load_state_dict(state["optimizer"])
        self.flops = FlopCount(*state.get("flops", (0, 0, 0, 0, 0)))
        self._cache = PrefixCache(self.model, self.data, self.cache_settings, self._unit_fwd(), state["cache_refused"])
        self._pending, self._g_sum, self._g_steps = [], None, 0
        self._previous = self._snapshot(range(len(self.names)))
        self._weights = self._rewind_points()
        self.step_flops = measure_step_flops(self.model, self.input_shape, self.dropped, cached=False)
        if not state["cache_ops"]:
            return None
        return self._counted(self._cache.rebuild(state["cache_ops"], chunks or [torch.arange(len(self.data))],
                                                 self.frozen))

    # --- the cache --------------------------------------------------------------------------------------
    def _counted(self, update: CacheUpdate | None) -> CacheUpdate | None:
        """Count a cache build's FLOPs; the steps from now on skip the prefix when the cache holds it."""
        if update is None:
            return None
        store = self._cache.store
        if store is None:
            self.step_flops = measure_step_flops(self.model, self.input_shape, self.dropped, cached=False)
        elif store.units == self.dropped:
            self.step_flops = measure_step_flops(self.model, self.input_shape, self.dropped, cached=True)
        self.flops.fwd += update.fwd_flops
        return update

    # --- helpers ------------------------------------------------------------------------------------------
    def _snapshot(self, indices: Sequence[int] | range) -> dict[int, torch.Tensor]:
        """Per unit, what its change is measured against: its parameters, or its output's Gram matrix."""
        indices = list(indices)
        if self.config.measure == "function":
            grams = self._need_probe().grams(self.model, indices)
            self.train_mode()
            self._count_probe(max(indices, default=-1) + 1)
            return grams
        units = [self.model.unit(k) for k in indices]
        return dict(zip(indices, snapshot(units, directions=self.config.measure == "directions")))

    def _changes(self, active: Sequence[int]) -> dict[int, float]:
        """Each active unit's change ``d`` since the last check (``config.measure``); the new snapshots kept."""
        current = self._snapshot(active)
        if self.config.measure == "function":
            values = function_changes(self._previous, current)
        else:
            changed = relative_changes([self._previous[k] for k in active], [current[k] for k in active])
            values = dict(zip(active, changed))
        self._previous.update(current)
        return values

    def _rewind_points(self) -> dict[int, dict[str, torch.Tensor]]:
        """With the rewind gate, a copy of every unit still training, to put it back to at the next check."""
        return unit_weights(self.model, self._active()) if self.config.rewind_eps > 0 else {}

    def _need_probe(self) -> Probe:
        if self._probe is None:
            raise ValueError(f"measure={self.config.measure!r} and rewind_eps need a probe batch: give LearnDrop "
                             "probe=(images, labels) or data")
        return self._probe

    def _count_probe(self, units: int, passes: int = 1, head: bool = False) -> None:
        """Count ``passes`` forward passes of the probe batch through the first ``units`` units (and the head)."""
        names = [*self.names[:units], *([self.model.head_name] if head else [])]
        flops = passes * len(self._need_probe().y) * sum(self.full_flops.fwd[n] for n in names)
        self.flops.fwd += flops
        self.flops.probe += flops

    def _unit_fwd(self) -> list[int]:
        return [self.full_flops.fwd[n] for n in self.names]


def _dropped_event(drop: Drop, check: int) -> Pending:
    return (ev.LayerDropped, dict(unit=drop.unit, index=drop.index, check=check, s=drop.s, c=drop.c,
                                  reason=drop.reason))
