"""The change measure d as the controller records it: scale invariance of ``directions``, and the
learning-rate normalisation with its cap. d is checked against a relative change computed here by hand
from the parameters, never against a number the code under test produced."""

from __future__ import annotations

import pytest
import torch
from helpers import two_conv_net

import learndrop
from learndrop import events as ev
from learndrop.config import PolicyConfig
from learndrop.method.measure import MIN_LR_FACTOR
from learndrop.method.scores import relative_changes, snapshot

SHAPE = (3, 8, 8)
UNITS = ("features.0", "features.1")  # features.0: conv + BN + ReLU; features.1: conv + ReLU (no BN)


def _flat(unit: torch.nn.Module) -> torch.Tensor:
    """A unit's learnable parameters as one float64 vector (BN's running statistics are buffers)."""
    return torch.cat([p.detach().double().reshape(-1) for p in unit.parameters()])


def _relative_change(before: torch.Tensor, after: torch.Tensor) -> float:
    return float((after - before).norm() / before.norm())


def _controller(net, measure="params", lr_normalized=True, lr=0.1, peak_lr=None):
    optimizer = torch.optim.SGD(learndrop.param_groups(net), lr=lr)
    # policy "none": scores every unit at every check and never drops, so both units stay measured
    policy = PolicyConfig(name="none", measure=measure, lr_normalized=lr_normalized)
    return learndrop.LearnDrop(net, optimizer, policy, input_shape=SHAPE, peak_lr=peak_lr), optimizer


def _d(result) -> dict[str, float]:
    return {s.unit: s.d for s in result.decision.scores}


# --- directions: a BN-followed conv's filter length is not learning ---------------------------------------

def test_scaling_filters_before_batchnorm_leaves_the_function_and_the_directions_unchanged():
    net = two_conv_net().train()
    x = torch.randn(16, *SHAPE, generator=torch.Generator().manual_seed(1))
    before_out = net(x)
    before, raw_before = snapshot([net.unit(0)], directions=True), snapshot([net.unit(0)], directions=False)
    conv = net.unit(0)[0]
    with torch.no_grad():  # each output filter by its own positive factor, from 0.5 to 4
        conv.weight.mul_(torch.tensor([0.5, 2.0, 3.0, 4.0]).view(4, 1, 1, 1))
    # the premise: BatchNorm (batch statistics) undoes the filters' lengths, the network computes the same
    assert torch.allclose(net(x), before_out, atol=1e-4)
    after = snapshot([net.unit(0)], directions=True)
    assert relative_changes(before, after)[0] == pytest.approx(0.0, abs=1e-6)
    # the raw parameters did change: params sees it
    assert relative_changes(raw_before, snapshot([net.unit(0)], directions=False))[0] > 0.5


@pytest.mark.parametrize("measure", ["directions", "params"])
def test_controller_d_after_scaling_a_bn_followed_conv(measure):
    net = two_conv_net()
    ld, _ = _controller(net, measure=measure, lr_normalized=False)
    conv0, conv1 = net.unit(0)[0], net.unit(1)[0]
    theta0, theta1 = _flat(net.unit(0)), _flat(net.unit(1))
    w0, w1 = conv0.weight.detach().double().norm(), conv1.weight.detach().double().norm()
    with torch.no_grad():
        conv0.weight.mul_(2.5)
    d = _d(ld.check())
    if measure == "directions":
        assert d["features.0"] == pytest.approx(0.0, abs=1e-6)
    else:  # only the conv weight moved, by 1.5 times itself: d = 1.5 ||w|| / ||theta||
        assert d["features.0"] == pytest.approx(float(1.5 * w0 / theta0.norm()), rel=1e-5)
        assert d["features.0"] > 0.1
    assert d["features.1"] == 0.0  # untouched

    # a conv that no BatchNorm follows is not scale invariant: directions counts its length as change
    with torch.no_grad():
        conv1.weight.mul_(2.5)
    d = _d(ld.check())
    assert d["features.1"] == pytest.approx(float(1.5 * w1 / theta1.norm()), rel=1e-5)
    assert d["features.0"] == pytest.approx(0.0, abs=1e-6)


# --- the learning-rate normalisation and its cap -----------------------------------------------------------

def _move(net, seed: int) -> list[torch.Tensor]:
    """Change every unit's parameters a little (as steps would), return each unit's flat θ before."""
    before = [_flat(net.unit(k)) for k in range(len(UNITS))]
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k in range(len(UNITS)):
            for p in net.unit(k).parameters():
                p.add_(0.01 * torch.randn(p.shape, generator=g))
    return before


def _raw(net, before) -> dict[str, float]:
    return {name: _relative_change(before[k], _flat(net.unit(k))) for k, name in enumerate(UNITS)}


def _steps(ld, optimizer, lrs):
    for lr in lrs:
        for group in optimizer.param_groups:
            group["lr"] = lr
        ld.step()  # the step's lr: the head's param group's


def test_d_is_divided_by_the_intervals_mean_lr_as_a_share_of_the_peak():
    net = two_conv_net()
    ld, optimizer = _controller(net, lr=0.1)  # peak lr: the optimizer's at construction, 0.1

    # interval 1: two steps at 0.05, two at 0.025 -> mean 0.0375 = 0.375 of the peak
    before = _move(net, 1)
    _steps(ld, optimizer, [0.05, 0.05, 0.025, 0.025])
    result = ld.check()
    raw = _raw(net, before)
    assert result.lr_factor == pytest.approx(0.375)  # (0.05 + 0.05 + 0.025 + 0.025) / 4 / 0.1
    for unit in UNITS:
        assert _d(result)[unit] == pytest.approx(raw[unit] / 0.375, rel=1e-5)
    scores_event = next(e for e in result.events if isinstance(e, ev.UnitScores))
    assert scores_event.lr_factor == pytest.approx(0.375)
    assert [s["d"] for s in scores_event.scores] == [_d(result)[u] for u in UNITS]

    # interval 2: three steps at the peak, 0.1
    before = _move(net, 2)
    _steps(ld, optimizer, [0.1, 0.1, 0.1])
    result, raw = ld.check(), _raw(net, before)
    assert result.lr_factor == pytest.approx(1.0)  # 0.1 / 0.1
    for unit in UNITS:
        assert _d(result)[unit] == pytest.approx(raw[unit], rel=1e-5)


def test_the_peak_lr_given_to_the_controller_is_the_reference():
    net = two_conv_net()
    ld, optimizer = _controller(net, lr=0.01, peak_lr=0.2)  # not the optimizer's 0.01 at construction
    before = _move(net, 3)
    _steps(ld, optimizer, [0.15, 0.15])
    result, raw = ld.check(), _raw(net, before)
    assert result.lr_factor == pytest.approx(0.75)  # 0.15 / 0.2
    for unit in UNITS:
        assert _d(result)[unit] == pytest.approx(raw[unit] / 0.75, rel=1e-5)


def test_the_normalisation_never_scales_d_up_more_than_100x():
    assert MIN_LR_FACTOR == 0.01  # docs/method.md: "never scaled up more than 100x"
    net = two_conv_net()
    ld, optimizer = _controller(net, lr=0.1)
    before = _move(net, 4)
    _steps(ld, optimizer, [1e-6, 1e-6])  # the end of a decay to 0: factor 1e-6 / 0.1 = 1e-5
    result, raw = ld.check(), _raw(net, before)
    assert result.lr_factor == pytest.approx(1e-5)
    for unit in UNITS:  # raw x 100 (the cap), not raw / 1e-5 = raw x 100,000
        assert _d(result)[unit] == pytest.approx(raw[unit] * 100, rel=1e-5)

    # an lr of exactly 0: still 100x, not a division by zero
    before = _move(net, 5)
    _steps(ld, optimizer, [0.0])
    result, raw = ld.check(), _raw(net, before)
    assert result.lr_factor == 0.0
    assert _d(result)["features.1"] == pytest.approx(raw["features.1"] * 100, rel=1e-5)


def test_without_lr_normalisation_d_is_the_raw_change_and_the_factor_is_still_reported():
    net = two_conv_net()
    ld, optimizer = _controller(net, lr_normalized=False, lr=0.1)
    before = _move(net, 6)
    _steps(ld, optimizer, [0.02, 0.04])
    result, raw = ld.check(), _raw(net, before)
    assert result.lr_factor == pytest.approx(0.3)  # (0.02 + 0.04) / 2 / 0.1
    for unit in UNITS:
        assert _d(result)[unit] == pytest.approx(raw[unit], rel=1e-5)
