"""Live runs: a thread-safe registry that trains queued runs one at a time in a background thread.

The dashboard holds one ``RunRegistry`` (``st.cache_resource``); the training thread never touches
Streamlit. Each live run keeps its events in one in-memory list that readers page through with a
cursor (``events_since``), so many viewers share it without copies; once a run ends its events are
read back from the run store. ``view(run_id)`` gives the one ``RunView`` (events by type, cached
tables) that every session watching a run shares. A run may be submitted with a baseline (policy
``none``, same config, seed and data order), queued right after it and linked to it. A stopped,
failed or interrupted run with a checkpoint can be queued again to continue under its own id
(``resume_run``; ``pause``/``resume`` only hold and release a live run).
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .. import events as ev
from ..training.checkpoint import FILENAME as CHECKPOINT
from ..report.compare import find_baseline
from ..config import PolicyConfig, RunConfig
from ..training.control import TrainingControl
from ..errors import LearnDropError
from .store import RunStore, iter_new_events, validate_run_id
from ..report.view import RunView

QUEUED, RUNNING, FINISHED = "queued", "running", "finished"
RESUMABLE = ("stopped", "failed", "interrupted")  # stored statuses a run can continue from
MAX_VIEWS = 32  # runs whose views stay in memory (live runs always do)


@dataclass
class LiveRun:
    run_id: str
    config: RunConfig
    control: TrainingControl
    phase: str = QUEUED  # queued | running | finished
    error: str | None = None  # why it failed or never started, one line
    events: list[ev.Event] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    baseline_id: str | None = None  # the baseline queued right after this run
    baseline_for: str | None = None  # this run is the baseline of that run
    continues: bool = False  # a stopped, failed or interrupted run continued from its checkpoint (resume_run)

    def append(self, event: ev.Event) -> None:
        with self.lock:
            self.events.append(event)


@dataclass
class _ViewEntry:
    view: RunView
    lock: threading.Lock = field(default_factory=threading.Lock)
    source: object = None  # the LiveRun it reads from memory, or "disk"
    cursor: int = 0  # events read from the LiveRun's list
    offset: int = 0  # bytes of events.jsonl read
    file_id: tuple[int, int] | None = None  # (device, inode) of that file: a rewrite (resume) starts over


def baseline_config(config: RunConfig) -> RunConfig:
    """The same run with the ``none`` policy: full training, scores still recorded."""
    return dataclasses.replace(config, policy=dataclasses.replace(config.policy, name="none"))


class RunRegistry:
    """Queue, start, steer and read runs. One training at a time (``max_parallel``) by default."""

    def __init__(self, store: RunStore, max_parallel: int = 1, keep_finished: int = 4):
        self.store = store
        self.max_parallel = max_parallel
        self.keep_finished = keep_finished  # finished runs whose events stay in memory
        self._runs: dict[str, LiveRun] = {}
        self._queue: collections.deque[str] = collections.deque()
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._views: collections.OrderedDict[str, _ViewEntry] = collections.OrderedDict()
        self._views_lock = threading.Lock()
        self._summaries: dict[str, tuple[Any, dict[str, Any]]] = {}
        self._configs: dict[str, dict[str, Any] | None] = {}  # stored configs never change
        self._baselines: dict[str, tuple[tuple[str, ...], str | None]] = {}  # run -> (runs then, its baseline)

    # --- starting ---------------------------------------------------------------------------------
    def submit(self, config: RunConfig, with_baseline: bool = False) -> str:
        """Validate and queue a run (and its baseline right after it); returns the run's id.

        It starts as soon as no other training runs; ``queued_behind`` says what it waits for.
        ``LearnDropError`` naming the runs folder and why when runs cannot be written there.
        """
        config.validate()
        self.store.check_writable()  # a runs folder it cannot write in refuses here, before any data are loaded
        run = LiveRun(self.store.new_run_id(config), config, TrainingControl(config.policy))
        runs = [run]
        if with_baseline and config.policy.name != "none":
            base_cfg = baseline_config(config)
            base = LiveRun(self.store.new_run_id(base_cfg), base_cfg, TrainingControl(base_cfg.policy),
                           baseline_for=run.run_id)
            run.baseline_id = base.run_id
            runs.append(base)
        with self._lock:
            for r in runs:
                self._runs[r.run_id] = r
                self._queue.append(r.run_id)
        self._start_next()
        return run.run_id

    def resume_problem(self, run_id: str) -> str | None:
        """Why the run cannot continue from its checkpoint (one line), or None when ``resume_run`` may."""
        validate_run_id(run_id)
        if self.is_live(run_id):
            return f"run {run_id} is {self.status(run_id)}: it continues by itself"
        if not self.store.exists(run_id):
            return f"run {run_id} has no folder in {str(self.store.root)!r} (it never started): nothing to resume"
        status = self.summary(run_id)["status"]
        if status == "completed":
            return f"run {run_id} already completed: nothing to resume"
        if status not in RESUMABLE:
            return f"run {run_id} is {status}: only a stopped, failed or interrupted run can resume"
        if not (self.store.path(run_id) / CHECKPOINT).is_file():
            return (f"run {run_id} has no checkpoint to resume from: it {status} before its first epoch ended "
                    "(a checkpoint is written at the end of each epoch)")
        return None

    def resume_run(self, run_id: str) -> str:
        """Queue a stopped, failed or interrupted run to continue from its last checkpoint, under its own id.

        It waits for its turn like any run (one training at a time); the events written after the
        checkpoint are set aside when it starts (``resume.open_for_resume``). ``LearnDropError`` with
        ``resume_problem``'s reason when it cannot.
        """
        problem = self.resume_problem(run_id)
        if problem:
            raise LearnDropError(problem)
        self.store.check_writable()
        config = self.store.config(run_id)
        run = LiveRun(run_id, config, TrainingControl(config.policy), continues=True)
        with self._lock:
            if run_id in self._runs and self._runs[run_id].phase != FINISHED:
                raise LearnDropError(f"run {run_id} is already queued or running")
            self._runs.pop(run_id, None)  # the ended run it continues; re-inserted last (newest)
            self._runs[run_id] = run
            self._queue.append(run_id)
        self._start_next()
        return run_id

    def _start_next(self) -> None:
        with self._lock:
            running = sum(1 for r in self._runs.values() if r.phase == RUNNING)
            while self._queue and running < self.max_parallel:
                run = self._runs[self._queue.popleft()]
                if run.control.stop_requested:  # stopped while queued
                    run.phase = FINISHED
                    run.error = run.error or "stopped before it started"
                    continue
                run.phase = RUNNING
                thread = threading.Thread(target=self._work, args=(run,), name=f"train-{run.run_id}", daemon=True)
                self._threads[run.run_id] = thread
                thread.start()
                running += 1

    def _work(self, run: LiveRun) -> None:
        from .recorder import RunRecorder  # torch-heavy; imported in the worker
        from ..training.prepare import prepare

        def kept(history: list[ev.Event]) -> None:
            with run.lock:
                run.events[:0] = history

        try:
            setup = prepare(run.config, self.store)  # the store: where init_from runs are looked up
            recorder = RunRecorder(self.store)
            if run.continues:  # the events up to the checkpoint come first, as they are on disk
                recorder.resume(run.run_id, [run.append], run.control, setup=setup, kept=kept)
            else:
                recorder.start(run.config, [run.append], run.control, run_id=run.run_id, setup=setup)
        except LearnDropError as exc:
            run.error = str(exc)
        except Exception as exc:  # a bug of ours: keep the message for the page, the run is recorded failed
            run.error = f"{type(exc).__name__}: {exc}"
        finally:
            # a baseline only makes sense next to a run that went the full way
            if run.baseline_id and (run.error or run.control.stop_requested):
                self._cancel_queued(run.baseline_id, f"not started: its Learn&Drop run {run.run_id} "
                                                     f"{'failed' if run.error else 'was stopped'}")
            run.phase = FINISHED
            self._forget_old()
            self._start_next()

    def _cancel_queued(self, run_id: str, reason: str) -> None:
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None and run.phase == QUEUED:
                run.error = reason
                run.control.request_stop()

    def _forget_old(self) -> None:
        """Keep only the newest finished runs in memory; older ones are read from disk."""
        with self._lock:
            for failed in (False, True):
                finished = [r for r in self._runs.values() if r.phase == FINISHED and (r.error is not None) == failed]
                keep = self.keep_finished * (4 if failed else 1)  # failures have no folder: keep more of them
                for run in finished[:-keep] if keep else finished:
                    del self._runs[run.run_id]

    # --- steering -----------------------------------------------------------------------------------
    def _live(self, run_id: str) -> LiveRun:
        run = self._runs.get(validate_run_id(run_id))
        if run is None or run.phase == FINISHED:
            raise LearnDropError(f"run {run_id!r} is not running")
        return run

    def stop(self, run_id: str) -> None:
        """Stop a running run within a step, or cancel a queued one; its queued baseline goes too."""
        run = self._live(run_id)
        if run.phase == QUEUED:
            self._cancel_queued(run_id, "stopped before it started")
        run.control.request_stop()
        if run.baseline_id:
            self._cancel_queued(run.baseline_id, f"not started: its Learn&Drop run {run_id} was stopped")

    def pause(self, run_id: str) -> None:
        self._live(run_id).control.pause()

    def resume(self, run_id: str) -> None:
        self._live(run_id).control.resume()

    def set_thresholds(self, run_id: str, **changes: float | int) -> PolicyConfig:
        """Change a live run's tau, kappa, warmup or patience; they act at its next check."""
        return self._live(run_id).control.set_thresholds(**changes)

    # --- reading --------------------------------------------------------------------------------------
    def get(self, run_id: str) -> LiveRun | None:
        with self._lock:
            return self._runs.get(run_id)

    def phase(self, run_id: str) -> str | None:
        run = self.get(run_id)
        return run.phase if run else None

    def is_live(self, run_id: str) -> bool:
        return self.phase(run_id) in (QUEUED, RUNNING)

    def is_paused(self, run_id: str) -> bool:
        run = self.get(run_id)
        return run is not None and run.phase == RUNNING and run.control.paused

    def policy(self, run_id: str) -> PolicyConfig | None:
        """The thresholds a live run uses now (``None`` when it is not live)."""
        run = self.get(run_id)
        return run.control.policy() if run is not None and run.phase != FINISHED else None

    def live_run_ids(self) -> list[str]:
        with self._lock:
            return [r.run_id for r in self._runs.values() if r.phase in (QUEUED, RUNNING)]

    def training_and_queued(self) -> tuple[list[str], list[str]]:
        """The runs training now (paused ones included) and those waiting their turn, in queue order."""
        with self._lock:
            training = [r.run_id for r in self._runs.values() if r.phase == RUNNING]
            waiting = [self._runs.get(r) for r in self._queue]
            queued = [r.run_id for r in waiting if r is not None and r.phase == QUEUED and not r.control.stop_requested]
            return training, queued

    def queued_behind(self, run_id: str) -> list[str]:
        """The runs a queued run waits for: those training now, then those ahead of it in the queue."""
        with self._lock:
            if run_id not in self._queue:
                return []
            ahead = list(self._queue)[:list(self._queue).index(run_id)]
            return [r.run_id for r in self._runs.values() if r.phase == RUNNING] + ahead

    def baseline_of(self, run_id: str) -> str | None:
        run = self.get(run_id)
        return run.baseline_id if run else None

    def find_baseline(self, run_id: str) -> str | None:
        """The run's linked baseline (queued with it), else the newest stored run that fits as one
        (``compare.find_baseline``); looked up again only when the set of runs changes."""
        linked = self.baseline_of(run_id)
        if linked:
            return linked
        run_ids = tuple(self.store.run_ids())
        key = (*run_ids, "|", *self.live_run_ids())  # a run that finishes may become the better match
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

    def active_of(self, run_id: str) -> str | None:
        """The live one of a run and its linked baseline (the one Stop and Pause act on), if any."""
        for candidate in (run_id, self.baseline_of(run_id)):
            if candidate and self.is_live(candidate):
                return candidate
        return None

    def status(self, run_id: str) -> str | None:
        """queued, running, paused, or the stored status (completed, stopped, failed, interrupted);
        ``not started`` for a run that failed or was cancelled before it had a folder; None if unknown."""
        run = self.get(run_id)
        if run is not None and run.phase != FINISHED:
            return "paused" if self.is_paused(run_id) else run.phase
        if self.store.exists(run_id):
            return self.summary(run_id)["status"]
        return "not started" if run is not None else None

    def events_since(self, run_id: str, cursor: int = 0) -> tuple[list[ev.Event], int]:
        """Events after position ``cursor`` and the new cursor: from memory while live, else from disk."""
        run = self.get(run_id)
        if _in_memory(run):
            with run.lock:
                new = run.events[cursor:]
                return list(new), cursor + len(new)
        if not self.store.exists(run_id):
            return [], cursor
        events = self.store.events(run_id).events
        return events[cursor:], len(events)

    def view(self, run_id: str) -> RunView:
        """The shared view of a run, brought up to date: from memory while the registry holds the run,
        else read incrementally from its events.jsonl (which also follows a run another process writes,
        and starts over when the file is rewritten, as a resumed run's is)."""
        validate_run_id(run_id)
        with self._views_lock:
            entry = self._views.get(run_id)
            if entry is None:
                entry = self._views[run_id] = _ViewEntry(RunView(run_id))
            self._views.move_to_end(run_id)
            self._evict_views()
        with entry.lock:
            run = self.get(run_id)
            if _in_memory(run):
                if entry.source is not run:
                    entry.view, entry.source, entry.cursor = RunView(run_id), run, 0
                with run.lock:
                    new = run.events[entry.cursor:]
                entry.cursor += len(new)
                entry.view.extend(new)
                return entry.view
            path = self.store.path(run_id) / "events.jsonl"
            try:
                stat = path.stat()
                file_id = (stat.st_dev, stat.st_ino)
            except OSError:
                stat, file_id = None, None
            if entry.source != "disk" or file_id != entry.file_id or (stat and stat.st_size < entry.offset):
                entry.view, entry.source, entry.offset, entry.file_id = RunView(run_id), "disk", 0, file_id
            if stat is not None and stat.st_size > entry.offset:
                new, entry.offset = iter_new_events(path, entry.offset)
                entry.view.extend(new)
            return entry.view

    def _evict_views(self) -> None:
        live = set(self.live_run_ids())
        for run_id in list(self._views):
            if len(self._views) <= MAX_VIEWS:
                break
            if run_id not in live:
                del self._views[run_id]

    def summary(self, run_id: str) -> dict[str, Any]:
        """The run's summary: live from its view while the registry runs it, else the store's (cached
        while its files are unchanged)."""
        run = self.get(run_id)
        if run is not None and run.phase != FINISHED:
            summary = self.view(run_id).summary()
            summary.update(run_id=run_id, status="paused" if self.is_paused(run_id) else run.phase)
            return summary
        path = self.store.path(run_id)
        stamp = tuple(_stat(path / name) for name in ("summary.json", "events.jsonl", "process.json"))
        cached = self._summaries.get(run_id)
        if cached is None or cached[0] != stamp:
            cached = (stamp, self.store.summary(run_id))
            self._summaries[run_id] = cached
        return dict(cached[1])

    def run_ids(self) -> list[str]:
        """Every run: on disk, and those the registry holds without a folder yet; newest first."""
        with self._lock:
            in_memory = list(self._runs)
        return sorted(set(self.store.run_ids()) | set(in_memory), reverse=True)

    def wait(self, run_id: str, timeout: float | None = None) -> bool:
        """Block until the run has finished (for tests and the CLI); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_live(run_id):
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        thread = self._threads.get(run_id)
        if thread is not None:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return True


def _in_memory(run: LiveRun | None) -> bool:
    """Whether a run's events are read from the registry's list rather than from its events.jsonl: while it
    is live, and after it ended while they are kept. A continued run reads its old record from disk until
    its worker has put the events up to the checkpoint in the list."""
    if run is None:
        return False
    with run.lock:
        return bool(run.events) or (run.phase != FINISHED and not run.continues)


def _stat(path) -> tuple[int, int] | None:
    try:
        st = path.stat()
        return st.st_mtime_ns, st.st_size
    except OSError:
        return None
