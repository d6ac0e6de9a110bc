"""Live runs: a thread-safe registry that trains queued runs one at a time in a background thread.

The dashboard holds one ``RunRegistry`` (``st.cache_resource``); the training thread never touches
Streamlit. Each live run keeps its events in one in-memory list that readers page through with a
cursor (``events_since``), so many viewers share it without copies; once a run ends its events are
read back from the run store.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

from . import events as ev
from .config import RunConfig
from .control import TrainingControl
from .errors import LearnDropError
from .runs import RunStore, validate_run_id

QUEUED, RUNNING, FINISHED = "queued", "running", "finished"


@dataclass
class LiveRun:
    run_id: str
    config: RunConfig
    control: TrainingControl
    phase: str = QUEUED  # queued | running | finished
    error: str | None = None  # why it failed, one line
    events: list[ev.Event] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def append(self, event: ev.Event) -> None:
        with self.lock:
            self.events.append(event)


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

    # --- starting ---------------------------------------------------------------------------------
    def submit(self, config: RunConfig) -> str:
        """Validate and queue a run; it starts as soon as no other training runs. Returns its id."""
        config.validate()
        run_id = self.store.new_run_id(config)
        run = LiveRun(run_id, config, TrainingControl(config.policy))
        with self._lock:
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
                    run.phase, run.error = FINISHED, None
                    continue
                run.phase = RUNNING
                thread = threading.Thread(target=self._work, args=(run,), name=f"train-{run.run_id}", daemon=True)
                self._threads[run.run_id] = thread
                thread.start()
                running += 1

    def _work(self, run: LiveRun) -> None:
        from .train import prepare, train  # torch-heavy; imported in the worker

        writer = None
        try:
            setup = prepare(run.config)
            writer = self.store.create(run.config, run.run_id)
            train(run.config, [writer, run.append], control=run.control, run_id=run.run_id, run_dir=writer.dir,
                  setup=setup)
        except LearnDropError as exc:
            run.error = str(exc)
        except Exception as exc:  # a bug of ours: keep the message for the page, the run is recorded failed
            run.error = f"{type(exc).__name__}: {exc}"
        finally:
            if writer is not None:
                writer.close()
            run.phase = FINISHED
            self._forget_old()
            self._start_next()

    def _forget_old(self) -> None:
        """Keep only the newest finished runs in memory; older ones are read from disk."""
        with self._lock:
            finished = [r for r in self._runs.values() if r.phase == FINISHED and r.error is None]
            for run in finished[:-self.keep_finished] if self.keep_finished else finished:
                del self._runs[run.run_id]

    # --- steering -----------------------------------------------------------------------------------
    def _live(self, run_id: str) -> LiveRun:
        run = self._runs.get(validate_run_id(run_id))
        if run is None or run.phase == FINISHED:
            raise LearnDropError(f"run {run_id!r} is not running")
        return run

    def stop(self, run_id: str) -> None:
        self._live(run_id).control.request_stop()

    def pause(self, run_id: str) -> None:
        self._live(run_id).control.pause()

    def resume(self, run_id: str) -> None:
        self._live(run_id).control.resume()

    def set_thresholds(self, run_id: str, **changes: float | int) -> None:
        self._live(run_id).control.set_thresholds(**changes)

    # --- reading --------------------------------------------------------------------------------------
    def get(self, run_id: str) -> LiveRun | None:
        with self._lock:
            return self._runs.get(run_id)

    def phase(self, run_id: str) -> str | None:
        run = self.get(run_id)
        return run.phase if run else None

    def is_live(self, run_id: str) -> bool:
        return self.phase(run_id) in (QUEUED, RUNNING)

    def live_run_ids(self) -> list[str]:
        with self._lock:
            return [r.run_id for r in self._runs.values() if r.phase in (QUEUED, RUNNING)]

    def events_since(self, run_id: str, cursor: int = 0) -> tuple[list[ev.Event], int]:
        """Events after position ``cursor`` and the new cursor: from memory while live, else from disk."""
        run = self.get(run_id)
        if run is not None and (run.phase != FINISHED or run.events):
            with run.lock:
                new = run.events[cursor:]
                return list(new), cursor + len(new)
        if not self.store.exists(run_id):
            return [], cursor
        events = self.store.events(run_id).events
        return events[cursor:], len(events)

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
