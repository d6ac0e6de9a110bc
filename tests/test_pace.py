"""A paced Learn&Drop (the default): the rule decides whether a unit has stopped learning, a linear pace
bounds how soon in training it may drop; in the training loop, in anyone's loop, in the explorer's replay,
the CLI, and in recordings made before it was the default."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import learndrop
from learndrop.config import PolicyConfig
from learndrop.method.pace import due, pace_times, peer_times, schedule_times
from learndrop.method.policy import initial_state, replay, step

UNITS = ("u0", "u1", "u2", "u3")
SAME = (0.1, 0.1, 0.1, 0.1)  # s = 1 at every check: with tau 1 every unit meets the rule from check 2 on
EVERY_UNIT = PolicyConfig(tau=1.0, kappa=1e9, warmup=0, paced=False)
# 3 droppable units: t_i = 0.2 + 0.8 (i + 1) / 3 = 0.4667, 0.7333, 1.0
PACED = dataclasses.replace(EVERY_UNIT, paced=True, pace_start=0.2)


def test_the_pace_is_a_linear_schedule_to_the_end_and_the_last_unit_is_never_due():
    times = pace_times(4, PACED)
    assert times == pytest.approx([0.2 + 0.8 / 3, 0.2 + 1.6 / 3, 1.0]) == schedule_times(4, 0.2, 1.0)
    assert not due(0, times, 0.46) and due(0, times, 0.47)
    assert due(2, times, 1.0) and not due(3, times, 1.0)
    # the schedule peer keeps its own times: the pace's start is not the schedule's
    assert peer_times(4, PACED) == pytest.approx(schedule_times(4, 0.5, 1.0))


def test_the_default_rule_is_paced_from_a_quarter_of_training():
    default = PolicyConfig()
    assert default.paced and default.pace_start == 0.25 and default.schedule_start == 0.5
    cfg = dataclasses.replace(default, tau=1.0, kappa=1e9, warmup=0)  # every unit meets the rule
    state, _ = step(initial_state(UNITS), SAME, cfg, progress=0.1)
    _, decision = step(state, SAME, cfg, progress=0.49)
    assert not decision.drops  # u0's time: 0.25 + 0.75 / 3 = 0.5
    _, decision = step(state, SAME, cfg, progress=0.5)
    assert [d.unit for d in decision.drops] == ["u0"]


def test_a_recorded_policy_that_predates_the_pace_reads_as_unpaced():
    before = {"name": "learndrop", "tau": 0.4, "schedule_start": 0.5}  # recorded before ``paced`` existed
    assert not PolicyConfig.from_record(before).paced
    # paced before ``pace_start`` existed: the pace started at schedule_start
    old_paced = PolicyConfig.from_record({**before, "paced": True, "schedule_start": 0.3})
    assert old_paced.paced and old_paced.pace_start == 0.3
    now = dataclasses.asdict(PolicyConfig(pace_start=0.4))
    assert PolicyConfig.from_record(now) == PolicyConfig(pace_start=0.4)  # today's records read as written
    config = learndrop.RunConfig.from_dict({"policy": before})
    assert config.policy == PolicyConfig(paced=False)


def test_a_paced_unit_that_meets_the_rule_waits_for_its_time_on_the_schedule():
    unpaced, _ = step(initial_state(UNITS), SAME, EVERY_UNIT, progress=0.1)
    unpaced, decision = step(unpaced, SAME, EVERY_UNIT, progress=0.3)
    assert [d.unit for d in decision.drops] == ["u0", "u1", "u2"]  # the rule alone: all at once
    state, _ = step(initial_state(UNITS), SAME, PACED, progress=0.1)
    state, decision = step(state, SAME, PACED, progress=0.3)
    assert not decision.drops and [s.state for s in decision.scores][:3] == ["candidate"] * 3
    state, decision = step(state, SAME, PACED, progress=0.5)
    assert [d.unit for d in decision.drops] == ["u0"]
    assert "paced: the pace allowed it from 47 % of training" in decision.drops[0].reason
    state, decision = step(state, (None, 0.1, 0.1, 0.1), PACED, progress=1.0)
    assert [d.unit for d in decision.drops] == ["u1", "u2"] and state.dropped == 3


def test_a_due_unit_still_learning_keeps_training():
    cfg = dataclasses.replace(PACED, tau=0.5)
    state, _ = step(initial_state(UNITS), SAME, cfg, progress=0.1)
    state, decision = step(state, (0.2, 0.2, 0.2, 0.2), cfg, progress=0.9)  # s = 1 > tau: still learning
    assert not decision.drops


def test_the_replay_paces_by_the_share_of_training_at_each_check():
    rows = [SAME] * 4
    evenly = replay(UNITS, rows, PACED)  # checks at 25, 50, 75 and 100 % of training
    assert [[d.unit for d in decision.drops] for decision in evenly] == [[], ["u0"], ["u1"], ["u2"]]
    early = replay(UNITS, rows, PACED, progress=[0.1, 0.2, 0.3, 0.5])
    assert [[d.unit for d in decision.drops] for decision in early] == [[], [], [], ["u0"]]


def test_a_paced_learndrop_in_anyones_loop_asks_for_total_steps_in_one_line():
    model = learndrop.create_model("tiny", 10, 3, 32, width=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    default = learndrop.LearnDrop(model, optimizer, input_shape=(3, 32, 32))  # the default rule is paced
    with pytest.raises(learndrop.LearnDropError, match="the paced rule acts on the share of training done"):
        default.check()
    told = learndrop.LearnDrop(model, optimizer, input_shape=(3, 32, 32), total_steps=100)
    assert told.check().decision.check == 1
    unpaced = learndrop.LearnDrop(model, optimizer, EVERY_UNIT, input_shape=(3, 32, 32))
    assert unpaced.check().decision.check == 1  # no pace, no need to know how far training is


def test_the_cli_and_the_bench_variants_set_the_pace_or_turn_it_off():
    from learndrop.bench.frontier import parse_variants
    from learndrop.cli import build_parser
    from learndrop.cli.args import config_from_args

    args = build_parser().parse_args(["train", "--pace-start", "0.4"])
    policy = config_from_args(args).policy
    assert policy.paced and policy.pace_start == 0.4 and policy.schedule_start == 0.5
    assert config_from_args(build_parser().parse_args(["train"])).policy.paced
    assert not config_from_args(build_parser().parse_args(["train", "--no-paced"])).policy.paced
    assert parse_variants("paced=false") == [{"paced": False}]
    assert parse_variants("pace_start=0.5") == [{"pace_start": 0.5}]
