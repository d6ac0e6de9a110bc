"""``python -m learndrop bench``: the baseline (``none``) and Learn&Drop side by side, on real data.

The pairs are a scenario's built-in ones, or one custom pair (``pairs.custom_pair``: any model, data set
and options ``train`` takes). For each pair both policies train with the same seed, epochs, data order and
hyper-parameters, one after the other in this process (``--repeats`` alternates their order), and the
pair reports speedup, accuracies, FLOPs reductions, time efficiency, instrumentation overhead and data
loading share. Results go to ``benchmarks/results/`` as JSON and markdown, with the machine and command.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

from ..config import PolicyConfig
from ..runs.store import RunStore, check_writable_dir
from ..summary import mean_acc
from ..training.preflight import preflight
from .pairs import COMMON, RESULTS_DIR, SCENARIOS, Pair, choose_pairs, default_root, pair_config
from .running import Measured, load_data, machine, pretrain, train_one

TARGETS = {"speedup": 2.0, "acc_drop_pts": 1.0, "time_efficiency": 0.9, "overhead_pct": 3.0,
           "data_loading_pct": 5.0}
FINETUNE_TARGETS = {"speedup": 2.5, "acc_drop_pts": 0.5}


@dataclass
class PairResult:
    pair: Pair
    base: list[Measured] = field(default_factory=list)
    ld: list[Measured] = field(default_factory=list)
    plain: list[Measured] = field(default_factory=list)  # the baseline with instrumentation off


def validate(pairs: Sequence[Pair], root: str, policy: PolicyConfig,
             overrides: dict[str, Any] | None) -> None:
    """Every config the pairs will train, checked before the first one starts (a bad option costs nothing)."""
    for pair in pairs:
        for name in ("none", policy.name):
            config = pair_config(pair, root, dataclasses.replace(policy, name=name), overrides)
            preflight(config)


def run_pair(pair: Pair, root: str, repeats: int, store: RunStore, policy: PolicyConfig,
             log: Callable[[str], None], overrides: dict[str, Any] | None = None) -> PairResult:
    data = load_data(pair_config(pair, root, policy, overrides))
    init_from = pretrain(pair, root, overrides, data, store, log)
    result = PairResult(pair)
    base_cfg = pair_config(pair, root, dataclasses.replace(policy, name="none"), overrides,
                           init_from=init_from)
    ld_cfg = pair_config(pair, root, policy, overrides, init_from=init_from)
    plain_cfg = dataclasses.replace(base_cfg, instrument=False)
    for r in range(repeats):
        order = [("base", base_cfg), ("ld", ld_cfg)] if r % 2 == 0 else [("ld", ld_cfg), ("base", base_cfg)]
        if r == 0:
            order.insert(0, ("plain", plain_cfg))
        for kind, cfg in order:
            measured = train_one(cfg, data, store)
            getattr(result, kind).append(measured)
            s = measured.summary
            log(f"  {kind:<5} {s['train_time_s']:8.1f} s  test acc {100 * s['test_acc']:.2f} %  "
                f"fwd FLOPs -{s['fwd_flops_reduction_pct']:.1f} %  dropped {len(s['dropped'])}")
    return result


def metrics(result: PairResult, scenario: str) -> dict[str, Any]:
    """The figures of one pair, means over repeats. Time efficiency: do FLOPs saved become seconds saved?"""
    base = [m.summary for m in result.base]
    ld = [m.summary for m in result.ld]
    t_base, t_ld = mean(s["train_time_s"] for s in base), mean(s["train_time_s"] for s in ld)
    acc_base, acc_ld = mean(s["test_acc"] for s in base), mean(s["test_acc"] for s in ld)
    flops = lambda s: s["fwd_flops"] + s["bwd_flops"]  # noqa: E731
    f_base, f_ld = mean(flops(s) for s in base), mean(flops(s) for s in ld)
    time_saved, flops_saved = 1 - t_ld / t_base, 1 - f_ld / f_base
    t_plain = mean(m.summary["train_time_s"] for m in result.plain)
    first_ld = ld[0]
    return {
        "label": result.pair.label,
        "model": first_ld["model"],
        "width": first_ld["width"],
        "dataset": first_ld["dataset"].replace(os.sep, "/"),
        "scenario": scenario,
        "epochs": first_ld["epochs"],
        "subset": result.pair.config.get("subset"),
        "repeats": len(ld),
        "train_time_base_s": round(t_base, 2),
        "train_time_ld_s": round(t_ld, 2),
        "speedup": round(t_base / t_ld, 3),
        # test split; validation split
        "acc_base": round(acc_base, 4), "acc_val_base": mean_acc(base, "val_acc"),
        "acc_ld": round(acc_ld, 4), "acc_val_ld": mean_acc(ld, "val_acc"),  # (None without --val-split)
        "acc_drop_pts": round((acc_base - acc_ld) * 100, 2),
        "fwd_flops_reduction_pct": round(mean(s["fwd_flops_reduction_pct"] for s in ld), 2),
        "train_flops_reduction_pct": round(mean(s["train_flops_reduction_pct"] for s in ld), 2),
        "time_efficiency": round(time_saved / flops_saved, 3) if flops_saved > 0 else None,
        # the share of training time timed inside scores, events and FLOPs measurement; and the A/B check,
        # baseline with them against baseline without (one run each: on a shared machine mostly noise)
        "overhead_pct": round(100 * mean(s["instrument_time_s"] / s["train_time_s"] for s in ld), 2),
        "overhead_ab_pct": round(100 * (t_base - t_plain) / t_plain, 2),
        "data_loading_pct": round(100 * mean(s["data_time_s"] / s["train_time_s"] for s in base + ld), 2),
        "images_per_s_base": round(mean(s["images_per_s"] for s in base), 1),
        "images_per_s_ld": round(mean(s["images_per_s"] for s in ld), 1),
        "peak_mem_mb_base": max(m.peak_rss_mb for m in result.base),
        "peak_mem_mb_ld": max(m.peak_rss_mb for m in result.ld),
        # from 1, as summaries
        "dropped": [{"unit": d["unit"], "epoch": d["epoch"]} for d in first_ld["dropped"]],
        "runs": {"base": [s["run_id"] for s in base], "ld": [s["run_id"] for s in ld],
                 "plain": [m.summary["run_id"] for m in result.plain]},
    }


def check_targets(row: dict[str, Any], scenario: str) -> dict[str, bool]:
    targets = {**TARGETS, **(FINETUNE_TARGETS if scenario in ("finetune", "transfer") else {})}
    return {
        "speedup": row["speedup"] >= targets["speedup"],
        "acc_drop_pts": row["acc_drop_pts"] <= targets["acc_drop_pts"],
        "time_efficiency": (row["time_efficiency"] or 0) >= targets["time_efficiency"],
        "overhead_pct": row["overhead_pct"] <= targets["overhead_pct"],
        "data_loading_pct": row["data_loading_pct"] < targets["data_loading_pct"],
    }


def to_markdown(report: dict[str, Any]) -> str:
    lines = [f"# Benchmark: {report['scenario']}{' (quick)' if report['quick'] else ''}", "",
             f"`{report['command']}`  ", f"{report['started']}, {report['machine']['processor']}, "
             f"{report['machine']['cpus']} CPUs, torch {report['machine']['torch']}, "
             f"{report['machine']['cuda'] or 'no GPU'}", "",
             "| pair | epochs | t base s | t L&D s | speedup | acc base | acc L&D | drop pts | fwd FLOPs -% "
             "| train FLOPs -% | time eff. | overhead % | data % | units dropped (epoch) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in report["pairs"]:
        ok = row["targets_met"]
        mark = lambda key, text: f"**{text}**" if not ok[key] else text  # noqa: E731  (misses in bold)
        drops = ", ".join(f"{d['unit']} ({d['epoch']})" for d in row["dropped"]) or "none"
        speedup, drop = f"{row['speedup']:.2f}x", f"{row['acc_drop_pts']:+.2f}"
        overhead, data = f"{row['overhead_pct']:.2f}", f"{row['data_loading_pct']:.2f}"
        lines.append(
            f"| {row['label']} | {row['epochs']} | {row['train_time_base_s']:.0f} | "
            f"{row['train_time_ld_s']:.0f} | {mark('speedup', speedup)} | {100 * row['acc_base']:.2f} | "
            f"{100 * row['acc_ld']:.2f} | {mark('acc_drop_pts', drop)} | "
            f"{row['fwd_flops_reduction_pct']:.1f} | {row['train_flops_reduction_pct']:.1f} | "
            f"{mark('time_efficiency', str(row['time_efficiency']))} | {mark('overhead_pct', overhead)} "
            f"({row['overhead_ab_pct']:+.1f} A/B) | {mark('data_loading_pct', data)} | {drops} |")
    lines += ["", "Bold: a target missed (speedup >= 2.0x, or 2.5x fine-tuning; accuracy drop <= 1.0 point, "
              "or 0.5 fine-tuning; time efficiency >= 0.9; instrumentation <= 3 % of training time; data "
              "loading < 5 %)."]
    return "\n".join(lines) + "\n"


def bench(scenario: str = "scratch", quick: bool = False, repeats: int = 1, data_root: str | None = None,
          only: str | None = None, out_dir: Path = RESULTS_DIR, policy: PolicyConfig | None = None,
          overrides: dict[str, Any] | None = None, log: Callable[[str], None] = print,
          pairs: Sequence[Pair] | None = None, runs_dir: Path | None = None) -> dict[str, Any]:
    """A scenario's built-in pairs (``quick``, ``only`` choose among them) or ``pairs`` (scenario "custom"),
    ``repeats`` times per policy; runs go to ``runs_dir`` (default ``out_dir``/../runs), results to
    ``out_dir``."""
    pairs = choose_pairs(scenario, quick, only, pairs)
    root = data_root or default_root()
    policy = policy or PolicyConfig()
    validate(pairs, root, policy, overrides)
    runs_dir = runs_dir if runs_dir is not None else out_dir.parent / "runs"
    check_writable_dir(runs_dir, "runs folder")
    check_writable_dir(out_dir, "results folder")
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    store = RunStore(runs_dir)
    rows = []
    for pair in pairs:
        log(f"{pair.label}")
        row = metrics(run_pair(pair, root, repeats, store, policy, log, overrides), scenario)
        finetune = scenario == "finetune" or bool(pair.config.get("init_from")
                                                  or pair.config.get("pretrained"))
        row["targets_met"] = check_targets(row, "finetune" if finetune else scenario)
        rows.append(row)
        log(f"  -> speedup {row['speedup']:.2f}x, accuracy {row['acc_drop_pts']:+.2f} pts, "
            f"time efficiency {row['time_efficiency']}")
    asked = (f"--scenario {scenario}{' --quick' if quick else ''}" if scenario in SCENARIOS
             else f"--model {pairs[0].config['model']} --dataset {pairs[0].config['dataset']}")
    command = " ".join(["python -m learndrop", *sys.argv[1:]] if sys.argv[1:2] == ["bench"] else
                       ["python -m learndrop bench", asked])
    report = {"scenario": scenario, "quick": quick, "repeats": repeats, "started": started,
              "command": command, "policy": dataclasses.asdict(policy), "overrides": overrides or {},
              "machine": machine(), "pairs": rows,
              # what both policies share
              "common": COMMON if scenario in SCENARIOS else dict(pairs[0].config)}
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{scenario}{'-quick' if quick else ''}-{time.strftime('%Y%m%d-%H%M%S')}"
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str))
    (out_dir / f"{stem}.md").write_text(to_markdown(report))
    log(f"wrote {out_dir / stem}.json and .md")
    return report
