"""A queued run trained data-parallel: ``learndrop train --nproc N`` (torchrun's launcher) as a child process.

The server never joins the run's process group: it starts the launcher, follows the run's events.jsonl as
rank 0 writes it (``follow.EventFollower``) into the queue's in-memory list, and on Stop sends the launcher
SIGTERM, which torchrun passes to every process; they stop together at their next progress event, and the
run is recorded as stopped, with its model. Pause and live thresholds do not reach other processes: such a
run refuses them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .. import events as ev
from ..config import RunConfig
from ..errors import LearnDropError
from .follow import EventFollower
from .store import RunStore

POLL_S = 0.25  # how often the run's events file is read while it trains
STOP_GRACE_S = 60.0  # after Stop, how long the processes may take before they are killed


def command(store: RunStore, run_id: str, config: RunConfig | None, folder: Path,
            tensorboard: Path | None = None) -> list[str]:
    """The launcher's command line for a new run of ``config`` (written to ``folder``) or, without one, for
    continuing ``run_id``; ``tensorboard``: the folder of its TensorBoard log."""
    if config is None:
        run, nproc = ["--resume", run_id], store.config(run_id).world_size
    else:
        (folder / "config.json").write_text(json.dumps(config.to_dict()), encoding="utf-8")
        run, nproc = ["--run-id", run_id, "--config", str(folder / "config.json")], config.world_size
    board = ["--tensorboard", str(tensorboard)] if tensorboard is not None else []
    return [sys.executable, "-m", "learndrop", "train", "--nproc", str(nproc), "--runs-dir", str(store.root),
            *run, *board]


def train_in_processes(store: RunStore, run_id: str, config: RunConfig | None, stop_requested, append_events,
                       tensorboard: Path | None = None) -> None:
    """Train a new run of ``config`` (or continue ``run_id``) to its end, handing each event rank 0 writes to
    ``append_events(events, restarted)``; SIGTERM once ``stop_requested()``. ``LearnDropError`` with the
    launcher's last words when it failed before the run recorded how it ended."""
    # the children import this very package (learndrop/runs/..)
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    follower = EventFollower(store.path(run_id) / "events.jsonl")
    finished = False
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryFile() as log:
        argv = command(store, run_id, config, Path(folder), tensorboard)
        # its own process group (start_new_session): the server's signals stay here
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                env=env, start_new_session=True)
        stopping_since = None
        while True:
            done = proc.poll() is not None
            events, restarted = follower.poll()
            finished = (finished and not restarted) or any(isinstance(e, ev.RunFinished) for e in events)
            if events or restarted:
                append_events(events, restarted)
            if done:
                break
            if stop_requested() and stopping_since is None:
                proc.send_signal(signal.SIGTERM)
                stopping_since = time.monotonic()
            elif stopping_since is not None and time.monotonic() - stopping_since > STOP_GRACE_S:
                os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(POLL_S)
        log.seek(0)
        words = [line for line in log.read().decode("utf-8", "replace").splitlines() if line.strip()]
    if proc.returncode and not finished:
        last = next((w for w in reversed(words) if w.startswith("error:")), words[-1] if words else "")
        raise LearnDropError(last.removeprefix("error: ")
                             or f"the launcher ended with exit code {proc.returncode}")
