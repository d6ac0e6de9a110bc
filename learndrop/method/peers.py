"""The peers of Learn&Drop as policies, on the same drop mechanics (prefix freeze, optimizer surgery,
cache), so that a comparison isolates the criterion; each registered (``method.registry``).

- ``freezeout`` (Brock et al. 2017, github.com/ajbrock/FreezeOut): unit i's learning rate is
  cosine-annealed from ``lr / t_i`` (``freezeout_scale_lr``) to 0 at its own time
  ``t_i = scale(t0 + (1 - t0) * i / (n - 1))`` (``scale``: x, x**2 or x**3, ``freezeout_scale``), then it
  drops. The last unit before the head always trains (the shared mechanics), so it keeps the head's
  schedule: the paper's spacing over the layers that do freeze.
- ``autofreeze`` (Liu et al. 2021, github.com/YuhanLiu11/AutoFreeze): at each check, every unit's
  gradient-norm change rate ``g = |G(t-1) - G(t)| / G(t-1)`` (G: its mean L1 gradient norm over the
  interval); the prefix up to the first unit, from the frontier on, whose rate is at or above the
  ``autofreeze_percentile``-th percentile of those units' rates (the median) is frozen.
- ``schedule``: a fixed linear schedule (Composer's layer freezing, SVCCA's "freeze training"): of the m
  droppable units, ``floor(m * (p - start) / (end - start))`` are dropped at progress p, so unit i drops
  at ``t_i = start + (end - start) * (i + 1) / m``.
- ``freeze-first-k``: the first ``k`` units are dropped before any training (partial fine-tuning); ``k``
  may be every unit, the head alone training: the linear probe.

Each keeps Learn&Drop's record (``d``, ``s``, ``c`` of every unit) and adds what it observes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from ..config import PolicyConfig
from .pace import due, peer_times
from .policy import DROPPED, TRAINING, Decision, Drop, Observations, PolicyState, UnitScore, score
from .registry import BasePolicy, register_policy

SCALES = {"linear": 1, "squared": 2, "cubic": 3}  # FreezeOut's how_scale: t_i's power


def _pct(p: float) -> str:
    return f"{100 * p:.0f} %"


def _advance(state: PolicyState, obs: Observations, cfg: PolicyConfig, until: int,
             reason: Callable[[int], str],
             observed: Sequence[dict[str, Any]] | None = None, limit: int | None = None,
             **changes: Any) -> tuple[PolicyState, Decision]:
    """One check of a peer: record d, s, c, and drop the prefix up to ``until``: at most ``limit`` units
    (default: all but the last, which keeps training with the head)."""
    n = len(state.units)
    history, s_now, c_now = score(state, obs.d, cfg)
    dropped = max(state.dropped, min(until, n - 1 if limit is None else limit))
    drops = tuple(Drop(state.units[i], i, s_now[i], c_now[i], reason(i))
                  for i in range(state.dropped, dropped))
    frozen = tuple(i for i in state.frozen if i >= dropped)
    scores = tuple(UnitScore(name, None if obs.d[i] is None else float(obs.d[i]), s_now[i], c_now[i],
                             DROPPED if i < dropped else TRAINING) for i, name in enumerate(state.units))
    t = state.check + 1
    new_state = replace(state, check=t, history=tuple(history), dropped=dropped, frozen=frozen, **changes)
    return new_state, Decision(t, scores, drops, (), tuple(observed) if observed is not None else ())


def freezeout_times(n: int, cfg: PolicyConfig) -> list[float]:
    """``t_i`` of units ``0 .. n-2`` (the last unit trains with the head):
    ``scale(t0 + (1 - t0) i / (n - 1))``."""
    power = SCALES[cfg.freezeout_scale]
    return [(cfg.freezeout_t0 + (1 - cfg.freezeout_t0) * i / (n - 1)) ** power for i in range(n - 1)]


def freezeout_scale(t_i: float, progress: float, scale_lr: bool) -> float:
    """Unit i's lr multiplier: ``(1 / t_i) * (1 + cos(pi * progress / t_i)) / 2`` before ``t_i``, 0 from
    it."""
    if progress >= t_i:
        return 0.0
    return (1 / t_i if scale_lr else 1.0) * 0.5 * (1 + math.cos(math.pi * progress / t_i))


@register_policy
class FreezeOut(BasePolicy):
    """FreezeOut: each unit's lr is annealed to 0 at its own ``t_i``; it drops at the first check from
    then."""

    name = "freezeout"
    observes = frozenset({"progress"})

    def lr_scales(self, state: PolicyState, progress: float, config: PolicyConfig) -> list[float]:
        times = freezeout_times(len(state.units), config)
        return [freezeout_scale(t, progress, config.freezeout_scale_lr) for t in times] + [1.0]

    def step(self, state: PolicyState, observations: Observations, config: PolicyConfig
             ) -> tuple[PolicyState, Decision]:
        times, p = freezeout_times(len(state.units), config), observations.progress
        until = sum(1 for _ in _leading(t <= p for t in times))
        scales = self.lr_scales(state, p, config)
        observed = [{"t_i": round(t, 6), "lr_scale": round(m, 6)} for t, m in zip([*times, 1.0], scales)]
        return _advance(state, observations, config, until,
                        lambda i: (f"{state.units[i]} dropped: FreezeOut's schedule froze it at {_pct(p)} of "
                                   f"training (t_i = {times[i]:.2f})"), observed)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile with linear interpolation (numpy's default, which AutoFreeze uses)."""
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def change_rate(previous: float, current: float) -> float:
    """AutoFreeze's gradient-norm change rate ``|G(t-1) - G(t)| / G(t-1)`` (0 when both are 0)."""
    if previous > 0:
        return abs(previous - current) / previous
    return math.inf if current > 0 else 0.0


@register_policy
class AutoFreeze(BasePolicy):
    """AutoFreeze: freeze up to the first unit whose gradient-norm change rate is at or above the median."""

    name = "autofreeze"
    observes = frozenset({"grad_norm"})

    def step(self, state: PolicyState, observations: Observations, config: PolicyConfig
             ) -> tuple[PolicyState, Decision]:
        n, g = len(state.units), observations.grad_norm or (None,) * len(state.units)
        rates: list[float | None] = [None] * n
        for i in range(state.dropped, n):
            if g[i] is not None and state.last_g and i not in state.frozen:
                rates[i] = change_rate(state.last_g[i], g[i])
        live = [r for r in rates[state.dropped:] if r is not None]
        until = state.dropped
        cut = None
        first = None
        if live and len(live) == n - state.dropped:
            cut = percentile(live, config.autofreeze_percentile)
            first = next((i for i in range(state.dropped, n) if rates[i] >= cut), state.dropped)
            until = first
        last_g = tuple(float(v) if v is not None else 0.0 for v in g)
        observed = [{"g": None if r is None else round(r, 6), "grad_norm": None if v is None else float(v)}
                    for r, v in zip(rates, g)]

        def reason(i: int) -> str:
            return (f"{state.units[i]} dropped: AutoFreeze: its gradient-norm change rate {rates[i]:.3f} is "
                    f"below the {config.autofreeze_percentile:g}th percentile {cut:.3f} of the units still "
                    f"training, and {state.units[first]} is the first at or above it")
        return _advance(state, observations, config, until, reason, observed, last_g=last_g)


@register_policy
class Schedule(BasePolicy):
    """A fixed linear schedule: unit i drops at a set share of training, whatever it learns."""

    name = "schedule"
    observes = frozenset({"progress"})

    def step(self, state: PolicyState, observations: Observations, config: PolicyConfig
             ) -> tuple[PolicyState, Decision]:
        times, p = peer_times(len(state.units), config), observations.progress
        until = sum(1 for _ in _leading(due(i, times, p) for i in range(len(times))))
        observed = [{"t_i": round(t, 6)} for t in times] + [{}]
        return _advance(state, observations, config, until,
                        lambda i: (f"{state.units[i]} dropped: the fixed schedule drops unit {i + 1} of "
                                   f"{len(times)} at {_pct(times[i])} of training (now {_pct(p)})"), observed)


@register_policy
class FreezeFirstK(BasePolicy):
    """Partial fine-tuning: the first ``k`` units are dropped before any training; the rest all train. With
    ``k`` = every unit, only the head trains: the linear probe (the cheapest fine-tuning, with the cache)."""

    name = "freeze-first-k"

    def _check_k(self, state: PolicyState, config: PolicyConfig) -> int:
        if config.k > len(state.units):
            raise ValueError(f"freeze-first-k: k = {config.k}, but the network has {len(state.units)} units "
                             f"(k = {len(state.units)}: the linear probe, the head alone trains)")
        return config.k

    def _reason(self, unit: str, config: PolicyConfig, units: int) -> str:
        probe = ": the linear probe, the head alone trains" if config.k == units else ""
        return (f"{unit} dropped before training: freeze-first-k freezes the first {config.k} units "
                f"(k = {config.k}){probe}")

    def start(self, state: PolicyState, config: PolicyConfig) -> tuple[PolicyState, tuple[Drop, ...]]:
        k, n = self._check_k(state, config), len(state.units)
        drops = tuple(Drop(state.units[i], i, None, None, self._reason(state.units[i], config, n))
                      for i in range(state.dropped, k))
        return replace(state, dropped=max(state.dropped, k)), drops

    def step(self, state: PolicyState, observations: Observations, config: PolicyConfig
             ) -> tuple[PolicyState, Decision]:
        k, n = self._check_k(state, config), len(state.units)
        return _advance(state, observations, config, k, lambda i: self._reason(state.units[i], config, n),
                        limit=n)


def _leading(flags: Sequence[bool] | Any) -> list[bool]:
    """The leading run of true flags."""
    out = []
    for flag in flags:
        if not flag:
            break
        out.append(flag)
    return out
