"""The budget frontier, as pure functions: what the baseline reaches when simply trained for fewer epochs.

A frontier is made of baseline (policy ``none``) runs at several budgets (epochs), each with its own
complete learning-rate schedule: per budget the mean cost and mean accuracy over its seeds; the line
through those points, sorted by cost, is made monotone non-decreasing in accuracy (a longer budget that
scored lower does not pull the line down: the user would simply stop at the shorter one). A run's
*margin* is its accuracy minus the frontier's at its cost (linear interpolation), in percentage points;
a run cheaper than the shortest budget is compared with that budget, one dearer than the longest with
the longest, and flagged as such.

The cost is one of two axes (``AXES``): the training seconds, what a user waits for, and the training
FLOPs, the work itself (forward and backward actually run, the cache builds and probe passes included).
Seconds on a shared machine swing by as much as the effects measured; FLOPs are the same on every run
of the same work, so choices are made on the FLOPs margin and the seconds margin is reported beside it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from statistics import mean
from typing import Any

FRACTIONS = (Fraction(1, 4), Fraction(1, 3), Fraction(1, 2), Fraction(2, 3), Fraction(1))
# where a point lies against the frontier's cost range
INSIDE = "inside"
LEFT = "left"
RIGHT = "right"
SECONDS, FLOPS = "seconds", "flops"
AXES = {SECONDS: "train_time_s", FLOPS: "train_flops"}  # an axis's name -> the run record's field


def budgets(epochs: int, fractions: Sequence[Fraction] = FRACTIONS) -> list[int]:
    """The baseline's budgets for a pair of ``epochs``: each fraction of it, rounded half up, at least 1,
    duplicates removed, ascending (6 -> [2, 3, 4, 6]; 2 -> [1, 2])."""
    return sorted({max(1, math.floor(Fraction(epochs) * f + Fraction(1, 2))) for f in fractions})


@dataclass(frozen=True)
class Budget:
    """One budget of the frontier: its epochs, and the means over its seeds (``cost``: on the frontier's
    axis)."""

    epochs: int
    seeds: int
    cost: float
    acc: float


@dataclass(frozen=True)
class Frontier:
    """The budgets, sorted by cost, and the line: ``(cost, accuracy)`` made monotone non-decreasing."""

    budgets: tuple[Budget, ...]
    line: tuple[tuple[float, float], ...]

    def __bool__(self) -> bool:
        return bool(self.line)


@dataclass(frozen=True)
class Margin:
    """acc − frontier(cost): ``delta`` as a fraction, ``points`` in percentage points; ``where`` is inside,
    left (cheaper than the shortest budget: compared with it) or right (dearer than the longest: with it)."""

    delta: float
    where: str
    reference: float  # the frontier's accuracy it was compared with

    @property
    def points(self) -> float:
        return 100 * self.delta

    def label(self) -> str:
        """``+1.20``, and ``*`` when outside the frontier's range (a chart's label)."""
        return f"{self.points:+.2f}{'' if self.where == INSIDE else '*'}"

    def text(self) -> str:
        """``+1.20 pts``, with the flag when outside the frontier's range."""
        flag = {LEFT: " (cheaper than the shortest budget: vs it)",
                RIGHT: " (dearer than the full budget: vs it)"}
        return f"{self.points:+.2f} pts{flag.get(self.where, '')}"


def has_axis(runs: Iterable[Mapping[str, Any]], axis: str) -> bool:
    """Whether every run with an accuracy carries the axis's cost (older reports have no ``train_flops``)."""
    return all(r.get(AXES[axis]) is not None for r in runs if r.get("test_acc") is not None)


def frontier(runs: Iterable[Mapping[str, Any]], acc: str = "test_acc", axis: str = SECONDS) -> Frontier:
    """The frontier of baseline runs (dicts with ``epochs``, ``acc`` and the axis's cost: ``train_time_s`` or
    ``train_flops``); runs without an accuracy or cost are left out."""
    cost = AXES[axis]
    by_budget: dict[int, list[Mapping[str, Any]]] = {}
    for run in runs:
        if run.get(acc) is not None and run.get(cost) is not None and run.get("epochs"):
            by_budget.setdefault(int(run["epochs"]), []).append(run)
    points = sorted((Budget(e, len(rs), mean(float(r[cost]) for r in rs), mean(float(r[acc]) for r in rs))
                     for e, rs in by_budget.items()), key=lambda b: (b.cost, b.epochs))
    line, best = [], -math.inf
    for b in points:
        best = max(best, b.acc)
        line.append((b.cost, best))
    return Frontier(tuple(points), tuple(line))


def frontier_at(front: Frontier, t: float) -> tuple[float, str]:
    """The frontier's accuracy at cost ``t`` (linear interpolation), and where ``t`` lies."""
    if not front:
        raise ValueError("an empty frontier has no accuracy")
    line = front.line
    if t < line[0][0]:
        return line[0][1], LEFT
    if t > line[-1][0]:
        return line[-1][1], RIGHT
    for (t0, a0), (t1, a1) in pairwise(line):
        if t0 <= t <= t1:
            return (a0 if t1 == t0 else a0 + (a1 - a0) * (t - t0) / (t1 - t0)), INSIDE
    return line[-1][1], INSIDE  # a single-point frontier, t on it


def margin(front: Frontier, t: float, acc: float) -> Margin:
    """How far the point (cost ``t``, ``acc``) lies above (+) or below (−) the frontier."""
    reference, where = frontier_at(front, t)
    return Margin(acc - reference, where, reference)


def variant_of(settings: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    """A short text of the settings that differ from the defaults (``tau=0.3,warmup=3``), ``default`` if
    none."""
    diff = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in settings.items()
            if k != "name" and defaults.get(k) != v]
    return ",".join(diff) or "default"


@dataclass(frozen=True)
class Group:
    """The runs of one policy and variant at one epochs: their count and means."""

    policy: str
    variant: str
    epochs: int
    seeds: int
    time_s: float
    test_acc: float
    val_acc: float | None  # None when any of its runs has no validation accuracy
    flops: float | None = None  # mean training FLOPs; None when any of its runs does not carry them

    def cost(self, axis: str) -> float | None:
        return self.time_s if axis == SECONDS else self.flops


def groups(runs: Iterable[Mapping[str, Any]]) -> list[Group]:
    """The runs grouped by (policy, variant, epochs), means over seeds, in reading order: the frontier's
    budgets first, shortest first, then each policy in first-seen order, its default first (runs train
    interleaved); a run without a test accuracy or training time (one that failed before its first epoch) is
    left out."""
    found: dict[tuple[str, str, int], list[Mapping[str, Any]]] = {}
    for run in runs:
        if run.get("test_acc") is None or run.get("train_time_s") is None:
            continue
        found.setdefault((run["policy"], run["variant"], int(run["epochs"])), []).append(run)
    policies = list(dict.fromkeys(["none", *(policy for policy, _, _ in found)]))

    def reading(key: tuple[str, str, int]) -> tuple[int, bool, int]:
        policy, variant, epochs = key
        return policies.index(policy), variant != "default", epochs if policy == "none" else 0

    out = []
    for (policy, variant, epochs), rs in sorted(found.items(), key=lambda kv: reading(kv[0])):
        out.append(Group(policy, variant, epochs, len(rs), mean(float(r["train_time_s"]) for r in rs),
                         mean(float(r["test_acc"]) for r in rs), _mean_or_none(rs, "val_acc"),
                         _mean_or_none(rs, "train_flops")))
    return out


def _mean_or_none(runs: Sequence[Mapping[str, Any]], key: str) -> float | None:
    values = [r.get(key) for r in runs]
    return None if any(v is None for v in values) else mean(float(v) for v in values)


def time_efficiency(group: Group, full: Group) -> float | None:
    """Seconds saved per FLOPs saved against the full budget (1: every FLOP saved became time saved): where
    the two axes part (a cache build paid in memory traffic, a probe pass, the machine's speed). None where no
    FLOPs were saved."""
    if group.flops is None or full.flops is None or group.flops >= full.flops:
        return None
    return (1 - group.time_s / full.time_s) / (1 - group.flops / full.flops)


@dataclass(frozen=True)
class Pick:
    """The variant chosen for a policy, the accuracy it was chosen on (val_acc, or test_acc as a fallback),
    the axis (flops, or seconds where the runs carry no FLOPs) and its score: its margin over that accuracy's
    frontier on that axis, in points (its accuracy without a frontier)."""

    policy: str
    variant: str
    on: str
    score: float
    axis: str = SECONDS

    @property
    def fallback(self) -> bool:
        return self.on != "val_acc"


def pick_on_validation(runs: Iterable[Mapping[str, Any]], baseline: str = "none", axis: str | None = None
                       ) -> dict[str, Pick]:
    """Per policy (the baseline aside), the variant with the largest mean margin over the frontier drawn
    from the baseline's *validation* accuracy: the question is accuracy at its cost, so a dearer variant is
    not chosen just for scoring higher. The cost is ``axis``'s, by default the training FLOPs where every run
    carries them (no timing noise), else the seconds. When a run has no validation accuracy (no validation
    split), the margin on the test accuracy, flagged (``Pick.fallback``): choosing on test data flatters
    the choice. Without baseline runs, the accuracy itself. Ties: the first variant run."""
    runs = list(runs)
    axis = axis or (FLOPS if has_axis(runs, FLOPS) else SECONDS)
    base = [r for r in runs if r["policy"] == baseline]
    fronts = {"test_acc": frontier(base, axis=axis),
              "val_acc": (frontier(base, "val_acc", axis)
                          if base and all(r.get("val_acc") is not None for r in base) else None)}
    by_policy: dict[str, list[Group]] = {}
    for g in groups(runs):
        if g.policy != baseline:
            by_policy.setdefault(g.policy, []).append(g)
    picks = {}
    for policy, gs in by_policy.items():
        on = "val_acc" if fronts["val_acc"] and all(g.val_acc is not None for g in gs) else "test_acc"
        front = fronts[on]

        def score(g: Group, on: str = on, front: Frontier | None = front) -> float:
            return margin(front, g.cost(axis), getattr(g, on)).points if front else getattr(g, on)

        best = max(gs, key=score)  # max keeps the first of equals
        picks[policy] = Pick(policy, best.variant, on, score(best), axis)
    return picks
