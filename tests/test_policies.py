"""The peers as policies: each pure step on hand-made observations, the registry, FreezeOut's per-unit
learning rates, and a whole short run per policy on the shared drop mechanics."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import fast_config

import learndrop
from learndrop import events as ev
from learndrop.config import PolicyConfig
from learndrop.errors import LearnDropError
from learndrop.method.pace import peer_times
from learndrop.method.peers import freezeout_times, percentile
from learndrop.method.policy import DROPPED, TRAINING, Observations, initial_state, step
from learndrop.method.registry import get_policy, policy_names, register_policy
from learndrop.training.loop import train
from learndrop.training.prepare import prepare

UNITS = ("u0", "u1", "u2", "u3")
NONE4 = (None, None, None, None)


def _obs(progress=0.0, d=(0.1, 0.1, 0.1, 0.1), g=None):
    return Observations(tuple(d), progress, None if g is None else tuple(g))


def test_every_policy_is_registered_once_under_its_name_and_an_unknown_one_is_one_line():
    assert policy_names() == ("learndrop", "none", "freezeout", "autofreeze", "schedule", "freeze-first-k")
    for name in policy_names():
        assert get_policy(name).name == name
        PolicyConfig(name=name).validate()
    with pytest.raises(LearnDropError, match="unknown policy 'nope'; choose one of: learndrop, none"):
        get_policy("nope")
    with pytest.raises(ValueError, match="a name of its own"):
        register_policy(type("Again", (), {"name": "learndrop"}))


@pytest.mark.parametrize(("field", "value"), [("freezeout_t0", 0.0), ("freezeout_t0", 1.5), ("freezeout_scale", "x"),
                                              ("autofreeze_percentile", 0), ("autofreeze_percentile", 101.0),
                                              ("schedule_start", 1.0), ("schedule_end", 0.0), ("k", -1),
                                              ("k", 1.5), ("schedule_start", math.nan)])
def test_the_peers_settings_are_validated_naming_their_field(field, value):
    with pytest.raises(LearnDropError) as info:
        PolicyConfig(**{field: value}).validate()
    assert info.value.field == field
    with pytest.raises(LearnDropError) as info:  # the schedule must end after it starts
        PolicyConfig(schedule_start=0.6, schedule_end=0.5).validate()
    assert info.value.field == "schedule_end"


def test_learndrop_reads_observations_as_its_changes():
    cfg = PolicyConfig(tau=0.5, warmup=0)
    state = initial_state(UNITS)
    a = get_policy("learndrop").step(state, _obs(0.3, (0.2, 0.2, 0.2, 0.2)), cfg)
    assert a == step(state, (0.2, 0.2, 0.2, 0.2), cfg)
    assert get_policy("learndrop").lr_scales(state, 0.5, cfg) is None  # every multiplier 1
    assert get_policy("none").observes == frozenset()


def test_freezeout_times_and_learning_rates_follow_the_papers_cubic_schedule():
    cfg = PolicyConfig(name="freezeout")  # t0 0.8, cubic, lr scaled by 1 / t_i
    # 4 units, the last trains with the head: t_i = (0.8 + 0.2 i / 3) ** 3 for i = 0, 1, 2
    # = 0.512, 0.86667 ** 3 = 0.65096, 0.93333 ** 3 = 0.81304
    assert freezeout_times(4, cfg) == pytest.approx([0.512, 0.650963, 0.813037], abs=1e-6)
    assert freezeout_times(4, PolicyConfig(freezeout_scale="linear")) == pytest.approx([0.8, 0.866667, 0.933333])
    policy, state = get_policy("freezeout"), initial_state(UNITS)
    # at the start each unit runs at lr / t_i: 1 / 0.512 = 1.953125
    assert policy.lr_scales(state, 0.0, cfg) == pytest.approx([1 / 0.512, 1 / 0.650963, 1 / 0.813037, 1.0], rel=1e-5)
    # half-way to t_0: (1 / 0.512) * (1 + cos(pi / 2)) / 2 = 0.9765625
    assert policy.lr_scales(state, 0.256, cfg)[0] == pytest.approx(0.9765625)
    assert policy.lr_scales(state, 0.512, cfg)[0] == 0.0  # reaches 0 at t_0
    assert policy.lr_scales(state, 0.4, PolicyConfig(freezeout_scale_lr=False))[0] == pytest.approx(
        0.5 * (1 + math.cos(math.pi * 0.4 / 0.512)))

    # progress 0.6: only t_0 = 0.512 has passed -> unit 0 drops; 0.9: all three that can
    state, decision = policy.step(state, _obs(0.6), cfg)
    assert [d.unit for d in decision.drops] == ["u0"]
    assert decision.drops[0].reason == "u0 dropped: FreezeOut's schedule froze it at 60 % of training (t_i = 0.51)"
    assert [s.state for s in decision.scores] == [DROPPED, TRAINING, TRAINING, TRAINING]
    assert decision.observed[1]["t_i"] == pytest.approx(0.650963)
    state, decision = policy.step(state, _obs(0.9, (None, 0.1, 0.1, 0.1)), cfg)
    assert [d.unit for d in decision.drops] == ["u1", "u2"] and state.dropped == 3  # never u3, the last


def test_autofreeze_freezes_up_to_the_first_unit_at_or_above_the_median_change_rate():
    cfg, policy = PolicyConfig(name="autofreeze"), get_policy("autofreeze")
    assert policy.observes == frozenset({"grad_norm"})
    state, decision = policy.step(initial_state(UNITS), _obs(0.2, g=(1.0, 1.0, 1.0, 1.0)), cfg)
    assert not decision.drops and state.last_g == (1.0, 1.0, 1.0, 1.0)  # the first check has nothing to compare
    # rates |G(t-1) - G(t)| / G(t-1): 0.1, 0.5, 1.0, 0.2; sorted 0.1, 0.2, 0.5, 1.0: median (0.2 + 0.5) / 2 = 0.35
    # the first unit at or above 0.35 is u1 -> u0 is frozen
    state, decision = policy.step(state, _obs(0.4, g=(0.9, 0.5, 2.0, 1.2)), cfg)
    assert [round(o["g"], 6) for o in decision.observed] == [0.1, 0.5, 1.0, 0.2]
    assert [d.unit for d in decision.drops] == ["u0"] and state.dropped == 1
    assert "below the 50th percentile 0.350" in decision.drops[0].reason
    # from the frontier on: rates 0.1 (0.5 -> 0.45), 0.5 (2 -> 1), 0.05 (1.2 -> 1.26): median 0.1, u1's own
    state, decision = policy.step(state, _obs(0.6, g=(None, 0.45, 1.0, 1.26)), cfg)
    assert not decision.drops and state.dropped == 1
    # rates 0.8 (0.45 -> 0.09), 0.9 (1 -> 0.1), 0.9 (1.26 -> 0.126): median 0.9, the first at it is u2
    state, decision = policy.step(state, _obs(0.8, g=(None, 0.09, 0.1, 0.126)), cfg)
    assert [d.unit for d in decision.drops] == ["u1"]
    assert percentile([1.0, 2.0, 3.0, 4.0], 25) == pytest.approx(1.75)  # rank 0.75: 1 + 0.75 * (2 - 1)


def test_the_fixed_schedule_drops_unit_i_at_its_share_of_training():
    cfg, policy = PolicyConfig(name="schedule"), get_policy("schedule")  # start 0.5, end 1.0
    # 3 droppable units: t_i = 0.5 + 0.5 (i + 1) / 3 = 0.6667, 0.8333, 1.0
    assert peer_times(4, cfg) == pytest.approx([2 / 3, 5 / 6, 1.0])
    state, decision = policy.step(initial_state(UNITS), _obs(0.6), cfg)
    assert not decision.drops
    state, decision = policy.step(state, _obs(0.7), cfg)
    assert [d.unit for d in decision.drops] == ["u0"] and "unit 1 of 3 at 67 % of training" in decision.drops[0].reason
    state, decision = policy.step(state, _obs(1.0, (None, 0.1, 0.1, 0.1)), cfg)
    assert [d.unit for d in decision.drops] == ["u1", "u2"] and state.dropped == 3


def test_freeze_first_k_drops_k_units_before_any_training():
    policy = get_policy("freeze-first-k")
    state, drops = policy.start(initial_state(UNITS), PolicyConfig(name="freeze-first-k", k=2))
    assert [d.unit for d in drops] == ["u0", "u1"] and state.dropped == 2 and state.check == 0
    assert drops[0].reason == "u0 dropped before training: freeze-first-k freezes the first 2 units (k = 2)"
    state, decision = policy.step(state, _obs(0.5, (None, None, 0.1, 0.1)), PolicyConfig(name="freeze-first-k", k=2))
    assert not decision.drops and state.dropped == 2
    assert policy.start(initial_state(UNITS), PolicyConfig(k=0))[0].dropped == 0
    probe, _ = policy.start(initial_state(UNITS), PolicyConfig(name="freeze-first-k", k=4))  # every unit
    assert probe.dropped == 4  # the linear probe: the head alone trains
    state, decision = policy.step(probe, _obs(0.5, (None,) * 4), PolicyConfig(name="freeze-first-k", k=4))
    assert state.dropped == 4 and not decision.drops
    with pytest.raises(ValueError, match="the network has 4 units"):
        policy.start(initial_state(UNITS), PolicyConfig(k=5))


def test_the_controller_sets_freezeouts_per_unit_learning_rates_reaching_zero_at_t_i():
    model = learndrop.create_model("tiny", num_classes=10, in_channels=3, image_size=32, width=0.5)
    optimizer = torch.optim.SGD(learndrop.param_groups(model), lr=0.1)
    cfg = PolicyConfig(name="freezeout")
    ld = learndrop.LearnDrop(model, optimizer, cfg, (3, 32, 32))
    times = freezeout_times(len(ld.names), cfg)  # 6 units: (0.8 + 0.2 i / 5) ** 3, i < 5
    lrs = lambda: {g["name"]: g["lr"] for g in optimizer.param_groups}
    ld.set_lr(0.1, 0.0)
    assert lrs()["features.0"] == pytest.approx(0.1 / 0.512) and lrs()[model.head_name] == 0.1
    assert lrs()["features.5"] == 0.1  # the last unit trains with the head
    ld.set_lr(0.1, times[1])
    assert lrs()["features.0"] == 0.0 and lrs()["features.1"] == 0.0 and lrs()["features.2"] > 0
    result = ld.check(progress=times[1])
    assert [d.unit for d in result.decision.drops] == ["features.0", "features.1"]
    assert "features.0" not in lrs()  # out of the optimizer

    baseline = learndrop.LearnDrop(model, torch.optim.SGD(learndrop.param_groups(model), lr=0.1), PolicyConfig(),
                                   (3, 32, 32))
    baseline.set_lr(0.05, 0.7)
    assert {g["lr"] for g in baseline.optimizer.param_groups} == {0.05}  # learndrop: every multiplier 1


def _run(policy):
    config = fast_config(policy=policy)
    setup = prepare(config)
    initial = {k: v.clone() for k, v in setup.model.state_dict().items()}
    at_drop, events = {}, []

    def sink(e):  # the sink sees unit_dropped after the drop itself: the weights as they were dropped
        events.append(e)
        if isinstance(e, ev.UnitDropped):
            at_drop[e.unit] = {k: v.clone() for k, v in setup.model.get_submodule(e.unit).state_dict().items()}

    train(config, [sink], setup=setup)
    drops = [e for e in events if isinstance(e, ev.UnitDropped)]
    assert [e.index for e in drops] == list(range(len(drops)))  # a prefix, in order
    for unit, weights in at_drop.items():
        final = setup.model.get_submodule(unit).state_dict()
        assert all(torch.equal(final[k], v) for k, v in weights.items()), unit
    return setup, initial, events, drops


@pytest.mark.parametrize("policy", [PolicyConfig(name="freezeout"), PolicyConfig(name="schedule"),
                                    PolicyConfig(tau=1.0, kappa=1e9, warmup=0, pace_start=0.5)])
def test_a_whole_run_under_a_timed_policy_drops_its_prefix_on_time(policy):
    _, _, events, drops = _run(policy)
    # 24 steps, checks every 4: progress 1/6 .. 1. FreezeOut's t_i (6 units): 0.512, 0.593, 0.681, 0.779, 0.885;
    # the schedule's: 0.6, 0.7, 0.8, 0.9, 1.0. Each drops at the first check at or after its t_i (a paced
    # Learn&Drop whose rule every unit meets, tau 1, paced from the schedule's start, on the schedule's).
    expected = {"freezeout": [4, 4, 5, 5, 6], "schedule": [4, 5, 5, 6, 6], "learndrop": [4, 5, 5, 6, 6]}[policy.name]
    assert [e.check for e in drops] == expected
    assert all(e.reason.startswith(f"{e.unit} dropped: ") for e in drops)
    assert any(isinstance(e, ev.CacheBuilt) for e in events)  # the shared mechanics: the prefix is cached


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_a_whole_autofreeze_run_freezes_up_to_the_first_unit_at_or_above_the_median():
    _, _, events, _ = _run(PolicyConfig(name="autofreeze"))
    dropped = 0
    for e in (e for e in events if isinstance(e, ev.UnitScores)):
        rates = [u["g"] for u in e.scores[dropped:]]
        now = sum(u["state"] == DROPPED for u in e.scores)
        if None not in rates:  # from the second check on
            cut = percentile(rates, 50)
            first = dropped + next(i for i, r in enumerate(rates) if r >= cut)
            assert now == max(dropped, min(first, len(e.scores) - 1)), e.check
        else:
            assert now == dropped
        dropped = now
    assert all(u["grad_norm"] is None or u["grad_norm"] > 0 for e in events if isinstance(e, ev.UnitScores)
               for u in e.scores)


def test_a_whole_freeze_first_k_run_drops_exactly_k_units_untrained():
    setup, initial, events, drops = _run(PolicyConfig(name="freeze-first-k", k=2))
    assert [(e.unit, e.check) for e in drops] == [("features.0", 0), ("features.1", 0)]
    state = setup.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in initial.items() if k.startswith(("features.0.", "features.1.")))
    assert not all(torch.equal(state[k], v) for k, v in initial.items() if k.startswith("features.2."))
    assert next(e.units for e in events if isinstance(e, ev.CacheBuilt)) == 2


def test_the_cli_sets_the_peers_settings_by_their_field_names_and_lists_every_policy():
    from learndrop.cli import build_parser
    from learndrop.cli.args import config_from_args

    parser = build_parser()
    args = parser.parse_args(["train", "--policy", "freezeout", "--freezeout-t0", "0.5", "--freezeout-scale", "linear",
                              "--no-freezeout-scale-lr", "--autofreeze-percentile", "75", "--schedule-start", "0.2",
                              "--schedule-end", "0.9", "--k", "3"])
    assert config_from_args(args).policy == PolicyConfig(name="freezeout", freezeout_t0=0.5, freezeout_scale="linear",
                                                         freezeout_scale_lr=False, autofreeze_percentile=75.0,
                                                         schedule_start=0.2, schedule_end=0.9, k=3)
    train_parser = next(a for a in parser._subparsers._group_actions[0].choices.values() if a.prog.endswith("train"))
    help_text = " ".join(train_parser.format_help().split())
    assert all(name in help_text for name in policy_names())


def test_a_peers_state_round_trips_through_a_checkpoint():
    cfg, policy = PolicyConfig(name="autofreeze"), get_policy("autofreeze")
    state, _ = policy.step(initial_state(UNITS), _obs(0.2, g=(1.0, 2.0, 3.0, 4.0)), cfg)
    assert type(state).from_dict(state.to_dict()) == state and state.last_g == (1.0, 2.0, 3.0, 4.0)


def test_freeze_first_k_resumes_with_the_same_optimizer_groups():
    cfg = PolicyConfig(name="freeze-first-k", k=2)

    def controller():
        model = learndrop.create_model("tiny", num_classes=10, in_channels=3, image_size=32, width=0.5)
        return learndrop.LearnDrop(model, torch.optim.SGD(learndrop.param_groups(model), lr=0.1, momentum=0.9), cfg,
                                   (3, 32, 32))

    first = controller()
    assert first.dropped == 2 and [g["name"] for g in first.optimizer.param_groups][:1] == ["features.2"]
    assert not any(p.requires_grad for p in first.model.unit(0).parameters())
    pending = first.check(progress=0.5).events  # the drops before training are reported at the first check
    assert [(e.unit, e.check) for e in pending if isinstance(e, ev.UnitDropped)] == [("features.0", 0),
                                                                                       ("features.1", 0)]
    second = controller()
    second.model.load_state_dict(first.model.state_dict())
    second.load_state_dict(first.state_dict())
    assert second.dropped == 2 and len(second.optimizer.param_groups) == len(first.optimizer.param_groups)
    assert not any(isinstance(e, ev.UnitDropped) for e in second.check(progress=0.6).events)
