"""A run the dashboard's queue holds (``runs.queue``): its config and control, its state, its events in
memory."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .. import events as ev
from ..config import RunConfig
from ..status import LIVE, RunState
from ..training.control import TrainingControl


@dataclass
class LiveRun:
    """A run the queue holds: waiting, training, or ended and kept a while (``keep_finished``)."""

    run_id: str
    config: RunConfig
    control: TrainingControl
    # queued -> running -> how it ended (its stored status, or not started); paused is the control's, not
    # stored
    state: RunState = RunState.QUEUED
    error: str | None = None  # why it failed or never started, one line
    events: list[ev.Event] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    baseline_id: str | None = None  # the baseline queued right after this run
    compared_with: str | None = None  # this run is the baseline queued right after that run
    continues: bool = False  # a stopped, failed or interrupted run continued from its checkpoint (resume_run)
    tensorboard: Path | None = None  # also write a TensorBoard log to this folder (report/tensorboard.py)

    def append(self, event: ev.Event) -> None:
        """The run's sink: each event the training emits, as it emits it."""
        with self.lock:
            self.events.append(event)

    def events_after(self, cursor: int) -> list[ev.Event]:
        """A copy of the events after position ``cursor``."""
        with self.lock:
            return self.events[cursor:]

    def holds_events(self) -> bool:
        """Whether this run's events are read from its list rather than from its events.jsonl: while it is
        live, and after it ended while it is kept. A continued run reads its old record from disk until its
        worker has put the events up to the checkpoint in the list."""
        with self.lock:
            return bool(self.events) or (self.state in LIVE and not self.continues)


def baseline_config(config: RunConfig) -> RunConfig:
    """The same run with the ``none`` policy: full training, scores still recorded."""
    return dataclasses.replace(config, policy=dataclasses.replace(config.policy, name="none"))
