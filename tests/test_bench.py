"""The benchmark's figures: arithmetic on hand-made summaries, and a whole (tiny) benchmark end to end."""

from __future__ import annotations

import json

import pytest

from learndrop import bench
from learndrop.bench import Measured, Pair, PairResult, check_targets, metrics, to_markdown
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


def test_a_tiny_benchmark_end_to_end(tmp_path, monkeypatch):
    pair = Pair("tiny / shapes", dict(model="tiny", width=0.5, dataset="shapes", subset=512, epochs=4,
                                      batch_size=64, lr=0.05, augment=False, checks_per_epoch=2, device="cpu"))
    monkeypatch.setitem(bench.SCENARIOS, "scratch", {"full": [pair], "quick": [pair]})
    report = bench.bench("scratch", quick=True, out_dir=tmp_path / "results",
                         policy=PolicyConfig(tau=0.9, kappa=10.0), overrides={"epochs": 3}, log=lambda _: None)
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
