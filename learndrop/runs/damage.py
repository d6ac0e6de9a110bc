"""What is wrong with a run folder, in one line, so that a damaged run is shown as damaged and every other
run stays usable (the CLI's ``runs`` and ``show``, every page of the dashboard).

A run folder is damaged when its ``config.json`` cannot be read as a run's settings (not JSON, ``null``,
a wrong type in a field) or its ``events.jsonl`` is gone. Lesser faults are mended where they are read:
an event line that is not JSON or holds a wrong type is skipped and counted (``events.from_dict`` checks
every field's type), a ``summary.json`` of another version or missing fields is recomputed from the events.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..errors import LearnDropError, first_line
from ..status import RunState
from ..summary import SUMMARY_VERSION, summarize

NO_EVENTS = "events.jsonl is missing: what it trained is not recorded"
SUMMARY_KEYS = frozenset(summarize([]))  # what a summary holds; one without them all is recomputed
NUMBERS = ("epochs_done", "world_size", "test_acc", "best_test_acc", "val_acc", "train_time_s", "eval_time_s",
           "instrument_time_s", "data_time_s", "images_per_s", "fwd_flops", "bwd_flops", "cache_fwd_flops",
           "baseline_fwd_flops", "baseline_bwd_flops", "fwd_flops_reduction_pct", "train_flops_reduction_pct")


def read_config(run_dir: Path, run_id: str) -> RunConfig:
    """The run's config.json as a ``RunConfig``; ``LearnDropError`` naming the run, the file and the fault."""
    path = run_dir / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise LearnDropError(f"run {run_id!r}: config.json is not readable JSON "
                             f"({first_line(exc)})") from None
    if not isinstance(data, dict):
        raise LearnDropError(f"run {run_id!r}: config.json holds {json.dumps(data)[:40]}, not a run's "
                             "settings")
    try:
        return RunConfig.from_dict(data)
    except LearnDropError as exc:
        raise LearnDropError(f"run {run_id!r}: config.json: {exc}") from None


def problem(run_dir: Path, run_id: str) -> str | None:
    """Why the run folder cannot be shown or continued (one line), or None when it can."""
    try:
        read_config(run_dir, run_id)
    except LearnDropError as exc:
        return str(exc).removeprefix(f"run {run_id!r}: ")
    if not (run_dir / "events.jsonl").is_file():
        return NO_EVENTS
    return None


def damaged_summary(run_id: str, why: str) -> dict[str, Any]:
    """A summary with every field, nothing measured, the status ``damaged`` and ``why`` as its error."""
    return {**summarize([]), "run_id": run_id, "status": RunState.DAMAGED.value, "error": why}


def saved_summary(path: Path) -> dict[str, Any] | None:
    """summary.json when it is whole and of this version, else None (then it is recomputed, not rewritten)."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None  # none yet, cut off mid-write, or not JSON
    if not isinstance(saved, dict) or saved.get("summary_version") != SUMMARY_VERSION:
        return None
    if not SUMMARY_KEYS <= set(saved) or saved.get("status") not in set(RunState):
        return None
    if not isinstance(saved.get("dropped"), list) or not all(isinstance(d, dict) for d in saved["dropped"]):
        return None
    if not all(_number_or_none(saved[k]) for k in NUMBERS if k in saved):
        return None
    return saved


def _number_or_none(value: object) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


__all__ = ["damaged_summary", "problem", "read_config", "saved_summary"]
