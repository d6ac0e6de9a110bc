"""The run catalogue: every run of a runs folder as the pages read it, whoever trains it or trained it.

A run's state, summary and events come from the queue while it holds the run (live, or ended and kept),
else from the run store on disk, which also covers runs another process writes (the CLI, a second
server) and runs of an earlier server. ``view(run_id)`` gives the one ``RunView`` (events by type,
cached tables) that every session watching a run shares, brought up to date from the queue's list or
by following the run's events.jsonl (``follow.EventFollower``). What is read from disk is cached while
the files it comes from are unchanged, since every page asks for every run's status on every rerun.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import events as ev
from ..errors import LearnDropError
from ..report.compare import find_baseline
from ..report.view import RunView
from ..status import LIVE, RESUMABLE, RunState
from ..training.checkpoint import FILENAME as CHECKPOINT
from .claim import holder_text
from .follow import EventFollower
from .live import LiveRun
from .queue import RunQueue
from .store import RunStore, validate_run_id

MAX_VIEWS = 32  # runs whose views stay in memory (live runs always do)


@dataclass
class _ViewEntry:
    view: RunView
    lock: threading.Lock = field(default_factory=threading.Lock)
    source: LiveRun | None = None  # the queue's run it reads from memory; None: from the file
    cursor: int = 0  # events read from that run's list
    follower: EventFollower | None = None  # reading events.jsonl, while the source is the file


class RunCatalogue:
    """Status, summary, shared view and baseline of any run of ``store``, live ones through ``queue``."""

    def __init__(self, store: RunStore, queue: RunQueue):
        self.store = store
        self.queue = queue
        self._views: collections.OrderedDict[str, _ViewEntry] = collections.OrderedDict()
        self._views_lock = threading.Lock()
        self._summaries: dict[str, tuple[Any, dict[str, Any]]] = {}
        self._configs: dict[str, dict[str, Any] | None] = {}  # stored configs never change
        # run -> (runs then, its baseline)
        self._baselines: dict[str, tuple[tuple[str, ...], str | None]] = {}

    # --- which runs, in which state ----------------------------------------------------------------
    def run_ids(self) -> list[str]:
        """Every run: on disk, and those the queue holds without a folder yet; newest first."""
        return sorted(set(self.store.run_ids()) | set(self.queue.run_ids()), reverse=True)

    def status(self, run_id: str) -> RunState | None:
        """queued, running or paused while the queue holds it live; else the stored status (completed,
        stopped, failed, interrupted, or running for a run another process trains); ``not started`` for a
        run the queue ended before it had a folder; None for a run nobody knows."""
        state = self.queue.state(run_id)
        if state in LIVE:
            return state
        if self.store.exists(run_id):
            return RunState(self.summary(run_id)["status"])
        return RunState.NOT_STARTED if state is not None else None

    def summary(self, run_id: str) -> dict[str, Any]:
        """The run's summary: live from its view while the queue runs it, else the store's (cached while its
        files are unchanged)."""
        state = self.queue.state(run_id)
        if state in LIVE:
            summary = self.view(run_id).summary()
            summary.update(run_id=run_id, status=state.value)
            return summary
        path = self.store.path(run_id)
        stamp = tuple(_stat(path / name)
                      for name in ("summary.json", "events.jsonl", "process.json", "config.json"))
        cached = self._summaries.get(run_id)
        # a run another process trains is live while that process holds its lock: asked again each time, since
        # a process killed outright changes no file
        stale = (cached is not None and cached[1]["status"] == RunState.RUNNING
                 and not self.store.is_live(run_id))
        if cached is None or cached[0] != stamp or stale:
            cached = (stamp, self.store.summary(run_id))
            self._summaries[run_id] = cached
        return dict(cached[1])

    def trainer(self, run_id: str) -> str | None:
        """Who trains a run that another process trains (``process 1234 on host 'box' (since …)``), else
        None."""
        if self.queue.is_live(run_id) or not self.store.exists(run_id) or not self.store.is_live(run_id):
            return None
        return holder_text(self.store.path(run_id))

    def config(self, run_id: str) -> dict[str, Any] | None:
        """A recorded run's config as a dict (read once: stored configs never change); None when
        unreadable."""
        return self._stored_config(run_id)

    def resume_problem(self, run_id: str) -> str | None:
        """Why the run cannot continue from its checkpoint (one line), or None when it can."""
        validate_run_id(run_id)
        if self.queue.is_live(run_id):
            return f"run {run_id} is {self.status(run_id)}: it continues by itself"
        if not self.store.exists(run_id):
            return (f"run {run_id} has no folder in {str(self.store.root)!r} (it never started): nothing to "
                    "resume")
        status = self.summary(run_id)["status"]
        if status == RunState.COMPLETED:
            return f"run {run_id} already completed: nothing to resume"
        if status == RunState.DAMAGED:
            return f"run {run_id} is damaged: {self.summary(run_id)['error']}"
        if (trainer := self.trainer(run_id)) is not None:
            return (f"run {run_id} is being trained by {trainer}, which holds the run's lock; it can resume "
                    "here once that process has ended (stop it there: Ctrl-C, or kill it)")
        if status not in RESUMABLE:
            return f"run {run_id} is {status}: only a stopped, failed or interrupted run can resume"
        if not (self.store.path(run_id) / CHECKPOINT).is_file():
            return (f"run {run_id} has no checkpoint to resume from: it {status} before its first epoch "
                    "ended (a checkpoint is written at the end of each epoch)")
        return None

    # --- events ---------------------------------------------------------------------------------------
    def events_since(self, run_id: str, cursor: int = 0) -> tuple[list[ev.Event], int]:
        """Events after position ``cursor`` and the new cursor: from memory while the queue holds them, else
        from disk."""
        run = self.queue.get(run_id)
        if run is not None and run.holds_events():
            new = run.events_after(cursor)
            return new, cursor + len(new)
        if not self.store.exists(run_id):
            return [], cursor
        events = self.store.events(run_id).events
        return events[cursor:], len(events)

    def view(self, run_id: str) -> RunView:
        """The shared view of a run, brought up to date: from memory while the queue holds the run's events,
        else from its events.jsonl, read on from where it was (a run another process writes is followed;
        a rewritten log, as a resumed run's is, is read again from its start)."""
        validate_run_id(run_id)
        with self._views_lock:
            entry = self._views.get(run_id)
            if entry is None:
                entry = self._views[run_id] = _ViewEntry(RunView(run_id))
            self._views.move_to_end(run_id)
            self._evict_views()
        with entry.lock:
            run = self.queue.get(run_id)
            if run is not None and run.holds_events():
                if entry.source is not run:  # a new run under this id (a continued run): start over
                    entry.view = RunView(run_id)
                    entry.source = run
                    entry.cursor = 0
                    entry.follower = None
                new = run.events_after(entry.cursor)
                entry.cursor += len(new)
                entry.view.extend(new)
                return entry.view
            if entry.follower is None:  # first read, or the queue let go of the run: the file from its start
                entry.view, entry.source = RunView(run_id), None
                entry.follower = EventFollower(self.store.path(run_id) / "events.jsonl")
            new, restarted = entry.follower.poll()
            if restarted:
                entry.view = RunView(run_id)
            entry.view.extend(new)
            return entry.view

    def _evict_views(self) -> None:
        live = set(self.queue.live_run_ids())
        for run_id in list(self._views):
            if len(self._views) <= MAX_VIEWS:
                break
            if run_id not in live:
                del self._views[run_id]

    # --- baselines ------------------------------------------------------------------------------------
    def find_baseline(self, run_id: str) -> str | None:
        """The run's linked baseline (queued with it), else the newest stored run that fits as one
        (``compare.find_baseline``); looked up again only when the set of runs changes."""
        linked = self.queue.baseline_of(run_id)
        if linked:
            return linked
        run_ids = tuple(self.store.run_ids())
        key = (*run_ids, "|", *self.queue.live_run_ids())  # a run that finishes may become the better match
        cached = self._baselines.get(run_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        configs = {r: c for r in run_ids if (c := self._stored_config(r)) is not None}
        statuses = {r: self.status(r) or "" for r, c in configs.items()
                    if (c.get("policy") or {}).get("name") == "none"}
        found = find_baseline(run_id, configs, statuses) if run_id in configs else None
        self._baselines[run_id] = (key, found)
        return found

    def _stored_config(self, run_id: str) -> dict[str, Any] | None:
        if run_id not in self._configs:
            try:
                self._configs[run_id] = self.store.config(run_id).to_dict()
            except (LearnDropError, ValueError, OSError):
                self._configs[run_id] = None  # a config from another version of the code: never a match
        return self._configs[run_id]


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
        return st.st_mtime_ns, st.st_size
    except OSError:
        return None


__all__ = ["MAX_VIEWS", "RunCatalogue"]
