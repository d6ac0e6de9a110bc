"""A run's state, one enum for the whole project, and the groups of states the pages and the queue ask about.

The values are the strings that ``summary.json`` and ``run_finished`` events hold, so a ``RunState`` compares
equal to the stored text (``RunState.COMPLETED == "completed"``) and a stored status can be tested against a
group directly (``summary["status"] in RESUMABLE``). ``damaged`` is a folder's, never recorded: what the run
store answers for a folder it cannot read (``runs.damage``). Three states exist only in memory: ``queued`` and
``paused`` (a run the queue holds) and ``not started`` (it was cancelled, or failed before it had a folder).
"""

from __future__ import annotations

from enum import StrEnum


class RunState(StrEnum):
    QUEUED = "queued"  # waiting for the training slot
    RUNNING = "running"  # training now (on disk: no run_finished yet, and its process is alive)
    PAUSED = "paused"  # holds the training slot, but nothing trains
    COMPLETED = "completed"  # trained every epoch
    STOPPED = "stopped"  # stopped on request; model.pt is its state then
    FAILED = "failed"  # diverged, or a bug; model.pt is the last good epoch's
    INTERRUPTED = "interrupted"  # its process ended before run_finished (Ctrl-C, a killed server)
    NOT_STARTED = "not started"  # cancelled while queued, or failed before it had a run folder
    DAMAGED = "damaged"  # its folder cannot be read (config.json unreadable, events.jsonl gone): runs.damage


LIVE = frozenset({RunState.QUEUED, RunState.RUNNING, RunState.PAUSED})  # the queue holds it; Stop acts on it
TRAINING = frozenset({RunState.RUNNING, RunState.PAUSED})  # holds the training slot (one at a time)
# for good, on disk
ENDED = frozenset({RunState.COMPLETED, RunState.STOPPED, RunState.FAILED, RunState.INTERRUPTED})
# may continue from a checkpoint
RESUMABLE = frozenset({RunState.STOPPED, RunState.FAILED, RunState.INTERRUPTED})
RECORDED = TRAINING | ENDED  # has a run folder with events to show
# ended with scores worth replaying under other thresholds; a failed run's last checks may come from a
# diverging model
REPLAYABLE = frozenset({RunState.COMPLETED, RunState.STOPPED, RunState.INTERRUPTED})

__all__ = ["ENDED", "LIVE", "RECORDED", "REPLAYABLE", "RESUMABLE", "TRAINING", "RunState"]
