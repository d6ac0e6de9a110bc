"""The probe-based criteria and annealing: function-space change (1 − CKA), the rewind gate, anneal-then-drop;
each as a pure step, then through the controller on a real network, the recorder and the replay."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import torch
from helpers import ROOT, fast_config, two_conv_net

from learndrop import events as ev
from learndrop.config import PolicyConfig
from learndrop.errors import LearnDropError
from learndrop.method.controller import LearnDrop
from learndrop.method.dropping import param_groups
from learndrop.method.policy import CANDIDATE, DROPPED, Observations, initial_state, replay, step
from learndrop.method.probe import Probe, centred_gram, cka
from learndrop.method.registry import get_policy
from learndrop.training.loop import train

UNITS = ("u0", "u1", "u2", "u3")
EAGER = dict(tau=0.5, kappa=10.0, warmup=0, paced=False)


def _controller(policy: PolicyConfig, seed: int = 0) -> tuple[LearnDrop, torch.optim.Optimizer, Probe]:
    model = two_conv_net()
    optimizer = torch.optim.SGD(param_groups(model), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    probe = (torch.randn(32, 3, 8, 8, generator=g), torch.randint(0, 10, (32,), generator=g))
    return LearnDrop(model, optimizer, policy, (3, 8, 8), probe=probe), optimizer, Probe(*probe)


def _make_candidate(ld: LearnDrop, unit: int = 0):
    """Checks 1 and 2: a large change of every unit (the peak), then a small one of ``unit`` only."""
    for scale, units in ((0.5, range(2)), (0.01, [unit])):
        with torch.no_grad():
            for k in units:
                for p in ld.model.unit(k).parameters():
                    p.add_(scale * p.abs().mean())
        result = ld.check(progress=0.1 * (2 if scale < 0.5 else 1))
    return result


# --- CKA ------------------------------------------------------------------------------------------------
def test_cka_is_one_for_the_same_function_up_to_rotation_and_scale_and_lower_for_another():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(64, 20, generator=g)
    q, _ = torch.linalg.qr(torch.randn(20, 20, generator=g))
    assert float(cka(centred_gram(a), centred_gram(3.0 * a @ q))) == pytest.approx(1.0, abs=1e-5)
    assert float(cka(centred_gram(a), centred_gram(a + 10.0))) == pytest.approx(1.0, abs=1e-5)  # centred
    other = float(cka(centred_gram(a), centred_gram(torch.randn(64, 20, generator=g))))
    near = float(cka(centred_gram(a), centred_gram(a + 0.1 * torch.randn(64, 20, generator=g))))
    assert other < near < 1.0 and other < 0.6


def test_function_change_is_zero_for_unchanged_units_and_the_frontier_sees_only_its_own():
    ld, _, _ = _controller(PolicyConfig(measure="function", **EAGER))
    d = [s.d for s in ld.check().decision.scores]
    assert max(d) < 1e-5  # nothing trained: the same outputs, d 0 (not noise)
    with torch.no_grad():  # change the second unit only: the first unit's output stays the same
        ld.model.unit(1)[0].weight.mul_(-1.0).add_(0.3)
    d = [s.d for s in ld.check().decision.scores]
    assert d[0] < 1e-5 and d[1] > 0.01


def test_the_probe_keeps_the_network_in_the_mode_it_was_in():
    ld, _, _ = _controller(PolicyConfig(measure="function", rewind_eps=0.5, **EAGER))
    ld.train_mode()
    ld.check()
    assert ld.model.training and ld.model.unit(0)[1].training  # BatchNorm trains on


# --- the rewind gate (pure) --------------------------------------------------------------------------
def test_the_rewind_gate_asks_for_tests_then_drops_only_what_passes():
    cfg = PolicyConfig(rewind_eps=0.01, **EAGER)
    state, _ = step(initial_state(UNITS), (1.0,) * 4, cfg)
    _, first = step(state, (0.1,) * 4, cfg)  # every unit meets the rule
    assert first.drops == () and first.untested == (0, 1, 2)  # the chain up to the last unit before the head
    _, second = step(state, (0.1,) * 4, cfg, rewind=(0.001, 0.05, 0.001, None))
    assert [dr.unit for dr in second.drops] == ["u0"]  # u1's last interval still mattered: the frontier stops
    assert second.untested == () and second.observed[1]["rewind"] == 0.05
    _, off = step(state, (0.1,) * 4, PolicyConfig(**EAGER))
    assert [dr.unit for dr in off.drops] == ["u0", "u1", "u2"] and off.untested == ()


def test_the_controller_makes_the_rewind_tests_and_records_them():
    strict, _, _ = _controller(PolicyConfig(rewind_eps=1e-9, **EAGER))
    loose, _, _ = _controller(PolicyConfig(rewind_eps=0.99, **EAGER))
    kept, dropped = _make_candidate(strict), _make_candidate(loose)
    assert kept.decision.drops == () and [dr.unit for dr in dropped.decision.drops] == ["features.0"]
    scores = next(e for e in kept.events if isinstance(e, ev.UnitScores)).scores
    assert scores[0]["rewind"] > 1e-9  # the test that kept it, in unit_scores


def test_rewinding_puts_the_unit_back_as_it_was():
    ld, _, probe = _controller(PolicyConfig(rewind_eps=0.5, **EAGER))
    before = [p.clone() for p in ld.model.parameters()]
    with torch.no_grad():
        ld.model.unit(0)[0].weight.add_(0.5)
    moved = [p.clone() for p in ld.model.parameters()]
    effects = probe.rewind_effects(ld.model, [0], ld._measure.rewind_points)
    assert effects[0] > 0
    assert all(torch.equal(a, b) for a, b in zip(moved, ld.model.parameters()))  # put back after the test
    assert not all(torch.equal(a, b) for a, b in zip(before, ld.model.parameters()))


# --- anneal, then drop ------------------------------------------------------------------------------
def test_a_candidate_anneals_for_its_window_then_drops():
    cfg = PolicyConfig(anneal=2, **EAGER)
    state, _ = step(initial_state(UNITS), (1.0,) * 4, cfg, progress=0.1)
    state, d2 = step(state, (0.1, 1.0, 1.0, 1.0), cfg, progress=0.2)  # u0 a candidate at check 2
    assert d2.drops == () and d2.scores[0].state == CANDIDATE and d2.observed[0]["anneal_from"] == 2
    state, d3 = step(state, (1.0, 1.0, 1.0, 1.0), cfg, progress=0.3)  # committed: a rise does not stop it
    assert d3.drops == ()
    state, d4 = step(state, (0.0, 1.0, 1.0, 1.0), cfg, progress=0.4)
    assert [dr.unit for dr in d4.drops] == ["u0"] and d4.scores[0].state == DROPPED


def test_annealing_scales_the_units_learning_rate_by_a_cosine_from_one_to_zero():
    cfg = PolicyConfig(anneal=2, **EAGER)
    policy = get_policy("learndrop")
    state, _ = step(initial_state(UNITS), (1.0,) * 4, cfg, progress=0.1)
    state, _ = step(state, (0.1, 1.0, 1.0, 1.0), cfg, progress=0.2)  # window: progress 0.2 to 0.4
    assert policy.lr_scales(state, 0.2, cfg) == [1.0, 1.0, 1.0, 1.0]
    assert policy.lr_scales(state, 0.3, cfg)[0] == pytest.approx(0.5)
    assert policy.lr_scales(state, 0.4, cfg)[0] == pytest.approx(0.0, abs=1e-12)
    assert policy.lr_scales(state, 0.3, PolicyConfig(**EAGER)) is None  # no annealing asked: lr as given


def test_the_controller_anneals_the_units_param_group():
    ld, optimizer, _ = _controller(PolicyConfig(anneal=2, **EAGER))
    assert _make_candidate(ld).decision.drops == ()  # a candidate at check 2, progress 0.2: annealing to 0.4
    ld.set_lr(0.1, 0.3)
    lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert lrs["features.0"] == pytest.approx(0.05) and lrs["features.1"] == pytest.approx(0.1)


def test_a_run_with_every_criterion_trains_records_them_and_replays_them(tmp_path):
    policy = PolicyConfig(tau=1.0, kappa=1e9, warmup=1, measure="function", rewind_eps=0.5, anneal=1,
                          paced=False)
    events = []
    train(fast_config(policy=policy, val_split=64, epochs=4), [events.append])
    scores = [e for e in events if isinstance(e, ev.UnitScores)]
    assert any("rewind" in s for e in scores for s in e.scores)
    drops = [e for e in events if isinstance(e, ev.UnitDropped)]
    assert drops, "every unit is a candidate: the frontier drops once its rewind test passes"
    annealing = [e.check for e in scores for s in e.scores if s["unit"] == drops[0].unit and "anneal_from" in s]
    assert annealing and min(annealing) < drops[0].check  # it annealed first
    units = [s["unit"] for s in scores[0].scores]
    d = [[s["d"] for s in e.scores] for e in scores]
    rewind = [[s.get("rewind") for s in e.scores] for e in scores]
    replayed = replay(units, d, policy, rewind_rows=rewind)
    assert [dr.unit for dec in replayed for dr in dec.drops][:1] == [drops[0].unit]
    vetoed = replay(units, d, dataclasses.replace(policy, rewind_eps=1e-12), rewind_rows=rewind)
    first = [dec.check for dec in vetoed if dec.drops]
    assert not first or first[0] > drops[0].check  # the tests it failed hold it back


# --- settings ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("field", "value"), [("rewind_eps", -0.1), ("rewind_eps", 1.0), ("anneal", -1),
                                              ("anneal", 1.5), ("measure", "weights")])
def test_the_new_settings_are_validated_naming_their_field(field, value):
    with pytest.raises(LearnDropError) as info:
        PolicyConfig(**{field: value}).validate()
    assert info.value.field == field


@pytest.mark.slow  # the CLI in a subprocess
def test_the_cli_takes_the_criteria_and_refuses_a_bad_one_in_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "learndrop", "train", "--anneal", "-2", "--runs-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
                         env={"PYTHONPATH": str(ROOT)})
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0 and "anneal" in out.stderr
    assert not any(tmp_path.iterdir())


def test_observations_carry_the_rewind_tests_to_the_learndrop_policy():
    cfg = PolicyConfig(rewind_eps=0.01, **EAGER)
    state, _ = step(initial_state(UNITS), (1.0,) * 4, cfg)
    _, decision = get_policy("learndrop").step(state, Observations((0.1,) * 4, 0.5, None, (0.5, 0.0, 0.0, None)), cfg)
    assert decision.drops == () and decision.untested == ()  # u0 failed its test
