"""Continue a stopped, failed or interrupted run from its last per-epoch checkpoint."""

from __future__ import annotations

from collections.abc import Sequence

from . import events as ev
from .checkpoint import load_checkpoint
from .control import TrainingControl
from .errors import LearnDropError
from .runs import RunStore, RunWriter
from .setup import prepare
from .train import train


def open_for_resume(store: RunStore, run_id: str) -> tuple[dict, list[ev.Event], RunWriter]:
    """Check the run can continue, set aside the events written after its checkpoint, reopen its log.

    Returns the checkpoint (with ``set_aside`` and ``previous_status`` added), the events up to it, and
    a writer that appends to events.jsonl.
    """
    summary = store.summary(run_id)
    if summary["status"] == "completed":
        raise LearnDropError(f"run {run_id!r} already completed; nothing to resume")
    if summary["status"] == "running":
        raise LearnDropError(f"run {run_id!r} is still running")
    checkpoint = load_checkpoint(store.path(run_id))
    history, set_aside = store.truncate_events(run_id, checkpoint["events"])
    checkpoint["set_aside"], checkpoint["previous_status"] = set_aside, summary["status"]
    store.mark_running(run_id)
    return checkpoint, history, RunWriter(store.path(run_id), run_id)


def resume(store: RunStore, run_id: str, sinks: Sequence[ev.Sink] = (), control: TrainingControl | None = None
           ) -> dict:
    config = store.config(run_id)
    setup = prepare(config, store)  # the data again, and a model the checkpoint overwrites
    checkpoint, history, writer = open_for_resume(store, run_id)
    try:
        return train(config, [writer, *sinks], control=control or TrainingControl(config.policy), run_id=run_id,
                     run_dir=writer.dir, setup=setup, checkpoint=checkpoint, history=history)
    finally:
        writer.close()
