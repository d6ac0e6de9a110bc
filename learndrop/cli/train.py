"""``learndrop train``: one training, in this process or data-parallel on several (PyTorch's own engine).

Started by torchrun (``torchrun --nproc_per_node N -m learndrop train ...``) every process runs this command:
rank 0 records the run (folder, events, checkpoints, model), the others train beside it and write nothing
(``training.world``). ``learndrop train --nproc N`` starts torchrun's launcher (``torch.distributed.run``)
itself, on this machine, with the same options. SIGTERM, which torchrun sends every process when it is
stopped or when one of them failed, asks the run to stop: the processes stop together at the next progress
event (one process: before the next step), and the run is recorded as stopped with its model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from pathlib import Path

from ..config import RunConfig
from ..errors import LearnDropError, first_line
from ..events import CheckpointRestored, Event
from ..runs.store import RunStore, validate_run_id
from ..training.control import TrainingControl
from ..training.preflight import preflight
from ..training.world import World, is_peer_failure
from .args import config_from_args
from .console import ProgressBar, format_summary, tensorboard_sinks


class Terminated(BaseException):
    """SIGTERM before training began: stop at once (no ``except Exception`` on the way holds it up)."""


class Sigterm:
    """The SIGTERM handler (``docker stop``, systemd, ``timeout``, torchrun passing it on). Before the run's
    first event (the data load, the model build) it stops at once and nothing is recorded; from then on it
    asks the run to stop before its next step (recorded as stopped, with its model; a new run stopped before
    its first step leaves nothing: ``RunRecorder.start``)."""

    def __init__(self, control: TrainingControl):
        self.control = control
        self.training = False

    def __call__(self, signum: int, frame: object) -> None:
        if not self.training:
            raise Terminated
        self.control.request_stop()

    def started(self, event: Event) -> None:
        """A sink: the run has begun."""
        self.training = True


def cmd_train(a: argparse.Namespace) -> int:
    world = World.from_environment()
    _check_nproc(a.nproc)
    if a.run_id is not None:
        validate_run_id(a.run_id)
    if a.nproc > 1 and world.size == 1:  # this process is the launcher, not one of the run's
        _check_run(a, RunStore(a.runs_dir), a.nproc, True)  # what every process would refuse, refused once
        return launch(a.nproc, list(a.argv))
    try:
        return _train(a, world)
    except Terminated:
        print("stopped by SIGTERM before training began: nothing was recorded", file=sys.stderr)
        return 128 + signal.SIGTERM


def _check_nproc(nproc: int) -> None:
    """At least one process, and no more than this machine has CPU cores (or GPUs, where it has more)."""
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    cores = os.cpu_count() or 1
    if not 1 <= nproc <= max(cores, gpus):
        have = f"{cores} CPU core(s)" + (f" and {gpus} GPU(s)" if gpus else "")
        raise LearnDropError(f"--nproc must be from 1 to {max(cores, gpus)} (this machine has {have}), got "
                             f"{nproc}")


def _check_run(a: argparse.Namespace, store: RunStore, world_size: int, main: bool) -> RunConfig | None:
    """Before anything is loaded or created: the runs folder and a new run's id (``main``: the process that
    records the run), a new run's whole config, or the resumed run's process count. Returns the new run's
    config (None for a resume)."""
    if main:
        store.check_writable()
    if a.resume:
        if (problem := store.problem(a.resume)) is not None:
            raise LearnDropError(f"run {a.resume!r} is damaged: {problem}")
        stored = store.config(a.resume)
        if stored.world_size != world_size:
            raise LearnDropError(f"run {a.resume} trained on {stored.world_size} process(es); resume it on "
                                 f"as many (--nproc {stored.world_size}, or torchrun --nproc_per_node "
                                 f"{stored.world_size})")
        return None
    config = dataclasses.replace(_config_file(a.config) if a.config else config_from_args(a),
                                 world_size=world_size)
    if a.device != "auto":  # --device overrides --config's
        config = dataclasses.replace(config, device=a.device)
    preflight(config)
    if main and a.run_id is not None and store.path(a.run_id).exists():
        raise LearnDropError(f"run id {a.run_id!r} is taken: {str(store.path(a.run_id))!r} exists")
    return config


def _train(a: argparse.Namespace, world: World) -> int:
    if a.nproc > 1 and a.nproc != world.size:
        raise LearnDropError(f"--nproc {a.nproc}, but torchrun started {world.size} processes")
    from ..runs.finetune import prepare_run
    from ..runs.recorder import RunRecorder  # torch-heavy imports only when training
    from ..training.device import resolve_device

    store = RunStore(a.runs_dir)
    # before the data are loaded: bad input, an unusable runs folder or a taken id cost nothing (every process
    # checks: the same error everywhere)
    config = _check_run(a, store, world.size, world.main) or store.config(a.resume)
    if a.device != "auto":  # --device moves a resumed run (a GPU run on a CPU)
        config = dataclasses.replace(config, device=a.device)
    control = TrainingControl(config.policy)
    sigterm = Sigterm(control)
    signal.signal(signal.SIGTERM, sigterm)
    world.start(resolve_device(config.device))
    sinks = [sigterm.started, ProgressBar(), *tensorboard_sinks(a)] if world.main else [sigterm.started]
    finished = False
    try:
        if a.resume and world.main:
            sinks.insert(0, _announce(a.resume))
            summary = RunRecorder(store).resume(a.resume, sinks, control, device=None if a.device == "auto"
                                                else a.device, world=world)
        elif a.resume:
            summary = _follow_resume(store, world, control, sinks)
        elif world.main:
            setup = prepare_run(config, store)  # bad input fails here, before a run folder exists
            run_id = a.run_id or store.new_run_id(config)
            print(f"run {run_id} -> {store.path(run_id)}", file=sys.stderr)
            summary = RunRecorder(store).start(config, sinks, control, run_id=run_id, setup=setup,
                                               world=world)
            if not store.exists(run_id):
                print("stopped before the first training step: nothing was recorded", file=sys.stderr)
                return 128 + signal.SIGTERM
        else:
            from ..training.loop import train

            summary = train(config, sinks, control=control, setup=prepare_run(config, store), world=world)
        finished = True
    except Exception as exc:  # another process died or stalled: one line (the run recorded why), no traceback
        if not is_peer_failure(exc):
            raise
        print(f"error: another process of this run ended or stalled: {first_line(exc)}", file=sys.stderr)
        return 1
    finally:
        world.close(finished)
    if world.main:
        print(format_summary(summary))
    return 0


def _config_file(path: str) -> RunConfig:
    """``--config FILE``: a run's config.json (every setting of it; the process count is this run's own)."""
    try:
        config = RunConfig.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        config.validate()
    except (OSError, ValueError) as exc:  # no file, not UTF-8, not JSON
        raise LearnDropError(f"--config {path}: not a readable run config ({first_line(exc)})") from None
    except LearnDropError as exc:  # a wrong type or value in it, its field named
        raise LearnDropError(f"--config {path}: {exc}", field=exc.field) from None
    return config


def _announce(run_id: str):
    def announce(event: Event) -> None:
        if isinstance(event, CheckpointRestored):
            print(f"resuming run {run_id} at epoch {event.from_epoch + 1} on {event.device}", file=sys.stderr)
    return announce


def _follow_resume(store: RunStore, world: World, control: TrainingControl, sinks: list) -> dict:
    """A process other than rank 0 continues the run from the checkpoint rank 0 opened (or fails as it
    did)."""
    from ..runs.finetune import prepare_run
    from ..training.loop import train

    shared = world.broadcast(None)
    if isinstance(shared, str):
        raise LearnDropError(shared)
    config, checkpoint = shared
    return train(config, sinks, control=control, setup=prepare_run(config, store), checkpoint=checkpoint,
                 world=world)


def launch(nproc: int, argv: list[str]) -> int:
    """``torchrun --standalone --nproc-per-node nproc -m learndrop`` with ``argv`` less ``--nproc``; returns
    its exit code. Ctrl-C reaches every process (the terminal's signal); each records where it stopped."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    rest, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--nproc="):
            skip = False
            continue
        skip = arg == "--nproc"
        if not skip:
            rest.append(arg)
    try:
        run(parse_args(["--standalone", f"--nproc-per-node={nproc}", "-m", "learndrop", *rest]))
    except ChildFailedError as exc:
        failures = "; ".join(f"process {rank}: exit code {f.exitcode}"
                             for rank, f in sorted(exc.failures.items()))
        print(f"error: the data-parallel run ended with a failed process ({failures})", file=sys.stderr)
        return 1
    except SignalException as exc:  # SIGTERM (or Ctrl-C): torchrun passed it on to every process and waited
        print(f"stopped by {exc.sigval.name}", file=sys.stderr)
        return 128 + exc.sigval.value
    return 0
