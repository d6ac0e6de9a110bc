"""The budget frontier, as pure functions: what the baseline reaches when simply trained for fewer epochs.

A frontier is made of baseline (policy ``none``) runs at several budgets (epochs), each with its own
complete learning-rate schedule: per budget the mean training time and mean accuracy over its seeds;
the line through those points, sorted by time, is made monotone non-decreasing in accuracy (a longer
budget that scored lower does not pull the line down: the user would simply stop at the shorter one).
A run's *margin* is its accuracy minus the frontier's at its training time (linear interpolation), in
percentage points; a run faster than the shortest budget is compared with that budget, one slower than
the longest with the longest, and flagged as such.
"""

from __future__ import annotations

import math
from itertools import pairwise
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from statistics import mean
from typing import Any

FRACTIONS = (Fraction(1, 4), Fraction(1, 3), Fraction(1, 2), Fraction(2, 3), Fraction(1))
INSIDE, LEFT, RIGHT = "inside", "left", "right"  # where a point lies against the frontier's time range


def budgets(epochs: int, fractions: Sequence[Fraction] = FRACTIONS) -> list[int]:
    """The baseline's budgets for a pair of ``epochs``: each fraction of it, rounded half up, at least 1,
    duplicates removed, ascending (6 -> [2, 3, 4, 6]; 2 -> [1, 2])."""
    return sorted({max(1, math.floor(Fraction(epochs) * f + Fraction(1, 2))) for f in fractions})


@dataclass(frozen=True)
class Budget:
    """One budget of the frontier: its epochs, and the means over its seeds."""

    epochs: int
    seeds: int
    time_s: float
    acc: float


@dataclass(frozen=True)
class Frontier:
    """The budgets, sorted by time, and the line: ``(time, accuracy)`` made monotone non-decreasing."""

    budgets: tuple[Budget, ...]
    line: tuple[tuple[float, float], ...]

    def __bool__(self) -> bool:
        return bool(self.line)


@dataclass(frozen=True)
class Margin:
    """acc − frontier(t): ``delta`` as a fraction, ``points`` in percentage points; ``where`` is inside,
    left (faster than the shortest budget: compared with it) or right (slower than the longest: with it)."""

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
        flag = {LEFT: " (faster than the shortest budget: vs it)", RIGHT: " (slower than the full budget: vs it)"}
        return f"{self.points:+.2f} pts{flag.get(self.where, '')}"


def frontier(runs: Iterable[Mapping[str, Any]], acc: str = "test_acc") -> Frontier:
    """The frontier of baseline runs (dicts with ``epochs``, ``train_time_s`` and ``acc``); runs without an
    accuracy or time are left out."""
    by_budget: dict[int, list[Mapping[str, Any]]] = {}
    for run in runs:
        if run.get(acc) is not None and run.get("train_time_s") is not None and run.get("epochs"):
            by_budget.setdefault(int(run["epochs"]), []).append(run)
    points = sorted((Budget(e, len(rs), mean(float(r["train_time_s"]) for r in rs), mean(float(r[acc]) for r in rs))
                     for e, rs in by_budget.items()), key=lambda b: (b.time_s, b.epochs))
    line, best = [], -math.inf
    for b in points:
        best = max(best, b.acc)
        line.append((b.time_s, best))
    return Frontier(tuple(points), tuple(line))


def frontier_at(front: Frontier, t: float) -> tuple[float, str]:
    """The frontier's accuracy at time ``t`` (linear interpolation), and where ``t`` lies."""
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
    """How far the point (``t``, ``acc``) lies above (+) or below (−) the frontier."""
    reference, where = frontier_at(front, t)
    return Margin(acc - reference, where, reference)


def variant_of(settings: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    """A short text of the settings that differ from the defaults (``tau=0.3,warmup=3``), ``default`` if none."""
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


def groups(runs: Iterable[Mapping[str, Any]]) -> list[Group]:
    """The runs grouped by (policy, variant, epochs), means over seeds, in reading order: the frontier's budgets
    first, shortest first, then each policy in first-seen order, its default first (runs train interleaved); a
    run without a test accuracy or training time (one that failed before its first epoch) is left out."""
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
        vals = [r.get("val_acc") for r in rs]
        out.append(Group(policy, variant, epochs, len(rs), mean(float(r["train_time_s"]) for r in rs),
                         mean(float(r["test_acc"]) for r in rs),
                         None if any(v is None for v in vals) else mean(float(v) for v in vals)))
    return out


@dataclass(frozen=True)
class Pick:
    """The variant chosen for a policy, the accuracy it was chosen on (val_acc, or test_acc as a fallback)
    and its score: its margin over that accuracy's frontier, in points (its accuracy without a frontier)."""

    policy: str
    variant: str
    on: str
    score: float

    @property
    def fallback(self) -> bool:
        return self.on != "val_acc"


def pick_on_validation(runs: Iterable[Mapping[str, Any]], baseline: str = "none") -> dict[str, Pick]:
    """Per policy (the baseline aside), the variant with the largest mean margin over the frontier drawn
    from the baseline's *validation* accuracy: the question is accuracy at its training time, so a slower
    variant is not chosen just for scoring higher. When a run has no validation accuracy (no validation
    split), the margin on the test accuracy, flagged (``Pick.fallback``): choosing on test data flatters
    the choice. Without baseline runs, the accuracy itself. Ties: the first variant run."""
    runs = list(runs)
    base = [r for r in runs if r["policy"] == baseline]
    fronts = {"test_acc": frontier(base),
              "val_acc": frontier(base, "val_acc") if base and all(r.get("val_acc") is not None for r in base)
              else None}
    by_policy: dict[str, list[Group]] = {}
    for g in groups(runs):
        if g.policy != baseline:
            by_policy.setdefault(g.policy, []).append(g)
    picks = {}
    for policy, gs in by_policy.items():
        on = "val_acc" if fronts["val_acc"] and all(g.val_acc is not None for g in gs) else "test_acc"
        front = fronts[on]

        def score(g: Group, on: str = on, front: Frontier | None = front) -> float:
            return margin(front, g.time_s, getattr(g, on)).points if front else getattr(g, on)

        best = max(gs, key=score)  # max keeps the first of equals
        picks[policy] = Pick(policy, best.variant, on, score(best))
    return picks
