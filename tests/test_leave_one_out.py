"""Leave one pair out: a setting is chosen on the other pairs' validation margins and judged on the held-out
pair's test margin, for Learn&Drop and each peer alike; worst case and mean. Hand-made runs, hand arithmetic."""

from __future__ import annotations

import pytest

from learndrop.bench import report
from learndrop.report.leave_one_out import leave_one_out, to_markdown


def run(policy, variant, epochs, flops, val, test, seconds=None):
    return {"policy": policy, "variant": variant, "epochs": epochs, "seed": 0, "train_flops": flops,
            "train_time_s": flops if seconds is None else seconds, "val_acc": val, "test_acc": test}


def pair(label, eager_val, eager_test, careful_val, careful_test):
    """A frontier of 0.60 at 50 FLOPs and 0.80 at 100 (validation and test alike), and two Learn&Drop settings
    at 75 FLOPs, where the line is at 0.70: 'eager' and 'careful' land where they are told."""
    base = [run("none", "default", 2, 50, 0.60, 0.60), run("none", "default", 4, 100, 0.80, 0.80)]
    return {"label": label, "runs": [*base, run("learndrop", "eager", 4, 75, eager_val, eager_test),
                                     run("learndrop", "careful", 4, 75, careful_val, careful_test),
                                     run("schedule", "default", 4, 75, 0.69, 0.69)]}


PAIRS = [pair("A", 0.76, 0.76, 0.72, 0.72),  # eager +6 on A's validation, careful +2
         pair("B", 0.76, 0.60, 0.72, 0.72),  # eager looks good on B's validation but fails its test (-10)
         pair("C", 0.64, 0.64, 0.72, 0.73)]  # on C eager is -6, careful +2 (+3 on test)


def test_each_pair_is_judged_with_the_setting_the_other_pairs_chose():
    learndrop, schedule = leave_one_out(PAIRS)
    chosen = [(h.pair, h.variant) for h in learndrop.held_out]
    # held out A: on B and C eager averages (6 - 6) / 2 = 0, careful (2 + 2) / 2 = 2 -> careful
    # held out B: on A and C eager (6 - 6) / 2 = 0, careful 2 -> careful; held out C: on A and B eager 6 -> eager
    assert chosen == [("A", "careful"), ("B", "careful"), ("C", "eager")]
    assert [h.flops for h in learndrop.held_out] == pytest.approx([2.0, 2.0, -6.0])  # C's test: 0.64 - 0.70
    assert learndrop.worst == pytest.approx(-6.0) and learndrop.mean == pytest.approx(-2 / 3)
    assert [h.chosen_on for h in learndrop.held_out] == pytest.approx([2.0, 2.0, 6.0])
    assert schedule.policy == "schedule" and schedule.worst == pytest.approx(-1.0)  # one setting: no choice


def test_the_report_has_a_held_out_table_when_it_has_pairs_enough():
    header = {"command": "x", "started": "now", "machine": {"processor": "p", "cpus": 2, "torch": "t", "cuda": None}}
    md = report.to_markdown({"header": header, "pairs": [{**p, "scenario": "scratch"} for p in PAIRS]},
                            [{}] * 3, header)
    assert "## Leave one pair out" in md
    assert "| learndrop | +2.00 (seconds: +2.00) `careful` | +2.00 (seconds: +2.00) `careful` | " \
           "-6.00 (seconds: -6.00) `eager` | -6.00 | -0.67 |" in md
    assert to_markdown(leave_one_out(PAIRS[:1]))[0].startswith("(leave-one-out: needs at least two pairs")


def test_reports_of_one_seed_each_combine_into_one_pair_per_label():
    seed0 = {"pairs": PAIRS}
    seed1 = {"pairs": [{**p, "runs": [{**r, "seed": 1} for r in p["runs"]]} for p in reversed(PAIRS)]}
    merged = report.merged_pairs([seed0, seed1])
    assert [p["label"] for p in merged] == ["A", "B", "C"]
    assert [sorted({r["seed"] for r in p["runs"]}) for p in merged] == [[0, 1]] * 3
    assert [len(p["runs"]) for p in merged] == [2 * len(p["runs"]) for p in PAIRS]
    assert [h.variant for h in leave_one_out(merged)[0].held_out] == ["careful", "careful", "eager"]
