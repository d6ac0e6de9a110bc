"""Runs side by side: which run is whose baseline, speedup, and the comparison table.

A baseline of a Learn&Drop run is a run with the ``none`` policy and the same training setup (model,
data, epochs, optimisation, seed, device): the settings in ``NOT_COMPARED`` may differ, since they do
not change what the baseline computes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ..status import RunState

# config fields a baseline may differ in: the policy itself and what only matters once something drops
NOT_COMPARED = frozenset({"policy", "checks_per_epoch", "cache", "cache_max_mb", "cache_dtype", "data_root",
                          "download", "progress_every"})


def setup_key(config: Mapping[str, Any]) -> str:
    """The part of a run's config that a fair baseline must share, as a comparable string."""
    return json.dumps({k: v for k, v in config.items() if k not in NOT_COMPARED}, sort_keys=True, default=str)


def find_baseline(run_id: str, configs: Mapping[str, Mapping[str, Any]],
                  statuses: Mapping[str, str]) -> str | None:
    """The newest run with the ``none`` policy and the same setup as ``run_id``, preferring completed ones.

    ``configs`` maps run ids to their config dicts, ``statuses`` to their status; run ids sort by time.
    """
    config = configs.get(run_id)
    if not config or (config.get("policy") or {}).get("name") == "none":
        return None
    key = setup_key(config)
    matches = sorted((rid for rid, cfg in configs.items() if rid != run_id
                      and (cfg.get("policy") or {}).get("name") == "none" and setup_key(cfg) == key),
                     reverse=True)
    completed = [rid for rid in matches if statuses.get(rid) == RunState.COMPLETED]
    return (completed or matches or [None])[0]


def time_speedup(method_epochs: pd.DataFrame, baseline_epochs: pd.DataFrame) -> tuple[float, int] | None:
    """Baseline training time / method training time over the epochs both have run, and that count."""
    n = min(len(method_epochs), len(baseline_epochs))
    if n == 0:
        return None
    method = float(method_epochs["epoch_time_s"].iloc[:n].sum())
    baseline = float(baseline_epochs["epoch_time_s"].iloc[:n].sum())
    return (baseline / method, n) if method > 0 else None


def accuracy_delta(method_epochs: pd.DataFrame, baseline_epochs: pd.DataFrame) -> tuple[float, int] | None:
    """Method test accuracy − baseline test accuracy after the last epoch both have run, and that epoch count.

    A baseline still training is compared at its own latest epoch, not against the method's final one.
    """
    n = min(len(method_epochs), len(baseline_epochs))
    if n == 0:
        return None
    return float(method_epochs["test_acc"].iloc[n - 1]) - float(baseline_epochs["test_acc"].iloc[n - 1]), n


def flops_speedup(summary: Mapping[str, Any]) -> float | None:
    """The speedup the training FLOPs imply: full-network FLOPs / the run's FLOPs (cache building
    included)."""
    method = (summary.get("fwd_flops") or 0) + (summary.get("bwd_flops") or 0)
    baseline = (summary.get("baseline_fwd_flops") or 0) + (summary.get("baseline_bwd_flops") or 0)
    return baseline / method if method > 0 and baseline > 0 else None


def compare_table(summaries: Sequence[Mapping[str, Any]], epochs: Mapping[str, pd.DataFrame],
                  baseline_id: str | None = None) -> pd.DataFrame:
    """One row per run: time, speedup against ``baseline_id`` (same epochs), FLOPs, accuracy and its delta."""
    base = next((s for s in summaries if s["run_id"] == baseline_id), None)
    base_epochs = epochs.get(baseline_id) if baseline_id else None
    rows = []
    for s in summaries:
        speed = None
        if base is not None and base_epochs is not None and s["run_id"] in epochs:
            found = time_speedup(epochs[s["run_id"]], base_epochs)
            speed = round(found[0], 2) if found else None
        acc = s.get("test_acc")
        base_acc = base.get("test_acc") if base else None
        rows.append({
            "run": run_label(s),
            "status": s.get("status"),
            "epochs": s.get("epochs_done"),
            "training time (s)": s.get("train_time_s"),
            "speedup": speed,
            "forward FLOPs reduction (%)": s.get("fwd_flops_reduction_pct"),
            "training FLOPs reduction (%)": s.get("train_flops_reduction_pct"),
            "test accuracy (%)": None if acc is None else round(100 * acc, 2),
            "validation accuracy (%)": None if s.get("val_acc") is None else round(100 * s["val_acc"], 2),
            "accuracy delta (pp)": (None if acc is None or base_acc is None
                                    else round(100 * (acc - base_acc), 2)),
            "units dropped": f"{len(s.get('dropped') or [])}/{s.get('units') or '?'}",
            "policy": s.get("policy"),
            "model": s.get("model"),
            "dataset": s.get("dataset"),
            "run id": s["run_id"],
        })
    return pd.DataFrame(rows)


def export_json(summaries: Sequence[Mapping[str, Any]], epochs: Mapping[str, pd.DataFrame]) -> str:
    """The selection as JSON: each run's summary and its per-epoch rows."""
    out = [{"summary": dict(s), "epochs": epochs[s["run_id"]].to_dict(orient="records")
            if s["run_id"] in epochs else []} for s in summaries]
    return json.dumps(out, indent=2, default=str)


def run_label(summary: Mapping[str, Any]) -> str:
    """A short name for legends: policy, model, data set, and the run id's time and suffix."""
    run_id = str(summary.get("run_id") or "")
    stamp = run_id[9:15] if len(run_id) > 15 and run_id[8] == "-" else ""
    when = f"{stamp[:2]}:{stamp[2:4]}:{stamp[4:]}" if stamp.isdigit() else ""
    return " · ".join(str(p) for p in (summary.get("policy"), summary.get("model"), summary.get("dataset"),
                                       f"{when} {run_id[-4:]}".strip()) if p)


# what makes runs "of one set-up" on the frontier chart: epochs and policy may differ (the frontier is the
# baseline at several epoch budgets), and so may the seed (means are taken over seeds)
SETUP_FIELDS = ("model", "width", "dataset", "subset", "classes", "augment", "lr", "lr_schedule",
                "batch_size")


def same_setup(run_id: str, configs: Mapping[str, Mapping[str, Any] | None]) -> list[str]:
    """The runs (``configs``: run id -> config dict, None for unreadable) of the same set-up as ``run_id``
    (the fields in ``SETUP_FIELDS``), ``run_id`` first; empty when its config is unknown."""
    config = configs.get(run_id)
    if not config:
        return []
    key = [json.dumps(config.get(k), default=str) for k in SETUP_FIELDS]
    return [run_id] + [r for r, c in configs.items() if r != run_id and c
                       and [json.dumps(c.get(k), default=str) for k in SETUP_FIELDS] == key]
