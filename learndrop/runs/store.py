"""The run store on disk: ``runs/<run_id>/`` with config.json, events.jsonl, summary.json, model.pt.

``events.jsonl`` is appended and flushed one event at a time, so a killed process loses at most the
event it was writing. A run with no ``run_finished`` whose process is gone shows as interrupted.
Reading a log as it grows is ``follow.EventFollower``'s.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import events as ev
from ..config import RunConfig
from ..errors import LearnDropError, first_line
from ..files import write_atomic, write_json
from ..status import RunState
from ..summary import summarize
from . import damage
from .claim import RunClaim, is_held, take
from .writable import check_writable_dir

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
    """The sink that records one run: each event appended to events.jsonl and flushed. It holds the run's
    claim (``claim.RunClaim``) and lets go of it once ``run_finished`` and the summary are written."""

    def __init__(self, run_dir: Path, run_id: str, claim: RunClaim | None = None):
        self.dir = run_dir
        self.run_id = run_id
        self.claim = claim
        # closed at run_finished
        self._file = open(run_dir / "events.jsonl", "a", encoding="utf-8")  # noqa: SIM115

    def __call__(self, event: ev.Event) -> None:
        if self._file.closed:
            return
        self._file.write(ev.to_json(event) + "\n")
        self._file.flush()
        if isinstance(event, ev.RunFinished):
            try:
                self._file.close()
                loaded = read_events(self.dir / "events.jsonl")
                write_json(self.dir / "summary.json", summarize(loaded.events))
            finally:
                self.close()

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            if self.claim is not None:
                self.claim.release()


class RunStore:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_runs_dir()

    def check_writable(self) -> None:
        """``LearnDropError`` naming the runs folder and why, unless runs can be written in it (see
        ``check_writable_dir``); call it before the work a run starts with, so bad input costs nothing."""
        check_writable_dir(self.root, "runs folder")

    # --- writing --------------------------------------------------------------------------------
    def new_run_id(self, config: RunConfig) -> str:
        """``<time>-<model>-<data set>-<policy>-<4 hex>``; a name's characters a run id cannot hold (the ``:``
        of ``torchvision:NAME``) become ``-``, and an image folder is just ``folder``."""
        dataset = config.dataset.split(":", 1)[0] if config.dataset.startswith("folder:") else config.dataset
        name = "-".join(re.sub(r"[^A-Za-z0-9_.]+", "-", part).strip("-")
                        for part in (config.model, dataset, config.policy.name))
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return validate_run_id(f"{stamp}-{name}-{secrets.token_hex(2)}"[:128])

    def create(self, config: RunConfig, run_id: str | None = None) -> RunWriter:
        """The new run's folder, taken for training (its claim held by the writer); config.json is written
        last, so a folder is listed as a run only once it is whole. Nothing is left when this fails."""
        run_id = validate_run_id(run_id or self.new_run_id(config))
        self.check_writable()
        run_dir = self.root / run_id
        try:
            run_dir.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise LearnDropError(f"run id {run_id!r} is taken: {str(run_dir)!r} exists") from None
        claim = None
        try:
            claim = take(run_dir, run_id)
            (run_dir / "events.jsonl").touch()
            write_json(run_dir / "config.json", config.to_dict())
            return RunWriter(run_dir, run_id, claim)
        except BaseException:
            if claim is not None:
                claim.release()
            shutil.rmtree(run_dir, ignore_errors=True)  # made just now, by this call
            raise

    def claim(self, run_id: str) -> RunClaim:
        """Take an existing run for training (a resume); ``LearnDropError`` naming the process that trains
        it."""
        return take(self._existing(run_id), run_id)

    def is_live(self, run_id: str) -> bool:
        """Whether a process (this one included) trains the run now: it holds the run's lock."""
        return is_held(self.path(run_id))

    def remove_empty(self, run_id: str) -> None:
        """Delete a run folder that this process created and that has nothing worth keeping (it ended before
        its first training step): its lock held by the caller's writer, so no one else writes it."""
        shutil.rmtree(self.path(run_id), ignore_errors=True)

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
            aside = "".join(rest).encode("utf-8")
            write_atomic(run_dir / f"events.before-resume-{n}.jsonl", lambda f: f.write(aside))
        write_atomic(path, lambda f: f.write("".join(kept).encode("utf-8")))
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
        """The run's settings; ``LearnDropError`` (one line: the run, the file, what is wrong) when its
        config.json cannot be read as a run's config."""
        return damage.read_config(self._existing(run_id), run_id)

    def events(self, run_id: str) -> LoadedEvents:
        """Every readable event (see ``read_events``); ``LearnDropError`` when the run has no events.jsonl."""
        path = self._existing(run_id) / "events.jsonl"
        if not path.is_file():
            raise LearnDropError(f"run {run_id!r}: {damage.NO_EVENTS}")
        return read_events(path)

    def problem(self, run_id: str) -> str | None:
        """What makes the run's folder unreadable (one line), or None: see ``damage.problem``."""
        return damage.problem(self._existing(run_id), run_id)

    def summary(self, run_id: str, claimed: bool = False) -> dict[str, Any]:
        """summary.json when the run ended; else computed from its events, with its live status (``claimed``:
        the caller holds the run's lock, so a run without ``run_finished`` is not live but interrupted).

        A summary.json of an older version (drop epochs counted from 0), or one missing fields, is recomputed,
        not rewritten. A damaged run (``problem``) has the status ``damaged`` and the problem as its error.
        """
        run_dir = self._existing(run_id)
        problem = damage.problem(run_dir, run_id)
        if problem is not None:
            return damage.damaged_summary(run_id, problem)
        saved = damage.saved_summary(run_dir / "summary.json")
        if saved is not None:
            return saved
        summary = summarize(self.events(run_id).events)
        if summary["status"] not in set(RunState):
            why = f"its run_finished event has an unknown status {summary['status']!r}"
            return damage.damaged_summary(run_id, why)
        if summary["status"] == RunState.RUNNING and (claimed or not is_held(run_dir)):
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


__all__ = ["LoadedEvents", "RunStore", "RunWriter", "check_writable_dir", "default_runs_dir", "read_events",
           "validate_run_id"]
