"""Leave one pair out: does a setting chosen on some pairs hold on a pair it was not chosen on?

For every policy and every pair P of a set of frontier pairs (the same settings run on each), the
setting is chosen on the *other* pairs only: the one with the largest mean margin over their frontiers
of validation accuracy (training FLOPs axis). Its margin over P's frontier of *test* accuracy is the
held-out result, on FLOPs and on seconds. A policy is judged by its worst held-out margin and its mean.
Pure functions over the runs of ``bench --frontier`` reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import mean
from typing import Any

from .frontier import FLOPS, SECONDS, Group, frontier, groups, margin

# (policy, variant) -> (val, test FLOPs, test seconds)
Margins = dict[tuple[str, str], tuple[float, float, float]]


@dataclass(frozen=True)
class HeldOut:
    """One policy on one held-out pair: the setting the other pairs chose and what it made of this one."""

    policy: str
    pair: str
    variant: str
    chosen_on: float  # its mean validation margin on the other pairs, in points (FLOPs axis)
    flops: float  # its test margin on this pair, in points, over the frontier of training FLOPs
    seconds: float  # the same over the frontier of training seconds


@dataclass(frozen=True)
class PolicyResult:
    policy: str
    held_out: tuple[HeldOut, ...]  # one per pair, in the pairs' order

    @property
    def worst(self) -> float:
        return min(h.flops for h in self.held_out)

    @property
    def mean(self) -> float:
        return mean(h.flops for h in self.held_out)


def pair_margins(runs: Sequence[Mapping[str, Any]]) -> Margins:
    """Every non-baseline (policy, variant)'s margins on one pair: validation on FLOPs (the choice), test on
    FLOPs and on seconds (the report). Pairs without FLOPs or validation accuracies give none."""
    base = [r for r in runs if r["policy"] == "none"]
    if not base or any(r.get("val_acc") is None or r.get("train_flops") is None for r in runs):
        return {}
    fronts = {"val": frontier(base, "val_acc", FLOPS), FLOPS: frontier(base, axis=FLOPS),
              SECONDS: frontier(base, axis=SECONDS)}
    out: Margins = {}
    for g in groups(runs):
        if g.policy != "none":
            out[(g.policy, g.variant)] = _margins(g, fronts)
    return out


def _margins(g: Group, fronts: Mapping[str, Any]) -> tuple[float, float, float]:
    return (margin(fronts["val"], g.flops, g.val_acc).points,
            margin(fronts[FLOPS], g.flops, g.test_acc).points,
            margin(fronts[SECONDS], g.time_s, g.test_acc).points)


def leave_one_out(pairs: Sequence[Mapping[str, Any]]) -> list[PolicyResult]:
    """Per policy run on every pair (with settings run on every pair), its held-out result on each pair."""
    labels = [p["label"] for p in pairs]
    margins = [pair_margins(p["runs"]) for p in pairs]
    if len(pairs) < 2 or not all(margins):
        return []
    common = set.intersection(*(set(m) for m in margins))
    policies = list(dict.fromkeys(policy
                                  for policy, _ in sorted(common, key=lambda k: (k[0] != "learndrop", k))))
    results = []
    for policy in policies:
        settings = sorted(v for p, v in common if p == policy)
        held = []
        for i, label in enumerate(labels):
            others = [m for j, m in enumerate(margins) if j != i]

            def chosen_on(variant: str, others: list[Margins] = others) -> float:
                return mean(m[(policy, variant)][0] for m in others)

            best = max(settings, key=lambda v: (chosen_on(v), v == "default"))
            _, flops, seconds = margins[i][(policy, best)]
            held.append(HeldOut(policy, label, best, chosen_on(best), flops, seconds))
        results.append(PolicyResult(policy, tuple(held)))
    return results


def to_markdown(results: Sequence[PolicyResult]) -> list[str]:
    """The leave-one-out table: a row per policy, its held-out margin per pair (FLOPs; seconds; the setting
    the other pairs chose), its worst and its mean."""
    if not results:
        return ["(leave-one-out: needs at least two pairs, every run with FLOPs and a validation accuracy)"]
    labels = [h.pair for h in results[0].held_out]
    lines = ["| policy | " + " | ".join(labels) + " | worst | mean |", "|" + "---|" * (len(labels) + 3)]
    for r in results:
        cells = [f"{h.flops:+.2f} (seconds: {h.seconds:+.2f}) `{h.variant}`" for h in r.held_out]
        lines.append(f"| {r.policy} | " + " | ".join(cells) + f" | {r.worst:+.2f} | {r.mean:+.2f} |")
    return lines
