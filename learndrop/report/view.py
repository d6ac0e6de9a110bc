"""A run as its viewers see it: its events indexed by type, and the tables drawn from them.

The run catalogue keeps one ``RunView`` per watched run, shared by every browser session that shows it
(no per-session copies of the events). ``extend`` appends what the run emitted since the last call;
each table is built once per change of the events it reads, under a lock, and then shared: callers
must treat the returned DataFrames as read-only.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .. import events as ev
from ..status import RunState
from ..summary import summarize
from . import tables

# table name -> (the event types it reads, the builder from tables.py)
TABLES: dict[str, tuple[tuple[str, ...], Callable[[Iterable[ev.Event]], pd.DataFrame]]] = {
    "epochs": (("epoch_ended",), tables.epochs_frame),
    "scores": (("unit_scores",), tables.scores_frame),
    "checks": (("unit_scores",), tables.checks_frame),
    "drops": (("unit_dropped",), tables.drops_frame),
    "progress": (("progress",), tables.progress_frame),
    "units": (("run_started",), tables.units_frame),
    "chunks": (("chunk_started", "chunk_ended"), tables.chunks_frame),
    "log": (tables.LOG_TYPES, tables.event_log_frame),
}
SUMMARY_TYPES = ("run_started", "epoch_ended", "unit_dropped", "run_finished", "cache_built")


class RunView:
    """One run's events, grouped by type in arrival order, with cached tables and summary."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self._lock = threading.RLock()
        self._by_type: dict[str, list[tuple[int, ev.Event]]] = defaultdict(list)  # (arrival index, event)
        self.count = 0  # events seen so far
        self._cache: dict[str, tuple[tuple[int, ...], Any]] = {}

    def extend(self, events: Iterable[ev.Event]) -> None:
        with self._lock:
            for event in events:
                self._by_type[event.type].append((self.count, event))
                self.count += 1

    def of_type(self, *types: str) -> list[ev.Event]:
        """The events of these types, in the order the run emitted them."""
        with self._lock:
            if len(types) == 1:
                return [e for _, e in self._by_type.get(types[0], ())]
            pairs = [p for t in types for p in self._by_type.get(t, ())]
        return [e for _, e in sorted(pairs, key=lambda p: p[0])]

    def last(self, type_: str) -> ev.Event | None:
        with self._lock:
            found = self._by_type.get(type_)
            return found[-1][1] if found else None

    def _version(self, types: Iterable[str]) -> tuple[int, ...]:
        return tuple(len(self._by_type.get(t, ())) for t in types)

    def table(self, name: str) -> pd.DataFrame:
        """A table of ``TABLES``, rebuilt only when its events changed. Read-only: it is shared."""
        types, build = TABLES[name]
        with self._lock:
            version = self._version(types)
            cached = self._cache.get(name)
            if cached is None or cached[0] != version:
                cached = (version, build(self.of_type(*types)))
                self._cache[name] = cached
            return cached[1]

    def derived(self, name: str, tables: tuple[str, ...], build: Callable[[], Any], extra: Any = None) -> Any:
        """A value drawn from some tables (a figure), rebuilt only when they (or ``extra``) change; shared
        by every viewer, so read-only. Building a Plotly figure costs far more than sending it."""
        with self._lock:
            version = (tuple(self._version(TABLES[t][0]) for t in tables), extra)
            cached = self._cache.get(f"derived:{name}")
            if cached is None or cached[0] != version:
                cached = (version, build())
                self._cache[f"derived:{name}"] = cached
            return cached[1]

    def summary(self) -> dict[str, Any]:
        """``summarize`` of the events so far (status "running" until run_finished arrives)."""
        with self._lock:
            version = self._version(SUMMARY_TYPES)
            cached = self._cache.get("_summary")
            if cached is None or cached[0] != version:
                cached = (version, summarize(self.of_type(*SUMMARY_TYPES)))
                self._cache["_summary"] = cached
            return dict(cached[1])

    # --- the facts pages ask for ----------------------------------------------------------------
    @property
    def started(self) -> ev.RunStarted | None:
        return self.last("run_started")  # type: ignore[return-value]

    @property
    def finished(self) -> ev.RunFinished | None:
        return self.last("run_finished")  # type: ignore[return-value]

    @property
    def config(self) -> dict[str, Any]:
        started = self.started
        return started.config if started else {}

    def unit_names(self) -> list[str]:
        """The droppable units in forward order (the head excluded)."""
        started = self.started
        return [u["name"] for u in started.units[:-1]] if started else []


@dataclass(frozen=True)
class ProgressStatus:
    epoch: int  # 1-based epoch in progress (the last one once finished)
    epochs: int
    epoch_step: int  # steps done in this epoch
    epoch_steps: int
    step: int  # optimizer steps done in the run
    total_steps: int
    images_per_s: float | None  # recent training throughput
    seconds_left: float | None  # estimate: remaining steps at the recent rate, plus evaluation
    fraction: float  # 0..1 of the run's steps

    def label(self) -> str:
        parts = [f"epoch {self.epoch}/{self.epochs}", f"step {self.epoch_step}/{self.epoch_steps}"]
        if self.images_per_s:
            parts.append(f"{self.images_per_s:,.0f} images/s")
        if self.seconds_left is not None:
            parts.append(f"about {duration(self.seconds_left)} left")
        return " · ".join(parts)


def progress_status(view: RunView, recent: int = 5) -> ProgressStatus | None:
    """Where a run stands, from its events; ``None`` before ``run_started``."""
    started = view.started
    if started is None:
        return None
    # with streaming (``stream`` chunks) each chunk is trained ``epochs`` epochs
    epochs = int(started.config.get("epochs") or 1) * int(started.config.get("stream") or 1)
    batch = int(started.config.get("batch_size") or 1)
    total_steps = getattr(started, "total_steps", 0) or started.steps_per_epoch * epochs
    progress = view.of_type("progress")[-recent:]
    last_end = view.last("epoch_ended")
    epochs_done = view.table("epochs")
    step = max([e.step for e in progress] + [last_end.step if last_end else 0])
    finished = view.finished is not None
    if progress and (last_end is None or progress[-1].step > last_end.step):
        epoch = progress[-1].epoch + 1
        epoch_step = progress[-1].epoch_step
        epoch_steps = progress[-1].epoch_steps
    elif last_end is not None:
        steps = progress[-1].epoch_steps if progress else started.steps_per_epoch
        epoch = last_end.epoch + 1
        epoch_step = steps
        epoch_steps = steps
    else:
        epoch = 1
        epoch_step = 0
        epoch_steps = started.steps_per_epoch
    rate = sum(p.images_per_s for p in progress) / len(progress) if progress else None
    seconds_left = None
    if not finished and rate:
        remaining_steps = max(0, total_steps - step)
        eval_s = float(epochs_done["eval_time_s"].mean()) if len(epochs_done) else 0.0
        seconds_left = remaining_steps * batch / rate + eval_s * (epochs - len(epochs_done))
    fraction = (1.0 if finished and view.finished.status == RunState.COMPLETED
                else min(1.0, step / max(1, total_steps)))
    return ProgressStatus(epoch, epochs, epoch_step, epoch_steps, step, total_steps, rate,
                          seconds_left, fraction)


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
