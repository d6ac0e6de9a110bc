"""``learndrop runs``, ``show``, ``models`` and ``datasets``: the recorded runs of a runs folder, and one of
them; a damaged run folder is listed as damaged with what is wrong (``runs.damage``), never a traceback."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from ..data.datasets import list_datasets
from ..errors import LearnDropError
from ..models import list_models, model_info
from ..runs.store import RunStore
from .console import format_summary


def cmd_runs(a: argparse.Namespace) -> int:
    store = RunStore(a.runs_dir)
    rows = store.summaries()
    if not rows:
        print(f"no runs in {store.root}")
        return 0
    df = pd.DataFrame(rows)[["run_id", "status", "model", "dataset", "policy", "epochs_done", "test_acc",
                             "train_time_s", "fwd_flops_reduction_pct"]]
    df["dropped"] = [len(r["dropped"]) for r in rows]
    print(df.to_string(index=False))
    for r in rows:  # a folder that cannot be read is listed, and what is wrong with it said
        if r["status"] == "damaged":
            print(f"{r['run_id']} is damaged: {r['error']}")
    return 0


def cmd_show(a: argparse.Namespace) -> int:
    from ..report.tables import drops_frame, epochs_frame

    store = RunStore(a.runs_dir)
    if (problem := store.problem(a.run_id)) is not None:  # validates the id; a clear error for a missing run
        raise LearnDropError(f"run {a.run_id} is damaged: {problem}")
    loaded = store.events(a.run_id)
    if loaded.skipped:
        print(f"warning: skipped {loaded.skipped} unreadable line(s) in {a.run_id}/events.jsonl",
              file=sys.stderr)
    print(format_summary(store.summary(a.run_id)))
    epochs = epochs_frame(loaded.events)
    if len(epochs):
        accs = ["val_acc", "test_acc"] if epochs["val_acc"].notna().any() else ["test_acc"]
        table = epochs[["epoch_number", "train_loss", *accs, "epoch_time_s", "active_units"]].copy()
        table["fwd FLOPs %"] = (100 * epochs["fwd_flops"] / epochs["baseline_fwd_flops"]).round(1)
        print()
        print(table.rename(columns={"epoch_number": "epoch"}).to_string(index=False))
    for _, drop in drops_frame(loaded.events).iterrows():
        print(f"epoch {drop['epoch'] + 1}: {drop['reason']}")
    return 0


def cmd_models(a: argparse.Namespace) -> int:
    for name in list_models():
        info = model_info(name)
        extras = [x for x, ok in (("width", info.has_width), ("pretrained", info.has_pretrained)) if ok]
        print(f"{name:<10} {info.description}" + (f"  [{', '.join(extras)}]" if extras else ""))
    from ..models.zoo import listing

    print(listing())  # torchvision:NAME families, timm:NAME classes
    return 0


def cmd_datasets(a: argparse.Namespace) -> int:
    for info in list_datasets():
        print(f"{info.name:<14} {info.description}" + ("  [--download]" if info.downloadable else ""))
    return 0
