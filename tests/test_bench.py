"""The benchmark's figures: arithmetic on hand-made summaries, and a whole (tiny) benchmark end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import FORCED, ROOT

from learndrop.bench import side_by_side as bench
from learndrop.bench.pairs import Pair
from learndrop.bench.running import Measured
from learndrop.bench.side_by_side import PairResult, check_targets, metrics, to_markdown
from learndrop.cli import main
from learndrop.config import PolicyConfig


def summary(run_id, t, acc, fwd, bwd, instrument=0.0, data=0.0, dropped=()):
    return {"run_id": run_id, "model": "tiny", "width": 1.0, "dataset": "shapes", "epochs": 4, "train_time_s": t,
            "test_acc": acc, "fwd_flops": fwd, "bwd_flops": bwd, "fwd_flops_reduction_pct": 100 * (1 - fwd / 100),
            "train_flops_reduction_pct": 100 * (1 - (fwd + bwd) / 300), "instrument_time_s": instrument,
            "data_time_s": data, "images_per_s": 1000.0, "dropped": list(dropped)}


def replace_speedup(row, speedup):
    return {**row, "speedup": speedup}


def test_metrics_by_hand():
    result = PairResult(Pair("tiny / shapes", {}))
    result.plain.append(Measured(summary("p", 95.0, 0.90, 100, 200), 10.0))
    result.base.append(Measured(summary("b", 100.0, 0.90, 100, 200, instrument=1.0, data=2.0), 10.0))
    # Learn&Drop: 40 s; 60 of 100 forward and 90 of 200 backward FLOPs; 0.5 s instrumenting, 1 s loading
    result.ld.append(Measured(summary("l", 40.0, 0.885, 60, 90, instrument=0.5, data=1.0,
                                      dropped=[{"unit": "features.0", "epoch": 2}]), 12.0))
    row = metrics(result, "scratch")
    assert row["speedup"] == 2.5  # 100 / 40
    assert row["acc_drop_pts"] == 1.5  # (0.90 - 0.885) x 100
    # time saved 1 - 40/100 = 0.6; training FLOPs saved 1 - 150/300 = 0.5
    assert row["time_efficiency"] == pytest.approx(1.2)
    assert row["overhead_pct"] == 1.25  # 0.5 s of 40 s
    assert row["overhead_ab_pct"] == pytest.approx(5.26, abs=0.01)  # (100 - 95) / 95
    assert row["data_loading_pct"] == pytest.approx(100 * (2 / 100 + 1 / 40) / 2)
    assert row["dropped"] == [{"unit": "features.0", "epoch": 2}]  # numbered from 1, as in the summary
    met = check_targets(row, "scratch")
    assert met == {"speedup": True, "acc_drop_pts": False, "time_efficiency": True, "overhead_pct": True,
                   "data_loading_pct": True}
    assert check_targets(row, "finetune")["speedup"] and not check_targets(replace_speedup(row, 2.4), "finetune")[
        "speedup"]  # fine-tuning needs 2.5x
    markdown = to_markdown({"scenario": "scratch", "quick": False, "command": "python -m learndrop bench",
                            "started": "now", "machine": {"processor": "x", "cpus": 2, "torch": "t", "cuda": None},
                            "pairs": [{**row, "targets_met": met}]})
    assert "| **+1.50** |" in markdown and "| 2.50x |" in markdown  # misses in bold, the rest plain


@pytest.mark.slow  # over 5 s: a whole benchmark pair in-process
def test_a_tiny_benchmark_end_to_end(tmp_path, monkeypatch):
    pair = Pair("tiny / shapes", dict(model="tiny", width=0.5, dataset="shapes", subset=512, epochs=4,
                                      batch_size=64, lr=0.05, augment=False, checks_per_epoch=2, device="cpu"))
    monkeypatch.setitem(bench.SCENARIOS, "scratch", {"full": [pair], "quick": [pair]})
    report = bench.bench("scratch", quick=True, out_dir=tmp_path / "results",
                         policy=FORCED, overrides={"epochs": 3}, log=lambda _: None)
    files = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".md")
    written = json.loads((tmp_path / "results" / files[0]).read_text())
    row = written["pairs"][0]
    for key in ("model", "dataset", "scenario", "speedup", "acc_base", "acc_ld", "acc_drop_pts",
                "fwd_flops_reduction_pct", "train_flops_reduction_pct", "time_efficiency", "overhead_pct",
                "data_loading_pct"):
        assert key in row
    assert row["scenario"] == "scratch" and row["model"] == "tiny" and row["dropped"]
    assert row["epochs"] == 3  # the override, not the pair's 4
    assert row["fwd_flops_reduction_pct"] > 0 and report["machine"]["cpus"] >= 1
    runs = tmp_path / "runs"
    assert {row["runs"]["base"][0], row["runs"]["ld"][0], row["runs"]["plain"][0]} <= {p.name for p in runs.iterdir()}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "learndrop", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.slow  # the CLI in a subprocess: a whole benchmark pair
def test_a_custom_pair_from_the_cli_is_reported_like_the_built_in_ones(tmp_path):
    """`bench --model M --dataset D [train options]`: that one pair, baseline and Learn&Drop with the same
    seed and data order, the same figures and files as a built-in pair, kept out of the repository."""
    results, runs = tmp_path / "results", tmp_path / "runs"
    in_repo = set((ROOT / "benchmarks" / "results").glob("custom-*"))
    result = _cli("bench", "--model", "tiny", "--dataset", "shapes", "--width", "0.5", "--subset", "512",
                  "--epochs", "4", "--batch-size", "64", "--checks-per-epoch", "2", "--tau", "1", "--kappa", "1e9",
                  "--lr-schedule", "wsd", "--device", "cpu", "--runs-dir", str(runs), "--results-dir", str(results))
    assert result.returncode == 0, result.stderr[-3000:]
    json_file, md_file = sorted(results.iterdir())
    assert json_file.name.startswith("custom-") and json_file.suffix == ".json" and md_file.suffix == ".md"
    report = json.loads(json_file.read_text())
    assert report["scenario"] == "custom" and report["command"].startswith("python -m learndrop bench --model tiny")
    (row,) = report["pairs"]
    hand_made = PairResult(Pair("x", {}))
    for kind, made in (("base", summary("b", 2.0, 0.5, 100, 200)), ("ld", summary("l", 1.0, 0.5, 60, 90)),
                       ("plain", summary("p", 2.0, 0.5, 100, 200))):
        getattr(hand_made, kind).append(Measured(made, 1.0))
    assert set(row) == set(metrics(hand_made, "scratch")) | {"targets_met"}  # every field a built-in pair has
    assert (row["label"], row["model"], row["width"], row["dataset"], row["epochs"], row["subset"]) == (
        "tiny x0.5 / shapes (512)", "tiny", 0.5, "shapes", 4, 512)
    assert row["speedup"] > 0 and 0 <= row["acc_ld"] <= 1 and 0 <= row["acc_base"] <= 1
    assert row["acc_drop_pts"] == pytest.approx(100 * (row["acc_base"] - row["acc_ld"]), abs=0.011)
    assert row["dropped"] and row["fwd_flops_reduction_pct"] > 0 and row["train_flops_reduction_pct"] > 0
    assert row["time_efficiency"] is not None and row["overhead_pct"] >= 0
    assert set(row["targets_met"]) == {"speedup", "acc_drop_pts", "time_efficiency", "overhead_pct",
                                       "data_loading_pct"}
    assert "| tiny x0.5 / shapes (512) | 4 |" in md_file.read_text()
    # the pair: the baseline and Learn&Drop differ in the policy only (same seed, data, order); the third run is
    # the baseline without instrumentation (the overhead's A/B)
    configs = {kind: json.loads((runs / row["runs"][kind][0] / "config.json").read_text())
               for kind in ("base", "ld", "plain")}
    assert configs["base"]["policy"]["name"] == "none" and configs["ld"]["policy"]["name"] == "learndrop"
    assert configs["ld"]["policy"]["tau"] == 1.0 and configs["ld"]["lr_schedule"] == "wsd"  # as given
    assert configs["ld"]["augment"] is False  # not given: train's default (the built-in pairs augment)
    strip = lambda c: {k: v for k, v in c.items() if k not in ("policy", "instrument")}  # noqa: E731
    assert strip(configs["base"]) == strip(configs["ld"]) == strip(configs["plain"])
    assert not configs["plain"]["instrument"]
    assert set((ROOT / "benchmarks" / "results").glob("custom-*")) == in_repo


@pytest.mark.parametrize("args, message", [
    (["--model", "alexnet"], "unknown model 'alexnet'"),
    (["--dataset", "svhn"], "unknown data set 'svhn'"),
    (["--dataset", "folder:/nonexistent/images"], "does not exist"),
    (["--model", "tiny", "--epochs", "0"], "epochs must be an integer from 1 to 100,000"),
    (["--model", "tiny", "--epochs", "many"], "invalid int value"),
    (["--model", "tiny", "--tau", "2"], "tau must be in (0, 1]"),
    (["--model", "tiny", "--lr-schedule", "exponential"], "unknown lr_schedule"),
    (["--model", "tiny", "--width", "0.001"], "no channels"),
    (["--model", "tiny", "--batch-size", "50000"], "larger than the training set"),
    (["--quick", "--epochs", "0"], "epochs must be"),  # built-in pairs: checked before the first one trains
    (["--policy", "none"], "--policy does not apply to bench"),
    (["--resume", "20990101-x"], "--resume does not apply to bench"),
    (["--model", "tiny", "--scenario", "stream"], "--scenario chooses built-in pairs"),
    (["--model", "tiny", "--runs-dir", "/proc/forbidden"], "runs folder '/proc/forbidden' cannot be created"),
    (["--model", "tiny", "--results-dir", "/proc/forbidden"], "results folder '/proc/forbidden' cannot be created"),
])
def test_bad_bench_options_are_answered_like_train(args, message, tmp_path, capsys):
    dirs = []
    for flag, name in (("--runs-dir", "runs"), ("--results-dir", "results")):
        dirs += [] if flag in args else [flag, str(tmp_path / name)]
    code = main(["bench", *args, *dirs])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error: ") and message in err, err
    assert not any(tmp_path.iterdir()), "nothing created"


def test_train_options_given_to_bench_override_the_built_in_pairs(monkeypatch):
    asked = []
    monkeypatch.setattr(bench, "bench", lambda *a, **kw: asked.append((a, kw)))
    assert main(["bench", "--quick", "--epochs", "2", "--lr", "0.1", "--no-augment", "--tau", "0.5"]) == 0
    assert main(["bench", "--scenario", "finetune"]) == 0
    (args, given), (args2, none_given) = asked
    assert args == ("scratch",) and given["quick"] and given["overrides"] == {"epochs": 2, "lr": 0.1, "augment": False}
    assert given["policy"] == PolicyConfig(tau=0.5)
    assert args2 == ("finetune",) and none_given["overrides"] == {} and none_given["policy"] == PolicyConfig()
