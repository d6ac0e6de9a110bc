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
import signal
import sys
from pathlib import Path

from .cli import ProgressBar, _tensorboard, config_from_args, format_summary
from .config import RunConfig
from .errors import LearnDropError, first_line
from .events import CheckpointRestored, Event
from .runs.store import RunStore, validate_run_id
from .training.control import TrainingControl
from .training.world import World, is_peer_failure


def cmd_train(a: argparse.Namespace) -> int:
    world = World.from_environment()
    if a.nproc < 1:
        raise LearnDropError(f"--nproc must be at least 1, got {a.nproc}")
    if a.run_id is not None:
        validate_run_id(a.run_id)
    if a.nproc > 1 and world.size == 1:  # this process is the launcher, not one of the run's
        return launch(a.nproc, list(a.argv))
    if a.nproc > 1 and a.nproc != world.size:
        raise LearnDropError(f"--nproc {a.nproc}, but torchrun started {world.size} processes")
    from .runs.recorder import RunRecorder  # torch-heavy imports only when training
    from .training.device import resolve_device
    from .training.prepare import prepare

    store = RunStore(a.runs_dir)
    if world.main:
        store.check_writable()  # before the data are loaded: an unusable runs folder costs nothing
    stored = store.config(a.resume) if a.resume else None  # every process reads it: the same error everywhere
    if stored is not None and stored.world_size != world.size:
        raise LearnDropError(f"run {a.resume} trained on {stored.world_size} process(es); resume it on as many "
                             f"(--nproc {stored.world_size}, or torchrun --nproc_per_node {stored.world_size})")
    config = stored or dataclasses.replace(_config_file(a.config) if a.config else config_from_args(a),
                                           world_size=world.size)
    if a.device != "auto":  # --device moves a resumed run (a GPU run on a CPU), or overrides --config's
        config = dataclasses.replace(config, device=a.device)
    world.start(resolve_device(config.device))
    control = TrainingControl(config.policy)
    signal.signal(signal.SIGTERM, lambda *_: control.request_stop())
    sinks = [ProgressBar(), *_tensorboard(a)] if world.main else []
    try:
        if a.resume and world.main:
            sinks.insert(0, _announce(a.resume))
            summary = RunRecorder(store).resume(a.resume, sinks, control, device=None if a.device == "auto"
                                                else a.device, world=world)
        elif a.resume:
            summary = _follow_resume(store, world, control)
        elif world.main:
            setup = prepare(config, store)  # bad input fails here, before a run folder exists
            run_id = a.run_id or store.new_run_id(config)
            print(f"run {run_id} -> {store.path(run_id)}", file=sys.stderr)
            summary = RunRecorder(store).start(config, sinks, control, run_id=run_id, setup=setup, world=world)
        else:
            from .training.loop import train

            summary = train(config, control=control, setup=prepare(config, store), world=world)
    except Exception as exc:  # another process died or stalled: one line (the run recorded why), no traceback
        if not is_peer_failure(exc):
            raise
        print(f"error: another process of this run ended or stalled: {first_line(exc)}", file=sys.stderr)
        return 1
    finally:
        world.close()
    if world.main:
        print(format_summary(summary))
    return 0


def _config_file(path: str) -> RunConfig:
    """``--config FILE``: a run's config.json (every setting of it; the process count is this run's own)."""
    try:
        config = RunConfig.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise LearnDropError(f"--config {path}: not a readable run config ({first_line(exc)})") from None
    config.validate()
    return config


def _announce(run_id: str):
    def announce(event: Event) -> None:
        if isinstance(event, CheckpointRestored):
            print(f"resuming run {run_id} at epoch {event.from_epoch + 1} on {event.device}", file=sys.stderr)
    return announce


def _follow_resume(store: RunStore, world: World, control: TrainingControl) -> dict:
    """A process other than rank 0 continues the run from the checkpoint rank 0 opened (or fails as it did)."""
    from .training.loop import train
    from .training.prepare import prepare

    shared = world.broadcast(None)
    if isinstance(shared, str):
        raise LearnDropError(shared)
    config, checkpoint = shared
    return train(config, control=control, setup=prepare(config, store), checkpoint=checkpoint, world=world)


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
        failures = "; ".join(f"process {rank}: exit code {f.exitcode}" for rank, f in sorted(exc.failures.items()))
        print(f"error: the data-parallel run ended with a failed process ({failures})", file=sys.stderr)
        return 1
    except SignalException as exc:  # SIGTERM (or Ctrl-C): torchrun passed it on to every process and waited
        print(f"stopped by {exc.sigval.name}", file=sys.stderr)
        return 128 + exc.sigval.value
    return 0
