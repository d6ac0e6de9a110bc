"""Who trains a run now: a lock on its folder, held by the one process that writes the run.

The process that trains a run holds an exclusive ``flock`` on the folder's ``train.lock`` from the moment
it takes the run (a new run's folder made, or a resume about to set events aside) until the run has
ended. The kernel lets go of the lock when that process ends, however it ends (``kill -9``, a container
stopped, the machine restarted), so "is the lock held" answers "is the run live" without process ids or
host names: a process id that now belongs to another process, a container started again under another
name, or a runs folder copied from another machine all read as not held, and such a run as interrupted.
Taking the lock is atomic, so of two processes resuming one run at the same moment exactly one trains.

``process.json`` beside it only says who holds the lock (process id, host, since when), for messages. A
``flock`` is held per open file, so a second open in the very process that trains (the dashboard's server
looking at its own training thread's run) sees it held too.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from ..errors import LearnDropError
from ..files import write_json

LOCK_FILE = "train.lock"
HOLDER_FILE = "process.json"
BUSY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)  # what flock answers for a lock another holds
TAKE_WAIT_S = 1.0  # how long taking a run waits out a look at its lock by another process (microseconds each)


class RunClaim:
    """The lock of one run folder, held by this process until ``release``."""

    def __init__(self, run_dir: Path, fd: int):
        self.dir = run_dir
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Let go (idempotent); ``process.json`` goes with it."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            (self.dir / HOLDER_FILE).unlink(missing_ok=True)
        os.close(self._fd)  # closing the last descriptor of the open file releases the flock
        self._fd = None


def take(run_dir: Path, run_id: str) -> RunClaim:
    """Take the run for training; ``LearnDropError`` (one line naming the holder) when another process (or
    another training in this one) holds it. A look at the lock by a reader is waited out."""
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    deadline = time.monotonic() + TAKE_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as exc:
            held = exc.errno in BUSY
            if not held or time.monotonic() > deadline:
                os.close(fd)
                if not held:
                    raise
                raise LearnDropError(f"run {run_id!r} is being trained by {holder_text(run_dir)}; it can "
                                     "continue once that process has ended") from None
            time.sleep(0.02)
    claim = RunClaim(run_dir, fd)
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        write_json(run_dir / HOLDER_FILE, holder)
    except BaseException:
        claim.release()
        raise
    return claim


def is_held(run_dir: Path) -> bool:
    """Whether some process (this one included) holds the run's lock now. A folder without a lock file (a
    run recorded before locks, or a copy) has no holder. Looking takes the lock for an instant, shared."""
    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError as exc:
        return exc.errno in BUSY
    finally:
        os.close(fd)  # releases the shared lock, if it was taken


def holder(run_dir: Path) -> dict[str, Any]:
    """What ``process.json`` says of the process that holds the lock (empty when unreadable)."""
    try:
        info = json.loads((run_dir / HOLDER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def holder_text(run_dir: Path) -> str:
    """``process 1234 on host 'box' (since 2025-01-01 12:00:00)``, or ``another process`` when unknown."""
    info = holder(run_dir)
    if "pid" not in info:
        return "another process"
    since = f" (since {info['since']})" if info.get("since") else ""
    return f"process {info['pid']} on host {info.get('host', '?')!r}{since}"


__all__ = ["LOCK_FILE", "RunClaim", "holder", "holder_text", "is_held", "take"]
