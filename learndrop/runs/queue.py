"""The training queue: runs wait their turn, train one at a time in a background thread, and are steered live.

A server holds one ``RunQueue`` per runs folder (the dashboard's, through ``RunRegistry``); its worker threads
never touch Streamlit. Each run it holds is a ``LiveRun`` whose events go to one in-memory list as the run
emits them, which every reader pages through with a cursor (no copies per viewer), and whose
``TrainingControl`` carries Stop, Pause and the live thresholds into the training loop. A run may be
submitted with a baseline (policy ``none``, same config, seed and data order), queued right after it and
linked to it. A stopped, failed or interrupted run can be queued again to continue under its own id
(``resume_run``; ``pause``/``resume`` only hold and release a live run).

The queue knows only the runs it holds: what a run is once it has ended, on disk or from another process,
is the catalogue's (``catalogue.RunCatalogue``).
"""

from __future__ import annotations

import collections
import threading
import time
from pathlib import Path

from ..config import PolicyConfig, RunConfig
from ..errors import LearnDropError
from ..status import ENDED, LIVE, RunState
from ..training.control import TrainingControl
from ..training.preflight import preflight
from .live import LiveRun, baseline_config
from .store import RunStore, check_writable_dir, validate_run_id
from .worker import train_live


class RunQueue:
    """Queue, start and steer runs. ``max_parallel`` trainings at a time (one by default: they would share
    the device and each other's timings); 0 holds every run queued (a reader that never trains, tests)."""

    def __init__(self, store: RunStore, max_parallel: int = 1, keep_finished: int = 4):
        self.store = store
        self.max_parallel = max_parallel
        self.keep_finished = keep_finished  # ended runs whose events stay in memory
        self._runs: dict[str, LiveRun] = {}  # in submission order
        self._queue: collections.deque[str] = collections.deque()
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}

    # --- starting ---------------------------------------------------------------------------------
    def submit(self, config: RunConfig, with_baseline: bool = False,
               tensorboard: str | Path | None = None) -> str:
        """Validate and queue a run (and its baseline right after it); returns the run's id.

        It starts as soon as the training slot is free; ``queued_behind`` says what it waits for.
        ``tensorboard``: a folder that gets each run's TensorBoard log in a subfolder named by its id (so a
        run and its baseline show side by side). ``LearnDropError`` naming the folder and why when runs, or
        that log, cannot be written there.
        """
        preflight(config)
        # a runs folder it cannot write in refuses here, before any data are loaded
        self.store.check_writable()
        if tensorboard:
            try:
                check_writable_dir(tensorboard, "TensorBoard folder")
            except LearnDropError as exc:
                raise LearnDropError(str(exc), field="tensorboard") from None
        board = Path(tensorboard) if tensorboard else None
        run = LiveRun(self.store.new_run_id(config), config, TrainingControl(config.policy),
                      tensorboard=board)
        runs = [run]
        if with_baseline and config.policy.name != "none":
            base_cfg = baseline_config(config)
            base = LiveRun(self.store.new_run_id(base_cfg), base_cfg, TrainingControl(base_cfg.policy),
                           compared_with=run.run_id, tensorboard=board)
            run.baseline_id = base.run_id
            runs.append(base)
        with self._lock:
            for r in runs:
                self._runs[r.run_id] = r
                self._queue.append(r.run_id)
        self._start_next()
        return run.run_id

    def resume_run(self, run_id: str) -> str:
        """Queue an ended run of the store to continue from its last checkpoint, under its own id.

        It waits for its turn like any run; the events written after the checkpoint are set aside when it
        starts (``RunRecorder.resume``). Whether the run can continue at all (its stored status, a
        checkpoint) is asked first: ``RunCatalogue.resume_problem``.
        """
        self.store.check_writable()
        config = self.store.config(run_id)
        run = LiveRun(run_id, config, TrainingControl(config.policy), continues=True)
        with self._lock:
            if run_id in self._runs and self._runs[run_id].state in LIVE:
                raise LearnDropError(f"run {run_id} is already queued or running")
            self._runs.pop(run_id, None)  # the ended run it continues; re-inserted last (newest)
            self._runs[run_id] = run
            self._queue.append(run_id)
        self._start_next()
        return run_id

    def _start_next(self) -> None:
        with self._lock:
            running = sum(1 for r in self._runs.values() if r.state is RunState.RUNNING)
            while self._queue and running < self.max_parallel:
                run = self._runs[self._queue.popleft()]
                if run.control.stop_requested:  # stopped while queued
                    run.error = run.error or "stopped before it started"
                    run.state = self._outcome(run)
                    continue
                run.state = RunState.RUNNING
                thread = threading.Thread(target=self._work, args=(run,), name=f"train-{run.run_id}",
                                          daemon=True)
                self._threads[run.run_id] = thread
                thread.start()
                running += 1

    def _work(self, run: LiveRun) -> None:
        """Train ``run`` in this worker thread (``runs.worker``), then let the next queued run start."""
        try:
            train_live(run, self.store)
        except LearnDropError as exc:
            run.error = str(exc)
        except Exception as exc:  # a bug of ours: keep the message for the page, the run is recorded failed
            run.error = f"{type(exc).__name__}: {exc}"
        finally:
            # a baseline only makes sense next to a run that went the full way
            if run.baseline_id and (run.error or run.control.stop_requested):
                self._cancel_queued(run.baseline_id, f"not started: its Learn&Drop run {run.run_id} "
                                                     f"{'failed' if run.error else 'was stopped'}")
            run.state = self._outcome(run)
            self._forget_old()
            self._start_next()

    def _outcome(self, run: LiveRun) -> RunState:
        """How a run the queue lets go of ended: its stored status once it has a folder, else not started.
        Never a live state, so nothing waits on a run that no thread trains."""
        try:
            if not self.store.exists(run.run_id):
                return RunState.NOT_STARTED
            stored = RunState(self.store.summary(run.run_id)["status"])
        except (LearnDropError, ValueError, OSError):
            return RunState.FAILED
        return stored if stored in ENDED else RunState.FAILED

    def _cancel_queued(self, run_id: str, reason: str) -> None:
        """Cancel a queued run: it stays in the queue, live, until its turn comes, and then ends as it was
        (not started, or its stored status) without training; ``training_and_queued`` no longer counts it."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None and run.state is RunState.QUEUED:
                run.error = reason
                run.control.request_stop()

    def _forget_old(self) -> None:
        """Keep only the newest ended runs in memory; older ones are read from disk."""
        with self._lock:
            for failed in (False, True):
                ended = [r for r in self._runs.values() if r.state not in LIVE
                         and (r.error is not None) == failed]
                # failures may have no folder: keep more of them
                keep = self.keep_finished * (4 if failed else 1)
                for run in ended[:-keep] if keep else ended:
                    del self._runs[run.run_id]

    # --- steering -----------------------------------------------------------------------------------
    def _live(self, run_id: str) -> LiveRun:
        run = self._runs.get(validate_run_id(run_id))
        if run is None or run.state not in LIVE:
            raise LearnDropError(f"run {run_id!r} is not running")
        return run

    def stop(self, run_id: str) -> None:
        """Stop a running run within a step, or cancel a queued one; its queued baseline goes too."""
        run = self._live(run_id)
        if run.state is RunState.QUEUED:
            self._cancel_queued(run_id, "stopped before it started")
        run.control.request_stop()
        if run.baseline_id:
            self._cancel_queued(run.baseline_id, f"not started: its Learn&Drop run {run_id} was stopped")

    def pause(self, run_id: str) -> None:
        self._single(run_id, "paused").control.pause()

    def unpause(self, run_id: str) -> None:
        self._live(run_id).control.unpause()

    def set_thresholds(self, run_id: str, **changes: float | int) -> PolicyConfig:
        """Change a live run's tau, kappa, warmup or patience; they act at its next check."""
        return self._single(run_id, "retuned").control.set_thresholds(**changes)

    def _single(self, run_id: str, what: str) -> LiveRun:
        run = self._live(run_id)
        if run.config.world_size > 1:
            raise LearnDropError(f"run {run_id} trains on {run.config.world_size} processes: it can be "
                                 f"stopped, not {what}, while it trains")
        return run

    # --- reading --------------------------------------------------------------------------------------
    def get(self, run_id: str) -> LiveRun | None:
        with self._lock:
            return self._runs.get(run_id)

    def state(self, run_id: str) -> RunState | None:
        """queued, running or paused while the queue trains it; how it ended while it is kept; None when
        the queue does not hold it (it may still be on disk: ``RunCatalogue.status``)."""
        run = self.get(run_id)
        if run is None:
            return None
        state = run.state
        return RunState.PAUSED if state is RunState.RUNNING and run.control.paused else state

    def is_live(self, run_id: str) -> bool:
        return self.state(run_id) in LIVE

    def is_paused(self, run_id: str) -> bool:
        return self.state(run_id) is RunState.PAUSED

    def policy(self, run_id: str) -> PolicyConfig | None:
        """The thresholds a live run uses now (``None`` when it is not live)."""
        run = self.get(run_id)
        return run.control.policy() if run is not None and run.state in LIVE else None

    def run_ids(self) -> list[str]:
        """The runs held, in submission order (a continued run counts from when it was queued again)."""
        with self._lock:
            return list(self._runs)

    def live_run_ids(self) -> list[str]:
        with self._lock:
            return [r.run_id for r in self._runs.values() if r.state in LIVE]

    def training_and_queued(self) -> tuple[list[str], list[str]]:
        """The runs training now (paused ones included) and those waiting their turn, in queue order."""
        with self._lock:
            training = [r.run_id for r in self._runs.values() if r.state is RunState.RUNNING]
            waiting = [self._runs.get(r) for r in self._queue]
            queued = [r.run_id for r in waiting
                      if r is not None and r.state is RunState.QUEUED and not r.control.stop_requested]
            return training, queued

    def queued_behind(self, run_id: str) -> list[str]:
        """The runs a queued run waits for: those training now, then those ahead of it in the queue."""
        with self._lock:
            if run_id not in self._queue:
                return []
            ahead = list(self._queue)[:list(self._queue).index(run_id)]
            return [r.run_id for r in self._runs.values() if r.state is RunState.RUNNING] + ahead

    def baseline_of(self, run_id: str) -> str | None:
        run = self.get(run_id)
        return run.baseline_id if run else None

    def active_of(self, run_id: str) -> str | None:
        """The live one of a run and its linked baseline (the one Stop and Pause act on), if any."""
        for candidate in (run_id, self.baseline_of(run_id)):
            if candidate and self.is_live(candidate):
                return candidate
        return None

    def wait(self, run_id: str, timeout: float | None = None) -> bool:
        """Block until the run has ended (for tests and scripts); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_live(run_id):
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        thread = self._threads.get(run_id)
        if thread is not None:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return True


__all__ = ["LiveRun", "RunQueue", "baseline_config"]
