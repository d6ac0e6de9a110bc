"""The one place that turns a training into a run folder: a new run, or one continued from its checkpoint.

``RunRecorder(store).start(config)`` validates and prepares first (bad input costs no folder), creates
the run, trains it with the store's writer and ``inside.InsideRecorder`` among the sinks, saves after
every epoch the last good model (``model.pt``) and everything needed to continue (``checkpoint.pt``),
and the final model when the run completes or is stopped. ``resume(run_id)`` checks that the run can
continue, sets aside the events written after its checkpoint (kept in ``events.before-resume-N.jsonl``) and
trains on from there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from .. import events as ev
from ..config import RunConfig
from ..errors import LearnDropError
from ..files import save_tensors
from ..status import RunState
from ..training.checkpoint import load_checkpoint, save_checkpoint
from ..training.control import TrainingControl
from ..training.loop import train
from ..training.prepare import Setup
from ..training.world import World
from .finetune import prepare_run
from .inside import InsideRecorder
from .store import RunStore, RunWriter, read_events


class RunRecorder:
    def __init__(self, store: RunStore | None = None):
        self.store = store or RunStore()

    def start(self, config: RunConfig, sinks: Sequence[ev.Sink] = (), control: TrainingControl | None = None,
              *, run_id: str | None = None, setup: Setup | None = None,
              world: World | None = None) -> dict[str, Any]:
        """Train a new run (``run_id``: a chosen id, else a fresh one) and return its summary; ``world``: rank
        0 of a data-parallel run, whose other processes call ``train`` themselves."""
        setup = setup or prepare_run(config, self.store)  # bad input fails here, before a run folder exists
        config = dataclasses.replace(config, normalize=setup.normalization.name)  # recorded as resolved
        writer = self.store.create(config, run_id)
        try:
            return self._record(config, setup, writer, sinks, control, None, [], world)
        finally:
            self._forget_if_empty(writer)

    def resume(self, run_id: str, sinks: Sequence[ev.Sink] = (), control: TrainingControl | None = None, *,
               setup: Setup | None = None, kept: Callable[[list[ev.Event]], None] | None = None,
               device: str | None = None, world: World | None = None) -> dict[str, Any]:
        """Continue a stopped, failed or interrupted run from its last checkpoint; its summary.

        ``kept`` receives the run's events up to the checkpoint before training goes on (a live view
        shows them first, as they are on disk); ``device``: continue there, not on the run's own (a run
        started on a GPU goes on on a CPU; ``checkpoint_restored`` says where). ``world``: rank 0 of a
        data-parallel run, which hands the others the checkpoint (or the reason there is none)."""
        world = world or World()
        try:
            config = self.store.config(run_id)
            if device is not None:
                config = dataclasses.replace(config, device=device)
                config.validate()
            # the data again, and a model the checkpoint overwrites
            setup = setup or prepare_run(config, self.store)
            checkpoint, history, writer = self.open_for_resume(run_id)
        except LearnDropError as exc:
            world.broadcast(str(exc))  # the other processes stop with the same error
            raise
        world.broadcast((config, checkpoint))
        if kept is not None:
            kept(history)
        return self._record(config, setup, writer, sinks, control, checkpoint, history, world)

    def open_for_resume(self, run_id: str) -> tuple[dict, list[ev.Event], RunWriter]:
        """Take the run (its lock: of two resumes at once, one trains and the other gets one line), check it
        can continue, set aside the events written after its checkpoint, reopen its log.

        Returns the checkpoint (with ``set_aside`` and ``previous_status`` added), the events up to it, and
        a writer that appends to events.jsonl and holds the run until it ends.
        """
        if (problem := self.store.problem(run_id)) is not None:
            raise LearnDropError(f"run {run_id!r} is damaged: {problem}")
        claim = self.store.claim(run_id)
        try:
            summary = self.store.summary(run_id, claimed=True)
            if summary["status"] == RunState.COMPLETED:
                raise LearnDropError(f"run {run_id!r} already completed; nothing to resume")
            checkpoint = load_checkpoint(self.store.path(run_id))
            history, set_aside = self.store.truncate_events(run_id, checkpoint["events"])
            checkpoint["set_aside"], checkpoint["previous_status"] = set_aside, summary["status"]
            return checkpoint, history, RunWriter(self.store.path(run_id), run_id, claim)
        except BaseException:
            claim.release()
            raise

    def _forget_if_empty(self, writer: RunWriter) -> None:
        """A new run that ended before its first training step (refused once training began, stopped while its
        data were moved, a SIGTERM) has nothing worth keeping: its folder goes, and nothing is listed."""
        events = read_events(writer.dir / "events.jsonl").events
        if not any(isinstance(e, (ev.Progress, ev.EpochEnded)) or e.step > 0 for e in events):
            writer.close()
            self.store.remove_empty(writer.run_id)

    def _record(self, config: RunConfig, setup: Setup, writer: RunWriter, sinks: Sequence[ev.Sink],
                control: TrainingControl | None, checkpoint: dict | None, history: list[ev.Event],
                world: World | None = None) -> dict:
        run_dir = writer.dir
        lines = _line_count(run_dir / "events.jsonl")  # the events.jsonl lines a checkpoint keeps

        def count(event: ev.Event) -> None:
            nonlocal lines
            lines += 1

        def save_epoch(payload: dict) -> None:
            save_model(payload["model"], run_dir)
            save_checkpoint(run_dir, {**payload, "events": lines})

        def save_final(event: ev.Event) -> None:  # before the writer writes the summary
            if isinstance(event, ev.RunFinished) and event.status in (RunState.COMPLETED, RunState.STOPPED):
                save_model(setup.model.state_dict(), run_dir)

        try:
            sinks = [count, save_final, writer, InsideRecorder(run_dir, setup), *sinks]
            return train(config, sinks, control=control or TrainingControl(config.policy),
                         setup=setup, run_id=writer.run_id, checkpoint=checkpoint, history=history,
                         on_epoch=save_epoch, world=world)
        finally:
            writer.close()


def save_model(state: dict[str, torch.Tensor], run_dir: Path) -> None:
    """Atomic write of the full network's state_dict (loaded back with ``weights_only=True``); a full disk is
    an ``OSError`` (ENOSPC) and leaves no model.pt.tmp."""
    save_tensors(run_dir / "model.pt", {k: v.detach().cpu() for k, v in state.items()})


def _line_count(path: Path) -> int:
    if not path.is_file():
        return 0
    with open(path, "rb") as f:
        return sum(1 for _ in f)
