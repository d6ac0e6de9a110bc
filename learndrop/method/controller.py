"""The Learn&Drop controller: the method's state beside any training loop.

``LearnDrop`` owns what the method needs while a network trains: the change scores, the policy and its
state, dropping (freeze, optimizer surgery, BatchNorm in eval mode), the activation cache, and the FLOPs
of the network as it is now. It knows nothing of run folders, dashboards or command lines; what it has to
say comes back as typed events for the caller to emit. Three lines put it in a plain loop::

    ld = learndrop.LearnDrop(model, optimizer, total_steps=epochs * len(loader))  # any optimizer
    ...                        # the loop as it was: model(x), backward, optimizer.step()
    ld.step()                  # after optimizer.step()
    ld.check()                 # at the end of an epoch (or every N steps)

``total_steps`` (the run's optimizer steps) serves the default rule's pace: no unit drops before its time on
a linear schedule from a quarter of training (``PolicyConfig.paced``).

The model's own forward runs a dropped unit in eval mode, with no gradient (``method.hooks``). For a training
set held in memory, ``update_cache``, ``batch`` and ``forward`` serve the steps from the activation cache
(``method.data_path``; ``training.loop`` is such a client).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import Any

import torch
from torch import nn

from .. import events as ev
from ..config import PolicyConfig
from ..errors import LearnDropError
from ..models.cut import as_unit_network
from .accounting import FlopAccount
from .cache import ActivationCache
from .check_result import CheckResult, dropped_event
from .data_path import DataPath
from .dropping import check_optimizer, freeze_units, head_group, set_train_mode, trainable_parameters
from .flops import FlopCount, StepFlops
from .hooks import ForwardHooks
from .measure import Measurement
from .policy import Observations, PolicyState, initial_state
from .prefix_cache import BUILD_BATCH, CacheSettings, CacheUpdate, check_data
from .probe import Probe, probe_of
from .registry import get_policy

__all__ = ["BUILD_BATCH", "CacheSettings", "CacheUpdate", "CheckResult", "FlopCount", "LearnDrop"]


class LearnDrop:
    """Learn&Drop on ``model`` trained by ``optimizer``: a ``UnitNetwork`` (``learndrop.create_model``,
    ``learndrop.units``) or a torchvision or timm CNN it knows how to cut (``models.cut``).

    ``policy``: the criterion and its thresholds (default: Learn&Drop's). ``input_shape`` (C, H, W) sizes the
    FLOPs measurement (default: the first batch's). ``total_steps``: the run's optimizer steps, for the
    policies that act on the share of training done (the schedule, FreezeOut, annealing). ``probe`` (images,
    labels: a validation batch) serves ``measure="function"`` and the rewind gate. ``data`` (in memory, with
    ``cache``): serve the batches and cache the dropped prefix's output. ``inherited_peaks``: per-unit peaks
    carried over from an earlier run (fine-tuning); ``peak_lr``: the learning rate the change is normalised by
    (default: the optimizer's at construction); ``wrap`` puts the trainable suffix under a data-parallel
    wrapper (``DistributedDataParallel``), anew after every drop (``training.world``).
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
        check_optimizer(self.model, self.optimizer, self.config)
        if input_shape is None and self.data is not None:
            input_shape = self.data.get(torch.arange(1))[0].shape[1:]
        self.account = FlopAccount(self.model, input_shape)
        self.cache_settings = cache or CacheSettings(enabled=self.data is not None)
        self.state = initial_state(self.names, inherited_peaks)
        self.steps = 0  # optimizer steps counted by ``step``
        self._head = head_group(self.model, self.optimizer)
        self._images = 0  # the last batch's size, as the head saw it
        self._progress = 0.0  # the share of the run's steps done, as ``set_lr`` or ``check`` last said
        self._told_progress = total_steps is not None  # whether anything ever said how far training is
        self._hooks = ForwardHooks(self.model, self._saw_batch,
                                   None if input_shape else self.account.saw_input)
        self._wrap = wrap
        self._path = DataPath(self.model, self.data, self.cache_settings, self.account, self.train_mode, wrap)
        if isinstance(probe, tuple):
            probe = Probe(*probe)
        peak_lr = float(peak_lr if peak_lr is not None else self._head["lr"])
        self._measure = Measurement(self.model,
                                    probe if probe is not None or data is None else probe_of(data),
                                    self.train_mode, peak_lr)
        # drops before any training (freeze-first-k), reported at the first check
        self._pending = self._start()
        self._measure.start(self.config, range(len(self.names)))
        self._measure.keep_rewind_points(self.config, self._active())

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
        return self._path.cache.store

    @property
    def flops(self) -> FlopCount:
        """FLOPs trained so far, and the full network's for the same images."""
        return self.account.count

    @property
    def full_flops(self) -> StepFlops:
        """Per-image FLOPs of one training step of the full network (measured once the input shape is
        known)."""
        return self.account.full

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        return self.account.input_shape

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
        self._measure.add_lr(self._head["lr"])
        if "grad_norm" in self.policy.needs(self.config):
            self._measure.add_grad_norms(self._active(), len(self.names))
        self.account.add_step(self._images)

    def update_cache(self, rows: torch.Tensor, epochs_left: int, chunk: int = 0) -> CacheUpdate | None:
        """Fill or extend the activation cache when the prefix or the training rows changed.

        ``rows``: the indices the coming batches are drawn from (the whole training set, or the stream's
        current ``chunk``); ``epochs_left``: epochs still to train, counting this one. Cheap when nothing
        changed (the same rows, no drop since): call it before every step.
        """
        return self._path.update(rows, self.dropped, self.state.frozen, epochs_left, chunk)

    def batch(self, idx: torch.Tensor,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and labels of the batch ``idx``: the cached prefix output, or the data's (augmented)
        images."""
        return self._path.batch(idx, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for what ``batch`` gave (the dropped prefix skipped when ``x`` is its cached output)."""
        return self._path.forward(x, self.dropped, self.state.frozen)

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
        if "progress" in self.policy.needs(self.config) and not self._told_progress:
            rule = "the paced rule" if self.config.name == "learndrop" else f"the {self.config.name} policy"
            raise LearnDropError(f"{rule} acts on the share of training done: give LearnDrop total_steps=... "
                                 "(or check(progress=...))", field="policy")
        events, self._pending = self._pending, []
        if policy is not None and policy != self.config:
            events.append(ev.ThresholdsChanged(old=self.config.thresholds(), new=policy.thresholds()))
            self.config, self.policy = policy, get_policy(policy.name)
        active = self._active()
        # per unit of learning rate
        d, lr_factor = self._measure.interval(self.config, active, len(self.names))
        needs = self.policy.needs(self.config)
        grad_norms = self._measure.grad_norms(active, len(self.names)) if "grad_norm" in needs else None
        observations = Observations(tuple(d), min(1.0, max(0.0, self._progress)), grad_norms)
        state, decision = self.policy.step(self.state, observations, self.config)
        if decision.untested:  # the rewind gate: test the units that would drop, then decide again
            rewind = self._measure.rewind(self.config, decision.untested, len(self.names))
            state, decision = self.policy.step(self.state, replace(observations, rewind=rewind), self.config)
        self.state = state
        self._count_probe_passes()

        observed = decision.observed or ({},) * len(decision.scores)
        events.append(ev.UnitScores(check=decision.check, thresholds=self.config.thresholds(),
                                     lr_factor=round(lr_factor, 6),
                                     scores=[{**asdict(s), **o} for s, o in zip(decision.scores, observed)]))
        events += [dropped_event(dr, decision.check) for dr in decision.drops]
        events += [ev.UnitFrozen(unit=name, check=decision.check) for name in decision.frozen]
        if decision.drops or decision.frozen:
            self._freeze([dr.unit for dr in decision.drops] + list(decision.frozen))
            self._path.prefix_changed()
        self._measure.keep_rewind_points(self.config, self._active())
        return CheckResult(decision, lr_factor, [replace(e, step=self.steps) for e in events])

    def close(self) -> None:
        """Take the controller's forward hooks off the model (the dropped units' parameters stay frozen) and
        let a data-parallel wrapper go."""
        self._hooks.close()
        self._path.release()

    # --- saved and restored whole ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain values and tensors (``torch.load(weights_only=True)`` reads it back), the optimizer
        included: its param groups follow the drops."""
        c, f = self._path.cache, self.flops
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
        self.config = PolicyConfig.from_record(state["policy"])
        self.policy = get_policy(self.config.name)
        self.state = PolicyState.from_dict(state["policy_state"])
        self._freeze([*self.names[:self.dropped], *self.frozen])
        if optimizer:
            self.optimizer.load_state_dict(state["optimizer"])
        self.account.count = FlopCount(*state.get("flops", (0, 0, 0, 0, 0)))
        self.steps = state.get("steps", 0)
        self._path = DataPath(self.model, self.data, self.cache_settings, self.account, self.train_mode,
                              self._wrap, state["cache_refused"])
        self._pending = []
        self._measure.reset_grad_norms()
        self._measure.start(self.config, range(len(self.names)))
        self._measure.keep_rewind_points(self.config, self._active())
        if not state["cache_ops"]:
            return None
        return self._path.rebuild(state["cache_ops"], chunks, self.dropped, self.state.frozen, self.frozen)

    # --- helpers ------------------------------------------------------------------------------------------
    def _start(self) -> list[ev.Event]:
        """Apply the policy's drops before any training; their ``unit_dropped`` events (check 0)."""
        self.state, drops = self.policy.start(self.state, self.config)
        if not drops:
            return []
        self._freeze([dr.unit for dr in drops])
        return [dropped_event(dr, 0) for dr in drops]

    def _freeze(self, names: Sequence[str]) -> None:
        """Drop (or freeze) ``names``: out of the optimizer, no gradients, eval mode in every forward."""
        freeze_units(self.model, self.optimizer, names)
        self._head = head_group(self.model, self.optimizer)  # the groups may have changed
        self._hooks.freeze(list(names))
        self.account.network_changed(self.dropped, bool(self.state.frozen), cached=False)

    def _active(self) -> list[int]:
        return [k for k in range(len(self.names)) if k >= self.dropped and k not in self.state.frozen]

    def _saw_batch(self, images: int) -> None:
        self._images = images

    def _count_probe_passes(self) -> None:
        """Count the probe batch's passes (function-space scores, rewind tests) once the FLOPs can be
        measured."""
        if self.input_shape is not None:
            for names, passes in self._measure.take_probe_passes():
                self.account.add_probe(names, len(self._measure.probe.y), passes)
