"""One object for the dashboard: the training queue and the run catalogue of one runs folder, composed.

The two concepts live apart (``queue.RunQueue``: what trains and what waits, steered live;
``catalogue.RunCatalogue``: every run's state, summary, view and baseline, from memory or disk). The
pages need both at once for every run they show, so ``RunRegistry`` hands each call to the one it
belongs to, and holds the one rule that needs both: a run continues only when the catalogue says it can.
"""

from __future__ import annotations

from typing import Any

from .. import events as ev
from ..config import PolicyConfig, RunConfig
from ..errors import LearnDropError
from ..report.view import RunView
from ..status import RunState
from .catalogue import RunCatalogue
from .live import LiveRun, baseline_config
from .queue import RunQueue
from .store import RunStore


class RunRegistry:
    """The queue and the catalogue of ``store``; one training at a time (``max_parallel``) by default."""

    def __init__(self, store: RunStore, max_parallel: int = 1, keep_finished: int = 4):
        self.store = store
        self.queue = RunQueue(store, max_parallel, keep_finished)
        self.catalogue = RunCatalogue(store, self.queue)

    # --- the queue: starting, steering, what it holds ----------------------------------------------
    def submit(self, config: RunConfig, with_baseline: bool = False, tensorboard: str | None = None) -> str:
        return self.queue.submit(config, with_baseline, tensorboard)

    def resume_run(self, run_id: str) -> str:
        """Queue a stopped, failed or interrupted run to continue from its last checkpoint, under its own id;
        ``LearnDropError`` with ``resume_problem``'s reason when it cannot."""
        problem = self.catalogue.resume_problem(run_id)
        if problem:
            raise LearnDropError(problem)
        return self.queue.resume_run(run_id)

    def stop(self, run_id: str) -> None:
        self.queue.stop(run_id)

    def pause(self, run_id: str) -> None:
        self.queue.pause(run_id)

    def unpause(self, run_id: str) -> None:
        self.queue.unpause(run_id)

    def set_thresholds(self, run_id: str, **changes: float | int) -> PolicyConfig:
        return self.queue.set_thresholds(run_id, **changes)

    def get(self, run_id: str) -> LiveRun | None:
        return self.queue.get(run_id)

    def is_live(self, run_id: str) -> bool:
        return self.queue.is_live(run_id)

    def is_paused(self, run_id: str) -> bool:
        return self.queue.is_paused(run_id)

    def policy(self, run_id: str) -> PolicyConfig | None:
        return self.queue.policy(run_id)

    def live_run_ids(self) -> list[str]:
        return self.queue.live_run_ids()

    def training_and_queued(self) -> tuple[list[str], list[str]]:
        return self.queue.training_and_queued()

    def queued_behind(self, run_id: str) -> list[str]:
        return self.queue.queued_behind(run_id)

    def baseline_of(self, run_id: str) -> str | None:
        return self.queue.baseline_of(run_id)

    def active_of(self, run_id: str) -> str | None:
        return self.queue.active_of(run_id)

    def wait(self, run_id: str, timeout: float | None = None) -> bool:
        return self.queue.wait(run_id, timeout)

    # --- the catalogue: any run, live or on disk ------------------------------------------------------
    def run_ids(self) -> list[str]:
        return self.catalogue.run_ids()

    def status(self, run_id: str) -> RunState | None:
        return self.catalogue.status(run_id)

    def summary(self, run_id: str) -> dict[str, Any]:
        return self.catalogue.summary(run_id)

    def config(self, run_id: str) -> dict[str, Any] | None:
        return self.catalogue.config(run_id)

    def view(self, run_id: str) -> RunView:
        return self.catalogue.view(run_id)

    def events_since(self, run_id: str, cursor: int = 0) -> tuple[list[ev.Event], int]:
        return self.catalogue.events_since(run_id, cursor)

    def resume_problem(self, run_id: str) -> str | None:
        return self.catalogue.resume_problem(run_id)

    def trainer(self, run_id: str) -> str | None:
        return self.catalogue.trainer(run_id)

    def find_baseline(self, run_id: str) -> str | None:
        return self.catalogue.find_baseline(run_id)


__all__ = ["RunRegistry", "baseline_config"]
