"""Learn&Drop's own policies: the method (``learndrop``) and the full training it is compared with (``none``),
which scores and marks candidates as Learn&Drop would and drops nothing."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..config import PolicyConfig
from .policy import Decision, Observations, PolicyState, step
from .registry import BasePolicy, register_policy


def changes(observations: Observations | Sequence[float | None]) -> Sequence[float | None]:
    """The per-unit changes ``d`` (a plain sequence is taken as them)."""
    return observations.d if isinstance(observations, Observations) else observations


def anneal_scales(state: PolicyState, progress: float) -> list[float] | None:
    """Per unit, its learning-rate multiplier while annealing: a cosine from 1 at the check it became a
    candidate to 0 at the end of its window; 1 for every other unit; None when none anneals."""
    if not any(state.anneal):
        return None
    out = []
    for i, a in enumerate(state.anneal):
        if not a or i < state.dropped or a[2] <= a[1]:
            out.append(1.0)
            continue
        x = min(1.0, max(0.0, (progress - a[1]) / (a[2] - a[1])))
        out.append(0.5 * (1.0 + math.cos(math.pi * x)))
    return out


@register_policy
class LearnDropPolicy(BasePolicy):
    """Learn&Drop: drop the frontier once its change has fallen to ``tau`` of its peak and is not rising."""

    name = "learndrop"

    def needs(self, config: PolicyConfig) -> frozenset[str]:
        return frozenset({"progress"}) if config.paced else self.observes

    def step(self, state: PolicyState, observations: Observations | Sequence[float | None],
             config: PolicyConfig) -> tuple[PolicyState, Decision]:
        if isinstance(observations, Observations):
            return step(state, observations.d, config, progress=observations.progress,
                        rewind=observations.rewind)
        return step(state, observations, config)

    def lr_scales(self, state: PolicyState, progress: float, config: PolicyConfig) -> list[float] | None:
        return anneal_scales(state, progress) if config.anneal else None


@register_policy
class Baseline(BasePolicy):
    """The full training (policy ``none``): scores and candidates are recorded, nothing is dropped."""

    name = "none"

    def step(self, state: PolicyState, observations: Observations | Sequence[float | None],
             config: PolicyConfig) -> tuple[PolicyState, Decision]:
        return step(state, changes(observations), config, allow_drop=False)
