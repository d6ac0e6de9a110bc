"""A run's events as pandas DataFrames: per epoch, per check x unit, drops, threshold changes."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from . import events as ev

EPOCH_COLUMNS = ["epoch", "step", "time_s", "train_loss", "train_acc", "val_loss", "val_acc", "epoch_time_s",
                 "eval_time_s", "instrument_time_s", "data_time_s", "fwd_flops", "bwd_flops", "baseline_fwd_flops",
                 "baseline_bwd_flops", "trainable_params", "active_units", "images"]
SCORE_COLUMNS = ["check", "epoch", "step", "time_s", "unit", "unit_index", "d", "s", "c", "state"]
DROP_COLUMNS = ["unit", "index", "epoch", "check", "step", "time_s", "s", "c", "reason"]


def epochs_frame(events: Iterable[ev.Event]) -> pd.DataFrame:
    """One row per finished epoch, with cumulative training time and FLOPs (method and baseline)."""
    rows = [{k: getattr(e, k) for k in EPOCH_COLUMNS} for e in events if isinstance(e, ev.EpochEnded)]
    df = pd.DataFrame(rows, columns=EPOCH_COLUMNS)
    df["epoch_number"] = df["epoch"] + 1
    df["train_time_s"] = df["epoch_time_s"].cumsum()
    df["flops"] = df["fwd_flops"] + df["bwd_flops"]
    df["baseline_flops"] = df["baseline_fwd_flops"] + df["baseline_bwd_flops"]
    df["cum_flops"] = df["flops"].cumsum()
    df["cum_baseline_flops"] = df["baseline_flops"].cumsum()
    return df


def scores_frame(events: Iterable[ev.Event]) -> pd.DataFrame:
    """One row per (check, unit): the change d, scores s and c, and the unit's state."""
    rows = []
    for e in events:
        if isinstance(e, ev.LayerScores):
            for i, score in enumerate(e.scores):
                rows.append({"check": e.check, "epoch": e.epoch, "step": e.step, "time_s": e.time_s,
                             "unit_index": i, **score})
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def drops_frame(events: Iterable[ev.Event]) -> pd.DataFrame:
    rows = [{k: getattr(e, k) for k in DROP_COLUMNS} for e in events if isinstance(e, ev.LayerDropped)]
    return pd.DataFrame(rows, columns=DROP_COLUMNS)


def thresholds_frame(events: Iterable[ev.Event]) -> pd.DataFrame:
    rows = [{"epoch": e.epoch, "step": e.step, "time_s": e.time_s, **{f"old_{k}": v for k, v in e.old.items()},
             **e.new} for e in events if isinstance(e, ev.ThresholdsChanged)]
    return pd.DataFrame(rows)


def progress_frame(events: Iterable[ev.Event]) -> pd.DataFrame:
    rows = [{"epoch": e.epoch, "step": e.step, "time_s": e.time_s, "loss": e.loss, "images_per_s": e.images_per_s,
             "lr": e.lr} for e in events if isinstance(e, ev.Progress)]
    return pd.DataFrame(rows, columns=["epoch", "step", "time_s", "loss", "images_per_s", "lr"])


def units_frame(events: Iterable[ev.Event]) -> pd.DataFrame:
    """The network as run_started described it: one row per unit and the head."""
    for e in events:
        if isinstance(e, ev.RunStarted):
            return pd.DataFrame(e.units)
    return pd.DataFrame(columns=["name", "params", "fwd_flops", "bwd_flops"])
