"""A paced Learn&Drop: the rule decides whether a unit has stopped learning, the linear schedule bounds how
soon in training it may drop; in the training loop, in anyone's loop, in the explorer's replay and the CLI."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import learndrop
from learndrop.config import PolicyConfig
from learndrop.method.pace import due, schedule_times
from learndrop.method.policy import initial_state, replay, step

UNITS = ("u0", "u1", "u2", "u3")
SAME = (0.1, 0.1, 0.1, 0.1)  # s = 1 at every check: with tau 1 every unit meets the rule from check 2 on
EVERY_UNIT = PolicyConfig(tau=1.0, kappa=1e9, warmup=0)
# 3 droppable units: t_i = 0.2 + 0.8 (i + 1) / 3 = 0.4667, 0.7333, 1.0
PACED = dataclasses.replace(EVERY_UNIT, paced=True, schedule_start=0.2)


def test_the_pace_is_the_schedules_times_and_the_last_unit_is_never_due():
    assert schedule_times(4, PACED) == pytest.approx([0.2 + 0.8 / 3, 0.2 + 1.6 / 3, 1.0])
    assert not due(0, 4, PACED, 0.46) and due(0, 4, PACED, 0.47)
    assert due(2, 4, PACED, 1.0) and not due(3, 4, PACED, 1.0)


def test_a_paced_unit_that_meets_the_rule_waits_for_its_time_on_the_schedule():
    unpaced, _ = step(initial_state(UNITS), SAME, EVERY_UNIT, progress=0.1)
    unpaced, decision = step(unpaced, SAME, EVERY_UNIT, progress=0.3)
    assert [d.unit for d in decision.drops] == ["u0", "u1", "u2"]  # the rule alone: all at once
    state, _ = step(initial_state(UNITS), SAME, PACED, progress=0.1)
    state, decision = step(state, SAME, PACED, progress=0.3)
    assert not decision.drops and [s.state for s in decision.scores][:3] == ["candidate"] * 3
    state, decision = step(state, SAME, PACED, progress=0.5)
    assert [d.unit for d in decision.drops] == ["u0"]
    assert "paced: the schedule allowed it from 47 % of training" in decision.drops[0].reason
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
    ld = learndrop.LearnDrop(model, optimizer, PACED, input_shape=(3, 32, 32))
    with pytest.raises(learndrop.LearnDropError, match="total_steps"):
        ld.check()
    unpaced = learndrop.LearnDrop(model, optimizer, EVERY_UNIT, input_shape=(3, 32, 32))
    assert unpaced.check().decision.check == 1  # no pace, no need to know how far training is


def test_the_cli_and_the_bench_variants_turn_the_pace_on():
    from learndrop.bench.frontier import parse_variants
    from learndrop.cli import build_parser
    from learndrop.cli.args import config_from_args

    args = build_parser().parse_args(["train", "--paced", "--schedule-start", "0.25"])
    policy = config_from_args(args).policy
    assert policy.paced and policy.schedule_start == 0.25 and policy.name == "learndrop"
    assert not config_from_args(build_parser().parse_args(["train"])).policy.paced
    assert parse_variants("paced=true,schedule_start=0.25") == [{"paced": True, "schedule_start": 0.25}]
