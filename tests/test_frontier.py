"""The budget frontier: its arithmetic by hand, the pick on validation, a tiny ``bench --frontier`` end to end,
the chart builder and the Compare page's chart."""

from __future__ import annotations

import json

import pytest
from fake_run import write_fake_run
from helpers import ROOT
from streamlit.testing.v1 import AppTest

from learndrop.bench import frontier as runner
from learndrop.bench import report
from learndrop.bench.pairs import Pair
from learndrop.cli import main
from learndrop.config import PolicyConfig, RunConfig
from learndrop.errors import LearnDropError
from learndrop.method.registry import policy_names
from learndrop.report.compare import same_setup
from learndrop.report.frontier import (
    FLOPS,
    INSIDE,
    LEFT,
    RIGHT,
    budgets,
    frontier,
    frontier_at,
    groups,
    margin,
    pick_on_validation,
    time_efficiency,
)
from learndrop.report.plots import frontier_chart


def base(epochs, t, acc, seed=0, val=None):
    return {"policy": "none", "variant": "default", "epochs": epochs, "seed": seed, "train_time_s": t,
            "test_acc": acc, "val_acc": val, "run_id": f"b{epochs}-{seed}"}


# two seeds at 2 epochs (means 11 s, 0.65), one at 4 (20 s, 0.80), one at 6 that scored lower (30 s, 0.75)
BASELINE = [base(2, 10.0, 0.60), base(2, 12.0, 0.70, seed=1), base(4, 20.0, 0.80), base(6, 30.0, 0.75)]


def test_budgets_are_fractions_of_the_epochs_rounded_at_least_one_without_duplicates():
    assert budgets(12) == [3, 4, 6, 8, 12]
    assert budgets(6) == [2, 3, 4, 6]  # 1.5 rounds up to 2, the same as 6/3
    assert budgets(4) == [1, 2, 3, 4]  # 4/3 -> 1 like 4/4; 8/3 -> 3
    assert budgets(2) == [1, 2] and budgets(1) == [1]


def test_the_frontier_is_the_mean_per_budget_made_monotone():
    front = frontier(BASELINE)
    assert [(b.epochs, b.seeds) for b in front.budgets] == [(2, 2), (4, 1), (6, 1)]
    assert front.budgets[0].cost == pytest.approx(11.0) and front.budgets[0].acc == pytest.approx(0.65)
    assert front.budgets[2].acc == pytest.approx(0.75)  # the budget keeps its own mean ...
    assert [x for point in front.line for x in point] == pytest.approx([11.0, 0.65, 20.0, 0.80, 30.0, 0.80])
    # ... the line does not fall
    assert not frontier([]) and not frontier([base(2, None, 0.5)])


def test_margins_interpolate_and_flag_points_outside_the_time_range():
    front = frontier(BASELINE)
    inside = margin(front, 15.5, 0.75)  # halfway from (11, 0.65) to (20, 0.80): 0.725
    assert inside.where == INSIDE and inside.reference == pytest.approx(0.725)
    assert inside.points == pytest.approx(2.5) and inside.text() == "+2.50 pts"
    flat = margin(front, 25.0, 0.77)  # where the longer budget scored lower, the line stays at 0.80
    assert flat.points == pytest.approx(-3.0) and flat.where == INSIDE
    left = margin(front, 5.0, 0.70)  # faster than the shortest budget: compared with it
    assert (left.where, left.reference) == (LEFT, pytest.approx(0.65)) and left.points == pytest.approx(5.0)
    assert "shortest budget" in left.text()
    right = margin(front, 40.0, 0.78)  # slower than the full budget: compared with it
    assert (right.where, right.reference) == (RIGHT, pytest.approx(0.80)) and right.points == pytest.approx(-2.0)
    assert "full budget" in right.text()
    assert frontier_at(front, 20.0) == (pytest.approx(0.80), INSIDE)
    single = frontier([base(4, 20.0, 0.8)])
    assert frontier_at(single, 20.0)[1] == INSIDE and frontier_at(single, 19.0)[1] == LEFT


def test_the_variant_is_picked_by_its_validation_margin_and_on_test_only_without_a_validation_split():
    def run(policy, variant, test, val, seed=0, t=10.0):
        return {"policy": policy, "variant": variant, "epochs": 6, "seed": seed, "train_time_s": t,
                "test_acc": test, "val_acc": val}

    # the validation frontier: 0.65 at 11 s (two seeds), 0.79 at 20 s (and 0.76 at 30 s, made monotone)
    baseline = [base(2, 10.0, 0.60, val=0.61), base(2, 12.0, 0.70, seed=1, val=0.69), base(4, 20.0, 0.80, val=0.79),
                base(6, 30.0, 0.75, val=0.76)]
    runs = [*baseline,
            run("learndrop", "default", 0.90, 0.70), run("learndrop", "default", 0.90, 0.72, seed=1),
            run("learndrop", "tau=0.3", 0.60, 0.80), run("learndrop", "tau=0.3", 0.62, 0.80, seed=1),
            run("learndrop", "slow", 0.95, 0.82, t=30.0),  # the best validation accuracy, but late: +3 points only
            run("freezeout", "default", 0.70, None), run("freezeout", "t0=0.5", 0.75, None)]
    picks = pick_on_validation(runs)
    assert set(picks) == {"learndrop", "freezeout"}  # the baseline is not chosen among
    assert (picks["learndrop"].variant, picks["learndrop"].on, picks["learndrop"].fallback) == ("tau=0.3", "val_acc",
                                                                                                  False)
    assert picks["learndrop"].score == pytest.approx(15.0)  # 0.80 against the 0.65 of the fastest budget
    assert (picks["freezeout"].variant, picks["freezeout"].on, picks["freezeout"].fallback) == ("t0=0.5", "test_acc",
                                                                                                  True)
    no_val = pick_on_validation([*BASELINE, run("learndrop", "a", 0.7, 0.9), run("learndrop", "b", 0.8, 0.1)])
    assert no_val["learndrop"].variant == "b" and no_val["learndrop"].fallback  # the baseline has no validation


def test_variants_and_seeds_are_parsed_as_policy_settings():
    assert runner.parse_variants("tau=0.3,warmup=3; tau=0.5") == [{"tau": 0.3, "warmup": 3}, {"tau": 0.5}]
    assert runner.parse_variants("freeze_candidates=true") == [{"freeze_candidates": True}]
    assert runner.parse_variants("") == [] and runner.parse_seeds("0,1") == [0, 1]
    for bad in ("speed=3", "tau", "warmup=1.5", "name=none"):
        with pytest.raises(LearnDropError, match="--variants"):
            runner.parse_variants(bad)
    with pytest.raises(LearnDropError, match="--seeds"):
        runner.parse_seeds("0,0")


TINY = Pair("tiny / shapes", {"model": "tiny", "width": 0.5, "dataset": "shapes", "subset": 256, "epochs": 2,
                              "batch_size": 64, "lr": 0.05, "augment": False, "checks_per_epoch": 2, "device": "cpu"})


def test_the_plan_covers_every_budget_variant_peer_and_seed(monkeypatch):
    from learndrop.method import registry

    class PeerX(registry.BasePolicy):  # a peer registered by a user: the frontier runs whatever is registered
        name = "peer_x"

    monkeypatch.setattr(registry, "_POLICIES", dict(registry._POLICIES))
    registry.register_policy(PeerX)
    planned = runner.plan(Pair("t", {**TINY.config, "epochs": 6}), "data", PolicyConfig(),
                          [{"tau": 0.3}, {"tau": 0.4}], [0, 1])
    for seed in (0, 1):
        mine = [(v, c.policy.name, c.epochs) for v, c in planned if c.seed == seed]
        assert sorted(e for _, p, e in mine if p == "none") == [2, 3, 4, 6]  # each its own run, its own schedule
        assert ("default", "learndrop", 6) in mine and ("tau=0.3", "learndrop", 6) in mine
        assert ("default", "peer_x", 6) in mine
        assert len([m for m in mine if m[1] == "learndrop"]) == 2  # tau=0.4 is the default: once
        assert {p for _, p, _ in mine} == {*policy_names(), "peer_x"} - {"freeze-first-k"}  # partial fine-tuning: not from scratch
    # the machine's speed drifts during a measurement: the budgets are spread among the other runs, not run first,
    # and the second seed runs in the reverse order, so a slow spell does not fall on the frontier alone
    seed0 = [(v, c.policy.name, c.epochs) for v, c in planned if c.seed == 0]
    at = [i for i, (_, p, _) in enumerate(seed0) if p == "none"]
    assert at[0] == 0 and all(b - a > 1 for a, b in zip(at, at[1:])) and at[-1] >= len(seed0) // 2
    assert [(v, c.policy.name, c.epochs) for v, c in planned if c.seed == 1] == seed0[::-1]


def test_interleave_spreads_one_list_evenly_among_another():
    assert runner.interleave(["b1", "b2"], ["p1", "p2", "p3", "p4"]) == ["b1", "p1", "p2", "b2", "p3", "p4"]
    assert runner.interleave([1, 2, 3], ["x"]) == [1, 2, "x", 3]  # each list in its order, none lost
    assert runner.interleave([], ["x", "y"]) == ["x", "y"] and runner.interleave([1], []) == [1]


@pytest.mark.slow  # over 5 s: a whole frontier of runs in-process
def test_a_tiny_frontier_from_the_cli(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "policy_names", lambda: ("learndrop", "none"))  # the peers' own tests train them
    results, runs = tmp_path / "results", tmp_path / "runs"
    pair = Pair(TINY.label, {**TINY.config, "epochs": 4})  # --epochs 2 overrides it
    monkeypatch.setitem(runner.SCENARIOS, "scratch", {"full": [pair], "quick": [pair, Pair("other", TINY.config)]})
    code = main(["bench", "--frontier", "--quick", "--only", "tiny", "--epochs", "2", "--variants", "tau=0.9",
                 "--seeds", "0", "--kappa", "10", "--results-dir", str(results), "--runs-dir", str(runs)])
    assert code == 0
    (json_file,) = results.glob("frontier-*.json")
    report = json.loads(json_file.read_text())
    assert set(report) == {"header", "pairs"}
    (pair,) = report["pairs"]
    assert set(pair) == {"label", "scenario", "runs"} and pair["scenario"] == "scratch"
    assert pair["label"] == f"{TINY.label} [epochs=2]"  # the label says what the options given changed
    keys = {"policy", "variant", "epochs", "seed", "train_time_s", "train_flops", "val_acc", "test_acc", "run_id"}
    assert all(set(r) == keys for r in pair["runs"])
    summaries = {r["run_id"]: json.loads((runs / r["run_id"] / "summary.json").read_text()) for r in pair["runs"]}
    assert all(r["train_flops"] == summaries[r["run_id"]]["fwd_flops"] + summaries[r["run_id"]]["bwd_flops"] > 0
               for r in pair["runs"])
    got = [(r["policy"], r["variant"], r["epochs"], r["seed"]) for r in pair["runs"]]
    assert got == [("none", "default", 1, 0), ("learndrop", "kappa=10", 2, 0), ("none", "default", 2, 0),
                   ("learndrop", "tau=0.9,kappa=10", 2, 0)]  # in the order trained: budgets among the others
    for r in pair["runs"]:
        assert 0 <= r["test_acc"] <= 1 and r["train_time_s"] > 0 and r["val_acc"] is None
        assert (runs / r["run_id"] / "config.json").exists()
        assert json.loads((runs / r["run_id"] / "config.json").read_text())["epochs"] == r["epochs"]
    md = json_file.with_suffix(".md").read_text()
    assert ("| policy | variant | epochs | seeds | mean training time s | mean training TFLOPs | mean test acc % | "
            "margin on FLOPs | margin on seconds | time efficiency |") in md
    assert "| none | default | 1 | 1 |" in md and "| learndrop | tau=0.9,kappa=10 | 2 | 1 |" in md
    assert " pts" in md and "no validation split" in md
    pngs = sorted(p.name for p in results.glob("frontier-*.png"))
    assert pngs in ([], [f"{json_file.stem}-1-flops.png", f"{json_file.stem}-1.png"])  # kaleido: both axes, or none
    assert all(f"]({name})" in md for name in pngs) and (pngs or "no figure" in md)


@pytest.mark.slow  # over 5 s: a whole frontier of runs in-process
def test_a_fine_tuning_frontier_pre_trains_once_and_every_run_starts_from_it(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "policy_names", lambda: ("learndrop", "none"))
    pair = Pair("tiny / shapes 0-1 -> 2-3", {**TINY.config, "classes": (2, 3), "subset": 512, "batch_size": 32},
                pretrain={"classes": (0, 1), "epochs": 1})
    result = runner.run_frontier("custom", pairs=[pair], variants=[], seeds=[0], out_dir=tmp_path / "results",
                                 runs_dir=tmp_path / "runs", log=lambda _: None)
    (got,) = result["pairs"]
    assert got["scenario"] == "finetune"  # what it does (it pre-trains, then fine-tunes), not "custom"
    assert [(r["policy"], r["epochs"]) for r in got["runs"]] == [("none", 1), ("none", 2), ("learndrop", 2)]
    starts = {json.loads((tmp_path / "runs" / r["run_id"] / "config.json").read_text())["init_from"]
              for r in got["runs"]}
    assert len(starts) == 1 and None not in starts  # one pre-training, shared
    assert len(list((tmp_path / "runs").iterdir())) == 4
    assert runner.scenario_of(Pair("x", {"init_from": "r"}), "custom") == "finetune"
    assert runner.scenario_of(Pair("x", {"stream": 3}), "custom") == "stream"
    assert runner.scenario_of(pair, "finetune") == "finetune"


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0,1"], "apply to bench --frontier only"),
    (["--frontier", "--repeats", "2"], "--repeats does not apply"),
    (["--frontier", "--seed", "1", "--seeds", "0,1"], "give one of them"),
    (["--frontier", "--variants", "speed=2"], "is not a policy setting"),
    (["--frontier", "--quick", "--epochs", "0"], "epochs must be"),
])
def test_bad_frontier_options_are_one_line(args, message, tmp_path, capsys):
    code = main(["bench", *args, "--runs-dir", str(tmp_path / "r"), "--results-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not any(tmp_path.iterdir())


def test_the_chart_draws_the_frontier_as_a_line_and_labels_each_point_with_its_margin():
    fig = frontier_chart(BASELINE, [{"name": "learndrop", "train_time_s": 15.5, "test_acc": 0.75},
                                    {"name": "fast", "train_time_s": 5.0, "test_acc": 0.70}])
    line, points = fig.data
    assert "lines" in line.mode and list(line.x) == [11.0, 20.0, 30.0]
    assert list(line.y) == pytest.approx([65.0, 80.0, 80.0])
    assert "markers" in points.mode and list(points.text) == ["+2.50", "+5.00*"]  # * outside the range
    assert "learndrop" in points.customdata[0][0]
    named = frontier_chart(BASELINE, [{"name": "ld", "train_time_s": 15.5, "test_acc": 0.75}], named=True)
    assert named.data[1].name == "ld: +2.50 pts"  # a PNG has no hover: each point named in the legend
    empty = frontier_chart([], [{"name": "x", "train_time_s": 1.0, "test_acc": 0.5}])
    assert not empty.data and "baseline" in empty.layout.annotations[0].text


def test_a_figures_points_share_a_symbol_per_policy_and_no_two_look_alike():
    others = [{"name": f"{policy} {i}", "policy": policy, "train_time_s": 10.0 + i, "test_acc": 0.7}
              for policy, n in (("learndrop", 5), ("freeze-first-k", 8), ("freezeout", 1)) for i in range(n)]
    markers = [(t.marker.symbol, t.marker.color, t.name.split()[0]) for t in frontier_chart(BASELINE, others,
                                                                                            named=True).data[1:]]
    assert len({(symbol, color) for symbol, color, _ in markers}) == len(others)  # 14 points, 14 looks
    by_policy = {}
    for symbol, _, policy in markers:
        by_policy.setdefault(policy, set()).add(symbol)
    assert all(len(symbols) == 1 for symbols in by_policy.values()) and len(set.union(*by_policy.values())) == 3


def test_the_dashboards_chart_has_a_trace_per_policy_and_labels_only_what_fits():
    few = frontier_chart(BASELINE, [{"name": "a", "policy": "learndrop", "train_time_s": 15.5, "test_acc": 0.75},
                                    {"name": "b", "policy": "schedule", "train_time_s": 25.0, "test_acc": 0.70}])
    assert [t.name for t in few.data[1:]] == ["learndrop", "schedule"]
    assert [list(t.text) for t in few.data[1:]] == [["+2.50"], ["-10.00"]] and "text" in few.data[1].mode
    many = frontier_chart(BASELINE, [{"name": str(i), "policy": "learndrop" if i % 2 else "freezeout",
                                      "train_time_s": 12.0 + i, "test_acc": 0.7} for i in range(13)])
    assert sum(len(t.x) for t in many.data[1:]) == 13 and all(t.mode == "markers" for t in many.data[1:])
    assert all("%{customdata[1]}" in t.hovertemplate for t in many.data[1:])  # the margin on hover


def test_the_report_lists_the_frontier_first_then_each_policy_with_its_default_first():
    def run(policy, variant, epochs=6, seed=0):
        return {"policy": policy, "variant": variant, "epochs": epochs, "seed": seed, "train_time_s": 10.0,
                "test_acc": 0.7, "val_acc": None}

    interleaved = [base(2, 10.0, 0.6), run("learndrop", "tau=0.3"), run("freeze-first-k", "k=2"), base(4, 20.0, 0.8),
                   run("learndrop", "default"), run("freeze-first-k", "default"), base(6, 30.0, 0.75),
                   base(6, 29.0, 0.76, seed=1), run("learndrop", "default", seed=1), base(2, 11.0, 0.6, seed=1)]
    rows = [(r[0], r[1], r[2], r[3]) for r in report.pair_rows(interleaved)]
    assert rows == [("none", "default", "2", "2"), ("none", "default", "4", "1"), ("none", "default", "6", "2"),
                    ("learndrop", "default", "6", "2"), ("learndrop", "tau=0.3", "6", "1"),
                    ("freeze-first-k", "default", "6", "1"), ("freeze-first-k", "k=2", "6", "1")]


def test_runs_of_one_set_up_may_differ_in_epochs_policy_and_seed():
    a = {"model": "vgg11", "width": 0.25, "dataset": "shapes", "subset": None, "classes": [0, 1], "augment": True,
         "lr": 0.05, "lr_schedule": "wsd", "batch_size": 128, "epochs": 8, "seed": 0, "policy": {"name": "none"}}
    configs = {"a": a, "b": {**a, "epochs": 2, "seed": 1, "policy": {"name": "learndrop"}},
               "c": {**a, "lr": 0.1}, "d": None, "e": {**a, "classes": (0, 1)}}
    assert same_setup("b", configs) == ["b", "a", "e"] and same_setup("d", configs) == []


def test_an_image_folder_named_relative_or_absolute_is_one_set_up(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path / "..")
    relative = RunConfig(dataset=f"folder:{tmp_path.name}/cifar10", epochs=2)
    absolute = RunConfig(dataset=f"folder:{tmp_path}/cifar10", epochs=8, policy=PolicyConfig(name="none"))
    assert relative.dataset == absolute.dataset == f"folder:{tmp_path}/cifar10"
    assert RunConfig.from_dict(relative.to_dict()) == relative  # recorded absolute, read back the same
    configs = {"a": absolute.to_dict(), "b": relative.to_dict(), "c": RunConfig(dataset="folder:other").to_dict()}
    assert same_setup("b", configs) == ["b", "a"]


def test_the_compare_page_draws_the_frontier_chart(runs):
    write_fake_run(runs, units=8, epochs=3, policy="none")
    write_fake_run(runs, units=8, epochs=6, policy="none")
    method = write_fake_run(runs, units=8, epochs=6)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["run"] = method
    at.run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    spec = {c.key: json.loads(c.proto.spec) for c in at.get("plotly_chart")}["frontier"]
    line, points = spec["data"]
    assert "lines" in line["mode"] and len(line["x"]) == 2  # the two budgets
    assert len(points["x"]) == 1 and points["text"][0][0] in "+-"


def test_a_run_that_computes_what_the_full_budget_computes_has_a_flops_margin_of_exactly_zero():
    """Seconds swing on a shared machine, FLOPs do not: a variant that dropped nothing ran the full budget's
    exact work and reached its exact accuracy, yet timing put it ahead of the line (+1.20 points on seconds)."""
    def run(policy, epochs, seconds, acc, variant="default"):
        return {"policy": policy, "variant": variant, "epochs": epochs, "seed": 0, "train_time_s": seconds,
                "train_flops": epochs * 1_000_000, "test_acc": acc, "val_acc": acc, "run_id": f"{policy}{epochs}"}

    runs = [run("none", 2, 10.0, 0.70), run("none", 4, 20.0, 0.76), run("none", 6, 30.0, 0.80),
            run("learndrop", 6, 27.0, 0.80, "tau=0.01")]  # nothing dropped, 3 s faster by chance
    no_drop = groups(runs)[-1]
    assert margin(frontier(runs[:3], axis=FLOPS), no_drop.flops, no_drop.test_acc).points == 0.0
    assert margin(frontier(runs[:3]), no_drop.time_s, no_drop.test_acc).points == pytest.approx(1.2)
    # 0.80 - (0.76 + 0.04 * 7 / 10) = 0.012: the seconds axis flatters it
    rows = report.pair_rows(runs)
    assert rows[-1][7:9] == ["+0.00 pts", "+1.20 pts"]  # margin on FLOPs, margin on seconds
    assert time_efficiency(no_drop, groups(runs)[2]) is None  # no FLOPs saved: no efficiency to speak of
    picks = pick_on_validation(runs)
    assert picks["learndrop"].axis == FLOPS and picks["learndrop"].score == 0.0


def test_time_efficiency_is_the_share_of_seconds_saved_per_share_of_flops_saved():
    full = groups([{"policy": "none", "variant": "default", "epochs": 6, "seed": 0, "train_time_s": 30.0,
                    "train_flops": 600.0, "test_acc": 0.8}])[0]
    half = groups([{"policy": "learndrop", "variant": "default", "epochs": 6, "seed": 0, "train_time_s": 21.0,
                    "train_flops": 300.0, "test_acc": 0.79}])[0]
    assert time_efficiency(half, full) == pytest.approx(0.6)  # (1 - 21/30) / (1 - 300/600) = 0.3 / 0.5


def test_a_report_without_flops_keeps_its_seconds_and_says_so(tmp_path):
    header = {"command": "x", "started": "now", "machine": {"processor": "p", "cpus": 2, "torch": "t", "cuda": None}}
    runs = [base(2, 10.0, 0.6), base(4, 20.0, 0.8), {**base(4, 15.0, 0.75), "policy": "learndrop"}]
    old = {"header": header, "pairs": [{"label": "old", "scenario": "scratch", "runs": runs}]}
    md = report.to_markdown(old, [{}], header)
    assert "| learndrop | default | 4 | 1 | 15.0 | n/a | 75.00 | n/a | +5.00 pts | n/a |" in md  # 0.75 - 0.70
    assert "seconds only" in md


def test_the_compare_pages_frontier_shows_either_axis_the_flops_in_the_unit_people_read(runs):
    write_fake_run(runs, units=8, epochs=3, policy="none")
    write_fake_run(runs, units=8, epochs=6, policy="none")
    method = write_fake_run(runs, units=8, epochs=6)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["run"] = method
    at.run()
    at.switch_page("pages/compare.py").run()
    at.button_group(key="frontier_axis").set_value(FLOPS).run()
    assert not at.exception, [e.value for e in at.exception]
    spec = {c.key: json.loads(c.proto.spec) for c in at.get("plotly_chart")}["frontier"]
    line, points = spec["data"]
    flops = [runs.summary(r)["train_flops"] for r in runs.run_ids() if runs.summary(r)["policy"] == "none"]
    unit = spec["layout"]["xaxis"]["title"]["text"].split()[1]  # "training TFLOPs (forward + backward ...)"
    divisor = {"GFLOPs": 1e9, "TFLOPs": 1e12, "PFLOPs": 1e15}[unit]
    assert sorted(line["x"]) == pytest.approx(sorted(f / divisor for f in flops))
    assert points["x"][0] == pytest.approx(runs.summary(method)["train_flops"] / divisor)
