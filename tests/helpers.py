"""Plain helpers for the tests: a tiny two-unit CNN with hand-checkable FLOPs, small fast configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from learndrop.config import PolicyConfig, RunConfig
from learndrop.models import UnitNetwork

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def two_conv_net() -> UnitNetwork:
    """conv(3->4, 3x3) + ReLU, conv(4->8, 3x3) + ReLU, global pool + linear(8->10), on 8x8 inputs."""
    torch.manual_seed(0)
    features = nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()),
        nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU()),
    )
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    return UnitNetwork({"features": features, "head": head}, ["features.0", "features.1"])


# A policy whose drops come on any CPU: every unit with a continuation score is a candidate (s <= 1 = tau
# always, c under a kappa no ratio of changes reaches), so the frontier drops at the first check past the
# warm-up, as far as the prefix rule lets it. A tau of 0.9 waited for a score that one CPU's rounding put
# at 0.9039 (AMD EPYC, AVX-512): the drop never came there. Tests that need a drop force it like this (or
# with a schedule, fixed scores, a stub policy); none waits for a measured score to cross a threshold.
FORCED = PolicyConfig(tau=1.0, kappa=1e9, warmup=1, patience=1, paced=False)


def fast_config(**overrides) -> RunConfig:
    """A run of a few seconds: 512 shapes images, tiny at half width, drops forced (``FORCED``)."""
    policy = overrides.pop("policy", FORCED)
    base = dict(model="tiny", width=0.5, dataset="shapes", subset=512, epochs=3, batch_size=64,
                checks_per_epoch=2, progress_every=4, device="cpu", policy=policy)
    base.update(overrides)
    return RunConfig(**base)


def slow_among(values, slow) -> list:
    """``values`` for a parametrize, those in ``slow`` marked ``slow`` (over 5 s each on two CPU cores). A name
    in ``slow`` that is not among the values is an error: a renamed case does not quietly join the quick loop."""
    values = list(values)
    if missing := set(slow) - set(values):
        raise ValueError(f"marked slow but not among the values: {sorted(missing)}")
    return [pytest.param(v, marks=pytest.mark.slow) if v in slow else v for v in values]
