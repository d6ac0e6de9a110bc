"""Scores on hand-made snapshots; the pure policy on hand-made histories."""

from __future__ import annotations

import math

import pytest
import torch

from learndrop.config import PolicyConfig
from learndrop.method.policy import CANDIDATE, DROPPED, FROZEN, TRAINING, initial_state, replay, step
from learndrop.method.scores import change_score, continuation_score, relative_changes, snapshot

UNITS = ["u0", "u1", "u2", "u3"]


def test_relative_change_on_hand_made_snapshots():
    prev = [torch.tensor([3.0, 4.0]), torch.tensor([1.0, 0.0, 0.0])]
    cur = [torch.tensor([3.0, 4.5]), torch.tensor([1.0, 0.0, 0.0])]
    # ||(0, 0.5)|| / ||(3, 4)|| = 0.5 / 5 = 0.1 ; no change -> 0
    assert relative_changes(prev, cur) == pytest.approx([0.1, 0.0])


def test_snapshot_copies_parameters_not_buffers(small_net):
    snaps = snapshot([small_net.unit(0)])
    # conv 3*4*9 + 4 bias, BN affine 4 + 4 (running mean/var are buffers, left out)
    assert snaps[0].numel() == 3 * 4 * 9 + 4 + 4 + 4
    with torch.no_grad():
        small_net.unit(0)[0].weight.add_(1.0)
    assert not torch.equal(snaps[0], snapshot([small_net.unit(0)])[0])  # a copy, not a view


def test_change_and_continuation_scores():
    assert change_score(0.02, 0.08) == pytest.approx(0.25)
    assert continuation_score([0.08], window=2) is None  # one check: nothing to compare with
    assert continuation_score([0.08, 0.04], window=2) == pytest.approx(0.5)  # window shortened to 1
    assert continuation_score([0.08, 0.04, 0.02], window=2) == pytest.approx(0.25)  # 0.02 / 0.08
    assert continuation_score([0.08, 0.0, 0.02], window=1) == math.inf


def run(rows, cfg, units=UNITS):
    return replay(units, rows, cfg)


def test_prefix_rule_drops_only_from_the_front():
    cfg = PolicyConfig(tau=0.5, kappa=1.0, warmup=1, patience=1, paced=False)
    rows = [[1.0, 1.0, 1.0, 1.0], [0.9, 0.1, 0.1, 0.1], [0.1, 0.05, 0.05, 0.05]]
    d = run(rows, cfg)
    # check 2: u1..u3 meet the rule but u0 (s=0.9) still trains -> candidates, nothing dropped; u3, the last
    # before the head, always trains: it is never a candidate waiting for nothing
    assert d[1].drops == ()
    assert [s.state for s in d[1].scores] == [TRAINING, CANDIDATE, CANDIDATE, TRAINING]
    # check 3: u0 meets it -> the frontier advances over u0, u1, u2; u3 (last before the head) stays
    assert [x.unit for x in d[2].drops] == ["u0", "u1", "u2"]
    assert [s.state for s in d[2].scores] == [DROPPED, DROPPED, DROPPED, TRAINING]
    assert "u0 dropped: change 0.10 of its peak" in d[2].drops[0].reason


def test_warmup_blocks_early_drops():
    rows = [[1.0, 1.0], [0.01, 0.01], [0.005, 0.005]]
    early = run(rows, PolicyConfig(tau=0.5, warmup=1, paced=False), ["a", "b"])
    assert [x.unit for x in early[1].drops] == ["a"]  # check 2 > warmup 1
    late = run(rows, PolicyConfig(tau=0.5, warmup=2, paced=False), ["a", "b"])
    assert late[1].drops == () and [x.unit for x in late[2].drops] == ["a"]


def test_patience_needs_consecutive_checks():
    cfg = PolicyConfig(tau=0.5, kappa=1.0, patience=2, paced=False)
    # check 2 meets the rule, check 3 bounces back above tau (streak resets), checks 4 and 5 meet it
    rows = [[1.0, 1.0], [0.2, 1.0], [0.9, 1.0], [0.2, 1.0], [0.1, 1.0]]
    d = run(rows, cfg, ["a", "b"])
    assert [bool(x.drops) for x in d] == [False, False, False, False, True]


def test_kappa_keeps_a_unit_that_learns_again():
    # at check 3 the change is low (0.3 of the peak) but it grew since the last check: c = 0.3 / 0.1 = 3
    rows = [[1.0, 1.0], [0.1, 1.0], [0.3, 1.0]]
    strict = run(rows, PolicyConfig(tau=0.5, kappa=1.0, warmup=2, window=1, paced=False), ["a", "b"])
    assert strict[2].drops == () and strict[2].scores[0].c == pytest.approx(3.0)
    assert strict[2].scores[0].state == TRAINING
    loose = run(rows, PolicyConfig(tau=0.5, kappa=4.0, warmup=2, window=1, paced=False), ["a", "b"])
    assert [x.unit for x in loose[2].drops] == ["a"]


def test_thresholds_changed_mid_run():
    state = initial_state(["a", "b", "c"])
    state, d1 = step(state, [1.0, 1.0, 1.0], PolicyConfig(tau=0.1, paced=False))
    state, d2 = step(state, [0.3, 0.3, 0.3], PolicyConfig(tau=0.1, paced=False))  # s = 0.3 > 0.1: nothing
    assert d2.drops == ()
    state, d3 = step(state, [0.3, 0.3, 0.3], PolicyConfig(tau=0.5, paced=False))  # the user raised tau
    assert [x.unit for x in d3.drops] == ["a", "b"] and state.dropped == 2


def test_none_policy_scores_but_never_drops():
    state = initial_state(["a", "b"])
    for row in ([1.0, 1.0], [0.01, 0.01], [0.001, 0.001]):
        state, decision = step(state, row, PolicyConfig(tau=0.5, paced=False), allow_drop=False)
    assert state.dropped == 0 and decision.scores[0].state == CANDIDATE


def test_freeze_candidates_behind_the_frontier():
    cfg = PolicyConfig(tau=0.5, freeze_candidates=True, paced=False)
    rows = [[1.0, 1.0, 1.0, 1.0], [0.9, 0.1, 0.9, 0.9], [0.1, None, 0.9, 0.9]]
    d = run(rows, cfg)
    assert d[1].frozen == ("u1",) and d[1].scores[1].state == FROZEN
    # the frontier reaches u0 and then the frozen u1: both drop
    assert [x.unit for x in d[2].drops] == ["u0", "u1"]


def test_replay_is_the_live_decision():
    cfg = PolicyConfig(tau=0.3, paced=False)
    rows = [[1.0, 1.0, 1.0], [0.5, 0.6, 0.7], [0.2, 0.6, 0.7], [None, 0.2, 0.1]]
    state, live = initial_state(["a", "b", "c"]), []
    for row in rows:
        state, decision = step(state, row, cfg)
        live.append(decision)
    assert replay(["a", "b", "c"], rows, cfg) == live


def test_inherited_peaks_measure_a_fine_tuned_unit_against_how_fast_it_once_learned():
    cfg = PolicyConfig(tau=0.4, warmup=1, paced=False)
    rows = [[0.10, 0.10, 0.10], [0.06, 0.06, 0.06], [0.05, 0.05, 0.05]]
    own = replay(["a", "b", "c"], rows, cfg)
    assert not any(d.drops for d in own)  # against its own peak (0.10), 0.06 is s = 0.6
    inherited = replay(["a", "b", "c"], rows, cfg, inherited=[0.5, 0.5, 0.08])
    assert inherited[0].scores[0].s == pytest.approx(0.2)  # 0.10 / 0.5
    assert inherited[0].drops == ()  # still no drop during warm-up
    assert [x.unit for x in inherited[1].drops] == ["a", "b"]  # s = 0.06 / 0.5 = 0.12; c is the last unit
    assert inherited[1].scores[2].s == pytest.approx(0.6)  # own peak 0.10 > reference 0.08 wins
    with pytest.raises(ValueError):
        initial_state(["a", "b"], inherited=[1.0])


def test_a_change_score_against_the_network_needs_no_history_of_the_unit():
    """peak="network": s is d over the largest d of any unit still training at this check: a downloaded network's
    front barely moves next to its deep units from the first check on (here at check 2, c ignored)."""
    cfg = PolicyConfig(peak="network", tau=0.3, kappa=1e9, warmup=1, paced=False)
    rows = [[0.02, 0.1, 0.5, 1.0], [0.01, 0.05, 0.4, 0.5]]  # at check 2, s = 0.02, 0.1, 0.8, 1.0 (0.5 the largest)
    decisions = run(rows, cfg)
    assert [round(s.s, 3) for s in decisions[1].scores] == [0.02, 0.1, 0.8, 1.0]
    assert [x.unit for x in decisions[1].drops] == ["u0", "u1"]
    # against its own peak: 0.5, 0.5, 0.8, 0.5
    own = run(rows, PolicyConfig(tau=0.3, kappa=1e9, warmup=1, paced=False))
    assert own[1].drops == ()
