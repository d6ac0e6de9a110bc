"""A run's events as pandas DataFrames: per epoch, per check x unit, drops, threshold changes."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from .. import events as ev
from ..config import THRESHOLDS

# test_*: the test split (reported only); val_*: the validation split held out from the training
# images (None: none)
EPOCH_COLUMNS = ["epoch", "step", "time_s", "train_loss", "train_acc", "test_loss", "test_acc", "val_loss",
                 "val_acc", "epoch_time_s", "eval_time_s", "instrument_time_s", "data_time_s", "fwd_flops",
                 "bwd_flops", "baseline_fwd_flops", "baseline_bwd_flops", "trainable_params", "active_units",
                 "images"]
SCORE_COLUMNS = ["check", "epoch", "step", "time_s", "unit", "unit_index", "d", "s", "c", "state", "rewind"]
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
    """One row per (check, unit): the change d, scores s and c, the unit's state, and its rewind test (where
    the rewind gate made one; otherwise empty)."""
    rows = []
    for e in events:
        if isinstance(e, ev.UnitScores):
            for i, score in enumerate(e.scores):
                rows.append({"check": e.check, "epoch": e.epoch, "step": e.step, "time_s": e.time_s,
                             "unit_index": i, **score})
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def drops_frame(events: Iterable[ev.Event]) -> pd.DataFrame:
    rows = [{k: getattr(e, k) for k in DROP_COLUMNS} for e in events if isinstance(e, ev.UnitDropped)]
    return pd.DataFrame(rows, columns=DROP_COLUMNS)


PROGRESS_COLUMNS = ["epoch", "step", "time_s", "loss", "images_per_s", "lr", "epoch_step", "epoch_steps"]


def progress_frame(events: Iterable[ev.Event]) -> pd.DataFrame:
    rows = [{k: getattr(e, k) for k in PROGRESS_COLUMNS} for e in events if isinstance(e, ev.Progress)]
    return pd.DataFrame(rows, columns=PROGRESS_COLUMNS)


CHUNK_COLUMNS = ["chunk", "chunks", "epoch", "step", "time_s", "images", "classes", "end_epoch", "test_acc",
                 "seen_acc", "val_acc", "per_class_acc"]


def chunks_frame(events: Iterable[ev.Event]) -> pd.DataFrame:
    """One row per data chunk of a streaming run: where it started (``epoch``, 0-based, ``step``, ``time_s``),
    what it brought, and once trained its test accuracy on all classes and on the classes seen so far."""
    rows: dict[int, dict] = {}
    for e in events:
        if isinstance(e, ev.ChunkStarted):
            rows[e.chunk] = {"chunk": e.chunk, "chunks": e.chunks, "epoch": e.epoch, "step": e.step,
                             "time_s": e.time_s, "images": e.images, "classes": list(e.classes)}
        elif isinstance(e, ev.ChunkEnded) and e.chunk in rows:
            rows[e.chunk].update(end_epoch=e.epoch, test_acc=e.test_acc, seen_acc=e.seen_acc,
                                 val_acc=e.val_acc, per_class_acc=dict(e.per_class_acc))
    return pd.DataFrame([rows[k] for k in sorted(rows)], columns=CHUNK_COLUMNS)


def units_frame(events: Iterable[ev.Event]) -> pd.DataFrame:
    """The network as run_started described it: one row per unit and the head."""
    for e in events:
        if isinstance(e, ev.RunStarted):
            return pd.DataFrame(e.units)
    return pd.DataFrame(columns=["name", "params", "fwd_flops", "bwd_flops"])


CHECK_COLUMNS = ["check", "epoch", "step", "time_s", *THRESHOLDS, "training", "candidates",
                 "frozen", "dropped"]


def checks_frame(events: Iterable[ev.Event]) -> pd.DataFrame:
    """One row per check: the thresholds it used and how many units were in each state after it."""
    rows = []
    for e in events:
        if isinstance(e, ev.UnitScores):
            states = [s["state"] for s in e.scores]
            rows.append({"check": e.check, "epoch": e.epoch, "step": e.step, "time_s": e.time_s,
                         **{k: e.thresholds.get(k) for k in THRESHOLDS},
                         "training": states.count("training"), "candidates": states.count("candidate"),
                         "frozen": states.count("frozen"), "dropped": states.count("dropped")})
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def format_classes(classes: Iterable[int] | None) -> str:
    """(5, 6, 7, 8, 9) -> "5-9", (0, 2, 4) -> "0,2,4" (the CLI's --classes syntax); empty for None."""
    values = list(classes or ())
    if not values:
        return ""
    parts = []
    start = values[0]
    prev = values[0]
    for c in [*values[1:], None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if c is not None:
            start = prev = c
    return ",".join(parts)


def chunk_table(chunks: pd.DataFrame, epochs_per_chunk: int) -> pd.DataFrame:
    """The per-chunk evaluation of a streaming run as the Train page shows it (accuracies in %)."""
    pct = lambda v: "—" if v is None or pd.isna(v) else f"{100 * float(v):.2f}"  # noqa: E731
    rows = [{"chunk": f"{int(r.chunk) + 1} of {int(r.chunks)}",
             "epochs": f"{int(r.epoch) + 1}–{int(r.epoch) + epochs_per_chunk}",
             "images": f"{int(r.images):,}", "classes": format_classes(r.classes),
             "test accuracy, all classes (%)": pct(r.test_acc),
             "test accuracy, classes seen (%)": pct(r.seen_acc)}
            for r in chunks.itertuples(index=False)]
    return pd.DataFrame(rows, columns=["chunk", "epochs", "images", "classes",
                                       "test accuracy, all classes (%)", "test accuracy, classes seen (%)"])


LOG_TYPES = ("run_started", "unit_dropped", "unit_frozen", "thresholds_changed", "cache_built",
             "cache_skipped", "chunk_started", "chunk_ended", "checkpoint_restored", "run_paused",
             "run_unpaused", "epoch_ended", "run_finished")
LOG_COLUMNS = ["time_s", "epoch", "step", "event", "what"]


def event_log_frame(events: Iterable[ev.Event]) -> pd.DataFrame:
    """The run's story, one readable line per event that matters (no per-step progress, no raw scores)."""
    rows = []
    for e in events:
        what = _describe(e)
        if what is not None:
            rows.append({"time_s": round(e.time_s, 2), "epoch": e.epoch + 1, "step": e.step,
                         "event": e.type.replace("_", " "), "what": what})
    return pd.DataFrame(rows, columns=LOG_COLUMNS)


def _describe(e: ev.Event) -> str | None:
    """One readable line; event types are matched by name so recordings of other versions read too."""
    get = lambda name, default=None: getattr(e, name, default)  # noqa: E731
    if e.type == "run_started":
        return (f"{e.config.get('model')} on {e.config.get('dataset')}, {len(e.units) - 1} units, "
                f"{e.train_size:,} training images" + (f" (+{get('val_size'):,} held out for validation)"
                                                        if get("val_size") else "") + f", device {e.device}")
    if e.type == "unit_dropped":
        return e.reason
    if e.type == "unit_frozen":
        return f"{e.unit} frozen: a candidate behind a unit that still trains"
    if e.type == "thresholds_changed":
        changed = [f"{k} {e.old.get(k)} → {v}" for k, v in e.new.items() if e.old.get(k) != v]
        return "thresholds changed: " + (", ".join(changed) or "no change")
    if e.type == "cache_built":
        return (f"cached the output of the first {e.units} unit(s): {e.bytes / 2**20:.1f} MiB ({e.dtype}) "
                f"in {e.seconds:.2f} s")
    if e.type == "cache_skipped":
        return e.reason
    if e.type == "chunk_started":
        return (f"data chunk {get('chunk', 0) + 1} of {get('chunks', '?')} arrives: {get('images', 0):,} "
                "images")
    if e.type == "chunk_ended":
        return f"data chunk {get('chunk', 0) + 1} done: test accuracy {100 * get('test_acc', 0):.2f} %"
    if e.type == "checkpoint_restored":
        return (f"resumed from the checkpoint of epoch {get('from_epoch', 0)} after the run was "
                f"{get('previous_status', 'interrupted')}")
    if e.type == "run_paused":
        return "paused"
    if e.type == "run_unpaused":
        return f"resumed after {e.paused_s:.1f} s"
    if e.type == "epoch_ended":
        val = "" if get("val_acc") is None else f"validation accuracy {100 * e.val_acc:.2f} %, "
        return (f"epoch {e.epoch + 1}: {val}test accuracy {100 * e.test_acc:.2f} %, {e.epoch_time_s:.2f} s "
                f"training, {e.active_units} unit(s) training")
    if e.type == "run_finished":
        return f"run {e.status}" + (f": {e.error}" if e.error else "")
    return None
