"""What a running training reads from outside: stop, pause and the live thresholds. Thread-safe."""

from __future__ import annotations

import dataclasses
import threading
import time

from ..config import THRESHOLDS, PolicyConfig


class TrainingControl:
    """Shared between the training thread and whoever steers it (the dashboard, a test, Ctrl-C).

    The loop checks ``stop_requested`` before every step, waits in ``wait_while_paused`` and reads
    ``policy()`` at every check, so a new threshold acts on the next check.
    """

    def __init__(self, policy: PolicyConfig | None = None):
        self._lock = threading.Lock()
        self._policy = policy or PolicyConfig()
        self._stop = threading.Event()
        self._running = threading.Event()  # cleared while paused
        self._running.set()

    # --- stop / pause ---------------------------------------------------------------------------
    def request_stop(self) -> None:
        self._stop.set()
        self._running.set()  # a paused run must wake up to stop

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def pause(self) -> None:
        if not self._stop.is_set():
            self._running.clear()

    def unpause(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self) -> float:
        """Block while paused; return the seconds spent waiting (kept out of the epoch's time)."""
        if self._running.is_set():
            return 0.0
        start = time.perf_counter()
        self._running.wait()
        return time.perf_counter() - start

    # --- thresholds -----------------------------------------------------------------------------
    def policy(self) -> PolicyConfig:
        with self._lock:
            return self._policy

    def set_thresholds(self, **changes: float | int) -> PolicyConfig:
        """Change tau, kappa, warmup or patience; validated, then read by the loop at its next check."""
        unknown = set(changes) - set(THRESHOLDS)
        if unknown:
            raise ValueError(f"not a live threshold: {', '.join(sorted(unknown))}")
        with self._lock:
            new = dataclasses.replace(self._policy, **changes)
            new.validate()
            self._policy = new
            return new
