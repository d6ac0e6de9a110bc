"""How a queued run trains in its worker thread (``RunQueue``'s): in this process through ``RunRecorder``,
with a TensorBoard sink when asked and from its checkpoint when it continues; or data-parallel, through
torchrun's launcher in child processes (``runs.processes``). Its events go to the ``LiveRun``'s list."""

from __future__ import annotations

from .. import events as ev
from .live import LiveRun
from .store import RunStore


def train_live(run: LiveRun, store: RunStore) -> None:
    """Train ``run`` until it ends; what goes wrong is raised to the caller, which keeps it on the run."""
    from .finetune import prepare_run  # torch-heavy; imported in the worker
    from .recorder import RunRecorder

    def kept(history: list[ev.Event]) -> None:
        with run.lock:
            run.events[:0] = history

    if run.config.world_size > 1:  # data-parallel: torchrun's launcher as a child process
        _in_processes(run, store)
        return
    setup = prepare_run(run.config, store)  # the store: where init_from runs are looked up
    recorder, sinks = RunRecorder(store), [run.append]
    if run.tensorboard is not None:
        from ..report.tensorboard import TensorBoardSink

        sinks.append(TensorBoardSink(run.tensorboard / run.run_id))
    if run.continues:  # the events up to the checkpoint come first, as they are on disk
        recorder.resume(run.run_id, sinks, run.control, setup=setup, kept=kept)
    else:
        recorder.start(run.config, sinks, run.control, run_id=run.run_id, setup=setup)


def _in_processes(run: LiveRun, store: RunStore) -> None:
    from .processes import train_in_processes

    def append(events: list[ev.Event], restarted: bool) -> None:
        with run.lock:
            if restarted:
                run.events.clear()
            run.events.extend(events)

    board = run.tensorboard / run.run_id if run.tensorboard is not None else None
    train_in_processes(store, run.run_id, None if run.continues else run.config,
                       lambda: run.control.stop_requested, append, board)
