"""A run's summary, computed from its events: the same function for live and finished runs, beside the events
it sums (every layer that records or reads runs uses it)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from statistics import mean
from typing import Any

from . import events as ev
from .status import RunState

# 2: a drop's epoch is numbered from 1, as on the charts, the CLI and the benchmark (1: the events'
#    0-based index)
# 3: val_acc, the final accuracy on the validation split (test_acc stays the test split's)
# 4: world_size, the processes a data-parallel run trained on
# 5: probe_flops (part of fwd_flops) and train_flops (fwd_flops + bwd_flops: the training's whole work)
SUMMARY_VERSION = 5


def reduction_pct(method: float, baseline: float) -> float | None:
    return round(100.0 * (1.0 - method / baseline), 2) if baseline else None


def mean_acc(summaries: Sequence[dict[str, Any]], key: str) -> float | None:
    """The mean of an accuracy (``test_acc``, ``val_acc``) over runs' summaries, to 4 digits; None where one
    lacks it (a run without a validation split has no ``val_acc``)."""
    values = [s.get(key) for s in summaries]
    return None if not values or None in values else round(mean(values), 4)


def summarize(events: Iterable[ev.Event]) -> dict[str, Any]:
    started: ev.RunStarted | None = None
    finished: ev.RunFinished | None = None
    epochs: list[ev.EpochEnded] = []
    dropped: list[dict[str, Any]] = []
    cache_flops = 0
    for event in events:
        if isinstance(event, ev.RunStarted):
            started = event
        elif isinstance(event, ev.EpochEnded):
            epochs.append(event)
        elif isinstance(event, ev.UnitDropped):
            dropped.append({"unit": event.unit, "epoch": event.epoch + 1, "check": event.check})  # from 1
        elif isinstance(event, ev.RunFinished):
            finished = event
        elif isinstance(event, ev.CacheBuilt):
            cache_flops += event.fwd_flops
    config = started.config if started else {}
    total = {k: sum(getattr(e, k) for e in epochs) for k in (
        "fwd_flops", "bwd_flops", "baseline_fwd_flops", "baseline_bwd_flops", "epoch_time_s", "eval_time_s",
        "instrument_time_s", "data_time_s", "images", "probe_flops")}
    train_time = total["epoch_time_s"]
    return {
        "summary_version": SUMMARY_VERSION,
        "run_id": started.run_id if started else (finished.run_id if finished else None),
        "status": finished.status if finished else RunState.RUNNING.value,
        "error": finished.error if finished else None,
        "policy": config.get("policy", {}).get("name"),
        "model": config.get("model"),
        "width": config.get("width"),
        "dataset": config.get("dataset"),
        "seed": config.get("seed"),
        "world_size": config.get("world_size", 1),
        "epochs": config.get("epochs"),
        "epochs_done": len(epochs),
        "units": len(started.units) - 1 if started else None,
        "test_acc": epochs[-1].test_acc if epochs else None,
        "best_test_acc": max(e.test_acc for e in epochs) if epochs else None,
        "val_acc": epochs[-1].val_acc if epochs else None,  # None without a validation split
        "train_time_s": round(train_time, 3),
        "eval_time_s": round(total["eval_time_s"], 3),
        "instrument_time_s": round(total["instrument_time_s"], 3),
        "data_time_s": round(total["data_time_s"], 3),
        "images_per_s": round(total["images"] / train_time, 1) if train_time else None,
        "fwd_flops": total["fwd_flops"],
        "bwd_flops": total["bwd_flops"],
        "cache_fwd_flops": cache_flops,
        "probe_flops": total["probe_flops"],
        "train_flops": total["fwd_flops"] + total["bwd_flops"],
        "baseline_fwd_flops": total["baseline_fwd_flops"],
        "baseline_bwd_flops": total["baseline_bwd_flops"],
        "fwd_flops_reduction_pct": reduction_pct(total["fwd_flops"], total["baseline_fwd_flops"]),
        "train_flops_reduction_pct": reduction_pct(total["fwd_flops"] + total["bwd_flops"],
                                                   total["baseline_fwd_flops"] + total["baseline_bwd_flops"]),
        "dropped": dropped,
    }
