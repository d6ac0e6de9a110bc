"""The Learn&Drop controller: the method's state beside any training loop.

``LearnDrop`` owns what the method needs while a network trains: the change scores, the policy and its
state, dropping (freeze, optimizer surgery, BatchNorm in eval mode), the activation cache, and the FLOPs
of the network as it is now. It knows nothing of run folders, dashboards or command lines; what it has to
say comes back as typed events for the caller to emit. Three lines put it in a plain loop::

    ld = learndrop.LearnDrop(model, optimizer)   # any optimizer over model.parameters()
    ...                                          # the loop as it was: model(x), backward, optimizer.step()
    ld.step()                                    # after optimizer.step()
    ld.check()                                   # at the end of an epoch (or every N steps)

``model``: a ``UnitNetwork`` (``learndrop.create_model``, ``learndrop.units``) or a torchvision or timm CNN
it knows how to cut (``models.cut``). The model's own forward runs a dropped unit in eval mode, with no
gradient: forward hooks (``method.hooks``). The activation cache is an opt-in for a training set held in
memory (``data``: ``prefix_cache.InMemoryData``): then ``update_cache``, ``batch`` and ``forward`` serve the
steps, the dropped prefix's output coming from the cache (``training.loop`` is such a client).
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
from ..errors import LearnDropError
from ..models.cut import as_unit_network
from .cache import ActivationCache
from .dropping import Suffix, check_optimizer, freeze_units, set_train_mode, trainable_parameters, unit_groups
from .flops import FlopCount, StepFlops, measure_step_flops
from .hooks import ForwardHooks
from .measure import Measurement
from .peers import get_policy
from .policy import Decision, Drop, Observations, PolicyState, initial_state
from .prefix_cache import BUILD_BATCH, CacheSettings, CacheUpdate, PrefixCache, check_data
from .probe import Probe, probe_of, unit_weights

__all__ = ["BUILD_BATCH", "CacheSettings", "CacheUpdate", "CheckResult", "FlopCount", "LearnDrop"]

MIN_LR_FACTOR = 0.01  # the lr normalisation never scales d up more than 100x (the end of a decay to 0)


@dataclass(frozen=True)
class CheckResult:
    decision: Decision
    lr_factor: float  # the interval's mean learning rate as a share of the peak
    events: list[ev.Event]  # thresholds_changed?, layer_scores, layer_dropped..., layer_frozen... (unstamped)

    @property
    def drops(self) -> tuple[Drop, ...]:
        return self.decision.drops


class LearnDrop:
    """Learn&Drop on ``model`` trained by ``optimizer``.

    ``policy``: the criterion and its thresholds (default: Learn&Drop's). ``input_shape`` (C, H, W) sizes the
    FLOPs measurement (default: the first batch's). ``total_steps``: the run's optimizer steps, for the
    policies that act on the share of training done (the schedule, FreezeOut, annealing). ``probe`` (images,
    labels: a validation batch) serves ``measure="function"`` and the rewind gate. ``data`` (in memory, with
    ``cache``): serve the batches and cache the dropped prefix's output. ``inherited_peaks``: per-unit peaks
    carried over from an earlier run (fine-tuning); ``peak_lr``: the learning rate the change is normalised by
    (default: the optimizer's at construction); ``wrap`` puts the trainable suffix under a data-parallel wrapper
    (``DistributedDataParallel``), anew after every drop (``training.world``).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, policy: PolicyConfig | None = None,
                 input_shape: Sequence[int] | None = None, *, total_steps: int | None = None,
                 probe: Probe | tuple[torch.Tensor, torch.Tensor] | None = None, data: Any = None,
                 cache: CacheSettings | None = None, inherited_peaks: Sequence[float] | None = None,
                 peak_lr: float | None = None, wrap: Callable[[nn.Module], nn.Module] | None = None):
        self.model = as_unit_network(model)
        self.optimizer = optimizer
        self.data = check_data(data) if data is not None else None
        self.config = policy or PolicyConfig()
        self.config.validate()
        self.policy = get_policy(self.config.name)
        self.names = list(self.model.unit_names)
        self.total_steps = total_steps
        self._check_surface()
        if input_shape is None and self.data is not None:
            input_shape = self.data.get(torch.arange(1))[0].shape[1:]
        self.input_shape = tuple(int(v) for v in input_shape) if input_shape is not None else None
        self.cache_settings = cache or CacheSettings(enabled=self.data is not None)
        self.state = initial_state(self.names, inherited_peaks)
        self.flops = FlopCount()
        self._full: StepFlops | None = None  # the full network's per-image FLOPs, once the input shape is known
        self._step: StepFlops | None = None  # the network's as it trains now (None: measure again)
        self._cached_prefix = False  # whether the steps read the dropped prefix's output from the cache
        self.peak_lr = float(peak_lr if peak_lr is not None else self._head_group()["lr"])
        self.steps = 0  # optimizer steps counted by ``step``
        self._head = self._head_group()
        self._lr_sum, self._lr_steps = 0.0, 0
        self._images = 0  # the last batch's size, as the head saw it
        self._progress = 0.0  # the share of the run's steps done, as ``set_lr`` or ``check`` last said
        self._told_progress = total_steps is not None  # whether anything ever said how far training is
        self._hooks = ForwardHooks(self.model, self._saw_batch, None if self.input_shape else self._saw_input)
        self._cache = PrefixCache(self.model, self.data, self.cache_settings, self._unit_fwd)
        if isinstance(probe, tuple):
            probe = Probe(*probe)
        self._measure = Measurement(self.model, probe if probe is not None or data is None else probe_of(data),
                                    self.train_mode)
        self._pending = self._start()  # drops before any training (freeze-first-k), reported at the first check
        self._measure.start(self.config, range(len(self.names)))
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

    @property
    def full_flops(self) -> StepFlops:
        """Per-image FLOPs of one training step of the full network (measured once the input shape is known)."""
        if self._full is None:
            if self.input_shape is None:
                raise LearnDropError("the FLOPs are measured on the first batch: run a forward pass first, or "
                                     "give LearnDrop input_shape=(C, H, W)")
            self._full = measure_step_flops(self.model, self.input_shape)
        return self._full

    @property
    def step_flops(self) -> StepFlops:
        """Per-image FLOPs of one training step of the network as it trains now."""
        if self._step is None:
            self._step = (self.full_flops if not self.dropped and not self.state.frozen else
                          measure_step_flops(self.model, self.input_shape, self.dropped, cached=self._cached_prefix))
        return self._step

    def set_lr(self, lr: float, progress: float) -> None:
        """Set every param group's learning rate to ``lr`` times its unit's multiplier under the policy at
        ``progress`` (the share of the run's steps done); the head's, and every unit's unless the policy
        scales them (FreezeOut, annealing), is 1."""
        self._progress = float(progress)
        self._told_progress = True
        scales = self.policy.lr_scales(self.state, self._progress, self.config)
        by_name = dict(zip(self.names, scales)) if scales is not None else {}
        for group in self.optimizer.param_groups:
            group["lr"] = lr * by_name[group["name"]] if group.get("name") in by_name else lr

    def train_mode(self) -> None:
        """``model.train()`` for what still learns; the dropped prefix and frozen units stay in eval."""
        set_train_mode(self.model, self.dropped, self.frozen)

    # --- one step -------------------------------------------------------------------------------------
    def step(self) -> None:
        """Count the optimizer step just taken: its learning rate and its FLOPs for the batch the model saw;
        and, when the policy observes them, each unit's gradient norm (summed on the device, no sync)."""
        self.steps += 1
        if self.total_steps:
            self._progress = min(1.0, self.steps / self.total_steps)
        self._lr_sum += self._head["lr"]
        self._lr_steps += 1
        if "grad_norm" in self.policy.observes:
            self._measure.add_grad_norms(self._active(), len(self.names))
        f, images = self.flops, self._images
        f.fwd += self.step_flops.fwd_total * images
        f.bwd += self.step_flops.bwd_total * images
        f.baseline_fwd += self.full_flops.fwd_total * images
        f.baseline_bwd += self.full_flops.bwd_total * images

    def update_cache(self, rows: torch.Tensor, epochs_left: int, chunk: int = 0) -> CacheUpdate | None:
        """Fill or extend the activation cache when the prefix or the training rows changed.

        ``rows``: the indices the coming batches are drawn from (the whole training set, or the stream's
        current ``chunk``); ``epochs_left``: epochs still to train, counting this one. Cheap when nothing
        changed (the same rows, no drop since): call it before every step.
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

    # --- a check ----------------------------------------------------------------------------------------
    def check(self, policy: PolicyConfig | None = None, progress: float | None = None) -> CheckResult:
        """Score every unit still training, let the policy decide, and drop (or freeze) what it says.

        ``policy``: the thresholds to use from now on (the live ones); a change is reported first.
        ``progress``: the share of the run's optimizer steps done (default: ``total_steps``' count, or what
        ``set_lr`` was last told).
        """
        if progress is not None:
            self._progress = float(progress)
            self._told_progress = True
        if "progress" in self.policy.observes and not self._told_progress:
            raise LearnDropError(f"the {self.config.name} policy acts on the share of training done: give LearnDrop "
                                 "total_steps=... (or check(progress=...))", field="policy")
        events, self._pending = self._pending, []
        if policy is not None and policy != self.config:
            events.append(ev.ThresholdsChanged(old=self.config.thresholds(), new=policy.thresholds()))
            self.config, self.policy = policy, get_policy(policy.name)
        active = self._active()
        measured = self._measure.changes(self.config, active)
        # lr_factor: the mean learning rate since the last check, as a share of the peak. Dividing by it
        # makes d the change per unit of learning rate, so a decaying schedule is not read as convergence.
        lr_factor = (self._lr_sum / max(1, self._lr_steps)) / self.peak_lr
        self._lr_sum, self._lr_steps = 0.0, 0
        scale = 1.0 / max(lr_factor, MIN_LR_FACTOR) if self.config.lr_normalized else 1.0
        d: list[float | None] = [None] * len(self.names)
        for k in active:
            d[k] = measured[k] * scale
        grad_norms = (self._measure.grad_norms(active, len(self.names)) if "grad_norm" in self.policy.observes
                      else None)
        observations = Observations(tuple(d), min(1.0, max(0.0, self._progress)), grad_norms)
        state, decision = self.policy.step(self.state, observations, self.config)
        if decision.untested:  # the rewind gate: test the units that would drop, then decide again
            probe = self._measure.need_probe(self.config.measure)
            effects = probe.rewind_effects(self.model, decision.untested, self._weights)
            self._count_probe(len(self.names), passes=1 + len(decision.untested), head=True)
            self.train_mode()
            observations = replace(observations, rewind=tuple(effects.get(k) for k in range(len(self.names))))
            state, decision = self.policy.step(self.state, observations, self.config)
        self.state = state
        self._count_probe_passes()

        observed = decision.observed or ({},) * len(decision.scores)
        events.append(ev.LayerScores(check=decision.check, thresholds=self.config.thresholds(),
                                     lr_factor=round(lr_factor, 6),
                                     scores=[{**asdict(s), **o} for s, o in zip(decision.scores, observed)]))
        events += [_dropped_event(dr, decision.check) for dr in decision.drops]
        events += [ev.LayerFrozen(unit=name, check=decision.check) for name in decision.frozen]
        if decision.drops or decision.frozen:
            self._freeze([dr.unit for dr in decision.drops] + list(decision.frozen))
            self._cache.rows = None  # the next update_cache looks again
        self._weights = self._rewind_points()
        return CheckResult(decision, lr_factor, [replace(e, step=self.steps) for e in events])

    def close(self) -> None:
        """Take the controller's forward hooks off the model (the dropped units' parameters stay frozen)."""
        self._hooks.close()

    # --- saved and restored whole ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain values and tensors (``torch.load(weights_only=True)`` reads it back), the optimizer
        included: its param groups follow the drops."""
        c, f = self._cache, self.flops
        return {"policy": asdict(self.config), "policy_state": self.state.to_dict(),
                "optimizer": self.optimizer.state_dict(), "cache_ops": [list(op) for op in c.ops],
                "cache_refused": c.refused, "flops": [f.fwd, f.bwd, f.baseline_fwd, f.baseline_bwd, f.probe],
                "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any], chunks: Sequence[torch.Tensor] | None = None,
                        optimizer: bool = True) -> CacheUpdate | None:
        """Put the method back where ``state_dict`` left it; load the model's weights first.

        The cache is rebuilt the way it was built (``chunks``: the stream's chunks, default the whole
        training set), so a resumed run trains on the same features; returns that rebuild. ``optimizer``
        False: its state is loaded by someone else (Lightning), after the drops took the parameters out.
        """
        self.config = PolicyConfig(**state["policy"])
        self.policy = get_policy(self.config.name)
        self.state = PolicyState.from_dict(state["policy_state"])
        self._freeze([*self.names[:self.dropped], *self.frozen])
        if optimizer:
            self.optimizer.load_state_dict(state["optimizer"])
        self.flops = FlopCount(*state.get("flops", (0, 0, 0, 0, 0)))
        self.steps = state.get("steps", 0)
        self._cache = PrefixCache(self.model, self.data, self.cache_settings, self._unit_fwd, state["cache_refused"])
        self._pending = []
        self._measure.reset_grad_norms()
        self._measure.start(self.config, range(len(self.names)))
        self._weights = self._rewind_points()
        if not state["cache_ops"]:
            return None
        return self._counted(self._cache.rebuild(state["cache_ops"], chunks or [torch.arange(len(self.data))],
                                                 self.frozen))

    # --- helpers ------------------------------------------------------------------------------------------
    def _start(self) -> list[ev.Event]:
        """Apply the policy's drops before any training; their ``layer_dropped`` events (check 0)."""
        self.state, drops = self.policy.start(self.state, self.config)
        if not drops:
            return []
        self._freeze([dr.unit for dr in drops])
        return [_dropped_event(dr, 0) for dr in drops]

    def _freeze(self, names: Sequence[str]) -> None:
        """Drop (or freeze) ``names``: out of the optimizer, no gradients, eval mode in every forward."""
        freeze_units(self.model, self.optimizer, names)
        self._head = self._head_group()  # the groups may have changed
        self._hooks.freeze(list(names))
        self._cached_prefix = False
        self._step = None

    def _counted(self, update: CacheUpdate | None) -> CacheUpdate | None:
        """Count a cache build's FLOPs; the steps from now on skip the prefix when the cache holds it."""
        if update is None:
            return None
        store = self._cache.store
        self._cached_prefix = store is not None and store.units == self.dropped
        self._step = None
        self.flops.fwd += update.fwd_flops
        return update

    def _active(self) -> list[int]:
        return [k for k in range(len(self.names)) if k >= self.dropped and k not in self.state.frozen]

    def _head_group(self) -> dict[str, Any]:
        """The param group that holds the head's parameters: its learning rate is the run's (never scaled)."""
        head = {id(p) for p in self.model.head_module().parameters()}
        return next((g for g in self.optimizer.param_groups if any(id(p) in head for p in g["params"])),
                    self.optimizer.param_groups[-1])

    def _check_surface(self) -> None:
        """What is wrong at construction, as one ``LearnDropError`` that says what to do."""
        check_optimizer(self.model, self.optimizer)
        scales = self.config.name == "freezeout" or (self.config.name == "learndrop" and self.config.anneal)
        if scales and not unit_groups(self.model, self.optimizer):
            raise LearnDropError(f"{self.config.name} scales each unit's learning rate: build the optimizer over "
                                 "learndrop.param_groups(model) (one group per unit) and call ld.set_lr(lr, "
                                 "progress) before each step", field="policy")

    def _saw_batch(self, images: int) -> None:
        self._images = images

    def _saw_input(self, shape: tuple[int, ...]) -> None:
        if self.input_shape is None:
            self.input_shape = shape

    def _count_probe(self, units: int, passes: int = 1, head: bool = False) -> None:
        """Count ``passes`` forward passes of the probe batch through the first ``units`` units (and the head)."""
        names = [*self.names[:units], *([self.model.head_name] if head else [])]
        probe = self._measure.need_probe(self.config.measure)
        flops = passes * len(probe.y) * sum(self.full_flops.fwd[n] for n in names)
        self.flops.fwd += flops
        self.flops.probe += flops

    def _count_probe_passes(self) -> None:
        """Count the function-space snapshots' probe passes (once the FLOPs can be measured)."""
        if self.input_shape is not None:
            for units in self._measure.take_probe_passes():
                self._count_probe(units)

    def _rewind_points(self) -> dict[int, dict[str, torch.Tensor]]:
        """With the rewind gate, a copy of every unit still training, to put it back to at the next check."""
        return unit_weights(self.model, self._active()) if self.config.rewind_eps > 0 else {}

    def _unit_fwd(self) -> list[int]:
        return [self.full_flops.fwd[n] for n in self.names]


def _dropped_event(drop: Drop, check: int) -> ev.LayerDropped:
    return ev.LayerDropped(unit=drop.unit, index=drop.index, check=check, s=drop.s, c=drop.c, reason=drop.reason)
