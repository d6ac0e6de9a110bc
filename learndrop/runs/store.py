"""The run store on disk: ``runs/<run_id>/`` with config.json, events.jsonl, summary.json, model.pt.

``events.jsonl`` is appended and flushed one event at a time, so a killed process loses at most the
event it was writing. A run with no ``run_finished`` whose process is gone shows as interrupted.
Reading a log as it grows is ``follow.EventFollower``'s.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import events as ev
from ..config import RunConfig
from ..errors import LearnDropError, first_line
from ..report.summary import SUMMARY_VERSION, summarize
from ..status import RunState

RUNS_DIR_ENV = "LEARNDROP_RUNS_DIR"
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def default_runs_dir() -> Path:
    return Path(os.environ.get(RUNS_DIR_ENV) or "runs")


def validate_run_id(run_id: str) -> str:
    """A run id is one path component of letters, digits, ``_ . -``: no separators, no ``..``."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id) or ".." in run_id:
        raise LearnDropError(f"invalid run id {run_id!r}: use letters, digits, '_', '.' and '-' only")
    return run_id


@dataclass(frozen=True)
class LoadedEvents:
    events: list[ev.Event]
    skipped: int  # lines that could not be read (a corrupt or half-written line)


class RunWriter:
    """The sink that records one run: each event appended to events.jsonl and flushed."""

    def __init__(self, run_dir: Path, run_id: str):
        self.dir = run_dir
        self.run_id = run_id
        self._file = open(run_dir / "events.jsonl", "a", encoding="utf-8")  # noqa: SIM115 (closed at run_finished)

    def __call__(self, event: ev.Event) -> None:
        if self._file.closed:
            return
        self._file.write(ev.to_json(event) + "\n")
        self._file.flush()
        if isinstance(event, ev.RunFinished):
            self._file.close()
            loaded = read_events(self.dir / "events.jsonl")
            _write_json(self.dir / "summary.json", summarize(loaded.events))
            (self.dir / "process.json").unlink(missing_ok=True)

    def close(self) -> None:
        self._file.close()


class RunStore:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_runs_dir()

    def check_writable(self) -> None:
        """``LearnDropError`` naming the runs folder and why, unless runs can be written in it (see
        ``check_writable_dir``); call it before the work a run starts with, so bad input costs nothing."""
        check_writable_dir(self.root, "runs folder")

    # --- writing --------------------------------------------------------------------------------
    def new_run_id(self, config: RunConfig) -> str:
        """``<time>-<model>-<data set>-<policy>-<4 hex>``; a name's characters a run id cannot hold (the ``:`` of
        ``torchvision:NAME``) become ``-``, and an image folder is just ``folder``."""
        dataset = config.dataset.split(":", 1)[0] if config.dataset.startswith("folder:") else config.dataset
        name = "-".join(re.sub(r"[^A-Za-z0-9_.]+", "-", part).strip("-")
                        for part in (config.model, dataset, config.policy.name))
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return validate_run_id(f"{stamp}-{name}-{secrets.token_hex(2)}"[:128])

    def create(self, config: RunConfig, run_id: str | None = None) -> RunWriter:
        run_id = validate_run_id(run_id or self.new_run_id(config))
        self.check_writable()
        run_dir = self.root / run_id
        run_dir.mkdir(parents=True, exist_ok=False)
        _write_json(run_dir / "config.json", config.to_dict())
        self.mark_running(run_id)
        return RunWriter(run_dir, run_id)

    def mark_running(self, run_id: str) -> None:
        _write_json(self.path(run_id) / "process.json", {"pid": os.getpid(), "host": socket.gethostname()})

    def truncate_events(self, run_id: str, keep: int) -> tuple[list[ev.Event], int]:
        """Keep the first ``keep`` event lines; move the rest to events.before-resume-N.jsonl (not lost).

        Returns the kept events and how many lines were moved aside.
        """
        run_dir = self._existing(run_id)
        path = run_dir / "events.jsonl"
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
        kept, rest = lines[:keep], lines[keep:]
        if rest:
            n = 1 + sum(1 for _ in run_dir.glob("events.before-resume-*.jsonl"))
            (run_dir / f"events.before-resume-{n}.jsonl").write_text("".join(rest), encoding="utf-8")
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(kept), encoding="utf-8")
        tmp.replace(path)
        (run_dir / "summary.json").unlink(missing_ok=True)
        return read_events(path).events, len(rest)

    # --- reading --------------------------------------------------------------------------------
    def path(self, run_id: str) -> Path:
        return self.root / validate_run_id(run_id)

    def exists(self, run_id: str) -> bool:
        return (self.path(run_id) / "config.json").is_file()

    def _existing(self, run_id: str) -> Path:
        if not self.exists(run_id):
            raise LearnDropError(f"no run {run_id!r} in {str(self.root)!r}")
        return self.path(run_id)

    def run_ids(self) -> list[str]:
        """Newest first (ids start with their creation time)."""
        if not self.root.is_dir():
            return []
        ids = [p.name for p in self.root.iterdir()
               if RUN_ID_PATTERN.fullmatch(p.name) and (p / "config.json").is_file()]
        return sorted(ids, reverse=True)

    def config(self, run_id: str) -> RunConfig:
        data = json.loads((self._existing(run_id) / "config.json").read_text(encoding="utf-8"))
        return RunConfig.from_dict(data)

    def events(self, run_id: str) -> LoadedEvents:
        return read_events(self._existing(run_id) / "events.jsonl")

    def summary(self, run_id: str) -> dict[str, Any]:
        """summary.json when the run ended; else computed from its events, with its live status.

        A summary.json of an older version (drop epochs counted from 0) is recomputed, not rewritten.
        """
        run_dir = self._existing(run_id)
        path = run_dir / "summary.json"
        if path.is_file():
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(saved, dict) and saved.get("summary_version") == SUMMARY_VERSION:
                    return saved
            except (json.JSONDecodeError, OSError):
                pass  # a summary cut off mid-write, or of an older version: recompute it below
        summary = summarize(self.events(run_id).events)
        if summary["status"] == RunState.RUNNING and not self._process_alive(run_dir):
            summary["status"] = RunState.INTERRUPTED.value
        if summary["run_id"] is None:
            summary["run_id"] = run_id
        return summary

    def summaries(self) -> list[dict[str, Any]]:
        return [self.summary(run_id) for run_id in self.run_ids()]

    def model_state(self, run_id: str) -> dict[str, torch.Tensor]:
        """The saved full network, loaded with ``weights_only=True``; refused unless it is a state dict."""
        path = self._existing(run_id) / "model.pt"
        if not path.is_file():
            raise LearnDropError(f"run {run_id!r} has no saved model (model.pt)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle errors, truncated zip, foreign objects refused by weights_only
            raise LearnDropError(f"{path} is not a loadable state dict: {first_line(exc)}") from exc
        if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                  for k, v in state.items()):
            raise LearnDropError(f"{path} is not a state dict of tensors")
        return state

    @staticmethod
    def _process_alive(run_dir: Path) -> bool:
        try:
            info = json.loads((run_dir / "process.json").read_text(encoding="utf-8"))
            if info.get("host") != socket.gethostname():
                return True  # another machine's process: we cannot tell, so trust it
            os.kill(int(info["pid"]), 0)
            return True
        except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
            return False


def check_writable_dir(path: str | Path, what: str = "folder") -> None:
    """Raise ``LearnDropError``, one sentence naming ``path`` and why, unless files can be written in it.

    A missing folder is fine where it can be created, parents included (like ``mkdir -p``). The check
    really creates the missing folders and a probe file (as root, permission bits say little: /proc
    and /sys refuse anyway), then removes everything it created, so it leaves nothing behind either way.
    """
    path = Path(path)
    blocker = _file_in_the_way(path)
    if blocker == path:
        raise LearnDropError(f"{what} {str(path)!r} is a file, not a folder")
    if blocker is not None:
        raise LearnDropError(f"{what} {str(path)!r} cannot be created: {str(blocker)!r} is a file, not a folder")
    missing = _missing_folders(path)
    made: list[Path] = []
    try:
        for folder in missing:
            try:
                folder.mkdir()
            except OSError as exc:
                raise LearnDropError(f"{what} {str(path)!r} cannot be created: {str(folder.parent)!r} "
                                     f"{_unwritable_reason(exc)}") from None
            made.append(folder)
        probe = path / f".learndrop-write-probe-{secrets.token_hex(4)}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise LearnDropError(f"{what} {str(path)!r} {_unwritable_reason(exc)}") from None
    finally:
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:
                pass  # something else wrote into it meanwhile: leave it


def _file_in_the_way(path: Path) -> Path | None:
    """The first existing component of ``path`` (itself or a parent) when it is not a folder."""
    for candidate in (path, *path.parents):
        try:
            if candidate.exists():
                return None if candidate.is_dir() else candidate
        except OSError:
            return None  # cannot even look: the mkdir or the probe will say why
    return None


def _missing_folders(path: Path) -> list[Path]:
    """The components of ``path`` that do not exist yet, outermost first."""
    missing = []
    for candidate in (path, *path.parents):
        try:
            if candidate.exists():
                break
        except OSError:
            break
        missing.append(candidate)
    return missing[::-1]


_REASONS = {
    errno.EROFS: "is on a read-only file system",
    errno.EACCES: "is not writable (permission denied)",
    errno.EPERM: "is not writable (operation not permitted)",
    errno.ENOENT: "does not accept new files or folders",  # /proc
    errno.ENOSPC: "has no space left",
    errno.EDQUOT: "is over its disk quota",
}


def _unwritable_reason(exc: OSError) -> str:
    return _REASONS.get(exc.errno or 0, f"is not writable ({exc.strerror or exc})")


def read_events(path: Path) -> LoadedEvents:
    """All readable events of an events.jsonl; corrupt lines are skipped and counted."""
    events, skipped = [], 0
    if not path.is_file():
        return LoadedEvents([], 0)
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                events.append(ev.from_json(line))
            except (ValueError, TypeError, KeyError):
                skipped += 1
    return LoadedEvents(events, skipped)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    tmp.replace(path)


__all__ = ["LoadedEvents", "RunStore", "RunWriter", "check_writable_dir", "default_runs_dir", "read_events",
           "validate_run_id"]
