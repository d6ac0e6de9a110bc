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
    ld.after_step(len(idx))               # the step's learning rate and FLOPs
    if at a check: result = ld.check()    # scores, the policy's decision, the drop itself

Without ``data`` it works on whatever batches the loop has (``ld.forward(images)``), with no cache.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from .. import events as ev
from ..config import PolicyConfig
from ..models import UnitNetwork
from .cache import ActivationCache, Transform, cache_cost, choose_views
from .dropping import freeze_units, set_train_mode, trainable_parameters
from .flops import StepFlops, measure_step_flops
from .policy import Decision, PolicyState, get_policy, initial_state
from .scores import relative_changes, snapshot

MIN_LR_FACTOR = 0.01  # the lr normalisation never scales d up more than 100x (the end of a decay to 0)
BUILD_BATCH = 512  # images per no-grad pass when the cache is built

Pending = tuple[type[ev.Event], dict[str, Any]]  # an event for the caller's emitter: its class and fields


@dataclass(frozen=True)
class CacheSettings:
    enabled: bool = True
    max_mb: float = 2048.0  # cap on the cache's memory
    dtype: str = "float16"  # float16 | float32
    # candidate view sets, richest first (cache.augmented_views); one un-augmented view without augmentation
    view_sets: tuple[tuple[Transform, ...], ...] = (((0, 0, False),),)


@dataclass(frozen=True)
class CheckResult:
    decision: Decision
    lr_factor: float  # the interval's mean learning rate as a share of the peak
    events: list[Pending]  # thresholds_changed?, layer_scores, layer_dropped..., layer_frozen...


@dataclass(frozen=True)
class CacheUpdate:
    events: list[Pending]  # cache_built or cache_skipped
    fwd_flops: int  # what building it cost (already counted in ``LearnDrop.flops``)
    seconds: float


@dataclass
class FlopCount:
    """FLOPs trained so far, and what the full network would have cost for the same images."""

    fwd: int = 0
    bwd: int = 0
    baseline_fwd: int = 0
    baseline_bwd: int = 0

    def reduction_pct(self) -> tuple[float, float]:
        """Forward and training (forward + backward) FLOPs saved, in percent."""
        train, base = self.fwd + self.bwd, self.baseline_fwd + self.baseline_bwd
        return (100 * (1 - self.fwd / self.baseline_fwd) if self.baseline_fwd else 0.0,
                100 * (1 - train / base) if base else 0.0)


@dataclass
class _Cache:
    """The activation cache and how it was built (replayed, op by op, when a checkpoint is restored)."""

    store: ActivationCache | None = None
    ops: list[list] = field(default_factory=list)  # ["new", views] | ["add", units, chunk] | ["extend", units]
    refused: int = -1  # prefix length for which it was refused (over its cap)
    rows: torch.Tensor | None = None  # the rows ``update_cache`` last saw (identity: the loop's chunk tensor)
    active: bool = False  # the next batches come from it


class LearnDrop:
    """Learn&Drop on ``model`` (a ``UnitNetwork``) trained by ``optimizer`` (built over ``param_groups``).

    ``input_shape`` (C, H, W) sizes the FLOPs measurement; ``data`` (``get(idx, generator) -> (x, y)``,
    ``labels``, ``len``: the loader's ``ImageBatches``) lets it serve batches and cache the prefix;
    ``reference_peaks`` are per-unit peaks carried over from an earlier run (fine-tuning); ``peak_lr`` is
    the learning rate that the change is normalised by (default: the optimizer's at construction).
    """

    def __init__(self, model: UnitNetwork, optimizer: torch.optim.Optimizer, policy: PolicyConfig | None = None,
                 input_shape: Sequence[int] | None = None, *, data: Any = None, cache: CacheSettings | None = None,
                 reference_peaks: Sequence[float] | None = None, peak_lr: float | None = None):
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
        self._cache = _Cache()
        self._previous = self._snapshot(range(len(self.names)))

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
        c = self._cache
        if rows is c.rows or self.data is None:
            return None
        c.rows, update = rows, None
        if (self.dropped and self.cache_settings.enabled and c.refused != self.dropped
                and not (c.store is not None and c.store.covers(self.dropped, rows))):
            update = self._grow_cache(rows, chunk, epochs_left)
        c.active = self.dropped > 0 and c.store is not None and c.store.covers(self.dropped, rows)
        return update

    def batch(self, idx: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and labels of the batch ``idx``: the cached prefix output (one random view per image
        when the cache holds several), or the data's images (augmented with ``generator``)."""
        c = self._cache
        if c.active:
            views = c.store.views
            view = torch.randint(0, views, (len(idx),), generator=generator) if views > 1 else None
            return c.store.batch(idx, view), self.data.labels[idx.to(self.data.labels.device)]
        return self.data.get(idx, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for what ``batch`` gave: the dropped prefix under no_grad (skipped when the input is
        its cached output), then the suffix with autograd."""
        if self.dropped and not self._cache.active:
            with torch.no_grad():
                x = self.model.forward_units(x, 0, self.dropped)
        return self.model.forward_from(x, self.dropped)

    def after_step(self, images: int, lr: float | None = None) -> None:
        """Count the step: its learning rate (default: the optimizer's) and its FLOPs for ``images``."""
        self._lr_sum += self.optimizer.param_groups[-1]["lr"] if lr is None else lr
        self._lr_steps += 1
        f = self.flops
        f.fwd += self.step_flops.fwd_total * images
        f.bwd += self.step_flops.bwd_total * images
        f.baseline_fwd += self.full_flops.fwd_total * images
        f.baseline_bwd += self.full_flops.bwd_total * images

    # --- a check ----------------------------------------------------------------------------------------
    def check(self, policy: PolicyConfig | None = None) -> CheckResult:
        """Score every unit still training, let the policy decide, and drop (or freeze) what it says.

        ``policy``: the thresholds to use from now on (the live ones); a change is reported first.
        """
        events: list[Pending] = []
        if policy is not None and policy != self.config:
            events.append((ev.ThresholdsChanged, dict(old=self.config.thresholds(), new=policy.thresholds())))
            self.config, self.policy = policy, get_policy(policy.name)
        active = [k for k in range(len(self.names)) if k >= self.dropped and k not in self.state.frozen]
        current = self._snapshot(active)
        # lr_factor: the mean learning rate since the last check, as a share of the peak. Dividing by it
        # makes d the change per unit of learning rate, so a decaying schedule is not read as convergence.
        lr_factor = (self._lr_sum / max(1, self._lr_steps)) / self.peak_lr
        self._lr_sum, self._lr_steps = 0.0, 0
        scale = 1.0 / max(lr_factor, MIN_LR_FACTOR) if self.config.lr_normalized else 1.0
        d: list[float | None] = [None] * len(self.names)
        for k, value, snap in zip(active, relative_changes([self._previous[k] for k in active], current), current):
            d[k], self._previous[k] = value * scale, snap
        self.state, decision = self.policy.step(self.state, d, self.config)

        events.append((ev.LayerScores, dict(check=decision.check, thresholds=self.config.thresholds(),
                                             lr_factor=round(lr_factor, 6),
                                             scores=[asdict(s) for s in decision.scores])))
        events += [(ev.LayerDropped, dict(unit=dr.unit, index=dr.index, check=decision.check, s=dr.s, c=dr.c,
                                          reason=dr.reason)) for dr in decision.drops]
        events += [(ev.LayerFrozen, dict(unit=name, check=decision.check)) for name in decision.frozen]
        if decision.drops or decision.frozen:
            freeze_units(self.model, self.optimizer, [dr.unit for dr in decision.drops] + list(decision.frozen))
            self.step_flops = measure_step_flops(self.model, self.input_shape, self.dropped, cached=False)
            self._cache.rows = None  # the next update_cache looks again
        return CheckResult(decision, lr_factor, events)

    # --- saved and restored whole ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain values and tensors (``torch.load(weights_only=True)`` reads it back), the optimizer
        included: its param groups follow the drops."""
        c, f = self._cache, self.flops
        return {"policy": asdict(self.config), "policy_state": self.state.to_dict(),
                "optimizer": self.optimizer.state_dict(), "cache_ops": [list(op) for op in c.ops],
                "cache_refused": c.refused, "flops": [f.fwd, f.bwd, f.baseline_fwd, f.baseline_bwd]}

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
        self.flops = FlopCount(*state.get("flops", (0, 0, 0, 0)))
        self._cache = _Cache(refused=state["cache_refused"])
        self._previous = self._snapshot(range(len(self.names)))
        self.step_flops = measure_step_flops(self.model, self.input_shape, self.dropped, cached=False)
        if not state["cache_ops"]:
            return None
        return self._rebuild_cache(state["cache_ops"], chunks or [torch.arange(len(self.data))])

    # --- the cache --------------------------------------------------------------------------------------
    def _grow_cache(self, rows: torch.Tensor, chunk: int, epochs_left: int) -> CacheUpdate:
        """Extend the cache to the current prefix and add the ``rows`` it lacks."""
        c, s, k = self._cache, self.cache_settings, self.dropped
        dtype = getattr(torch, s.dtype)
        sample = self.data.get(rows[:1])[0]
        view_sets = [c.store.transforms] if c.store is not None and c.store.rows else s.view_sets
        sizes = [ActivationCache.bytes_needed(self.model, sample, k, len(self.data), dtype, len(v)) for v in view_sets]
        views = choose_views(view_sets, sizes, s.max_mb * 2**20, epochs_left)
        if views is None:
            c.store, c.refused = None, k
            self.step_flops = measure_step_flops(self.model, self.input_shape, k, cached=False)
            reason = (f"the prefix output needs {min(sizes) / 2**20:.0f} MiB, over the {s.max_mb:g} MiB cap; "
                      "the prefix is recomputed every step under no_grad")
            return CacheUpdate([(ev.CacheSkipped, dict(bytes_needed=min(sizes), reason=reason))], 0, 0.0)
        start = time.perf_counter()
        self.train_mode()
        if c.store is None:
            c.store = ActivationCache(len(self.data), dtype, views)
            c.ops.append(["new", [list(t) for t in views]])
        old_units, extended = c.store.units, 0
        if c.store.rows and c.store.units != k:
            extended = c.store.extend(self.model, k, BUILD_BATCH)
            c.ops.append(["extend", k])
        added = c.store.add(self.model, self.data, rows, k, BUILD_BATCH)
        if added:
            c.ops.append(["add", k, chunk])
        cost = cache_cost(self._unit_fwd(), old_units, k, extended, added, c.store.views)
        return self._built(cost, time.perf_counter() - start, extended, added)

    def _rebuild_cache(self, ops: Sequence[list], chunks: Sequence[torch.Tensor]) -> CacheUpdate:
        start, cost, c = time.perf_counter(), 0, self._cache
        for op in ops:
            if op[0] == "new":
                c.store = ActivationCache(len(self.data), getattr(torch, self.cache_settings.dtype),
                                          [tuple(t) for t in op[1]])
                continue
            set_train_mode(self.model, op[1], self.frozen)
            old = c.store.units
            if op[0] == "extend":
                cost += cache_cost(self._unit_fwd(), old, op[1], c.store.extend(self.model, op[1], BUILD_BATCH), 0,
                                   c.store.views)
            else:
                cost += cache_cost(self._unit_fwd(), 0, op[1], 0,
                                   c.store.add(self.model, self.data, chunks[op[2]], op[1], BUILD_BATCH), c.store.views)
        c.ops = [list(op) for op in ops]
        return self._built(cost, time.perf_counter() - start, 0, c.store.rows)

    def _built(self, cost: int, seconds: float, extended: int, added: int) -> CacheUpdate:
        store = self._cache.store
        if store.units == self.dropped:
            self.step_flops = measure_step_flops(self.model, self.input_shape, self.dropped, cached=True)
        self.flops.fwd += cost
        event = dict(units=store.units, extended_rows=extended, added_rows=added, rows=store.rows,
                     bytes=store.nbytes, seconds=round(seconds, 4), dtype=str(store.dtype).replace("torch.", ""),
                     fwd_flops=cost)
        return CacheUpdate([(ev.CacheBuilt, event)], cost, seconds)

    # --- helpers ------------------------------------------------------------------------------------------
    def _snapshot(self, indices: Sequence[int] | range) -> list[torch.Tensor]:
        units = [self.model.unit(k) for k in indices]
        return snapshot(units, directions=self.config.measure == "directions")

    def _unit_fwd(self) -> list[int]:
        return [self.full_flops.fwd[n] for n in self.names]
