"""Per-epoch checkpoints: everything needed to continue a run exactly where an epoch ended.

Saved with ``torch.save`` and loaded with ``weights_only=True``: tensors, dicts, lists and plain
values only. A checkpoint holds the model, the Learn&Drop controller's state (the policy's state and
live thresholds, the optimizer over the units still trained, how the activation cache was built, so a
resumed run rebuilds it bit for bit), the random generators, and how many lines of events.jsonl had
been written, so the events after it can be set aside.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .. import events as ev
from ..errors import LearnDropError, first_line
from ..files import save_tensors
from ..method.controller import CacheUpdate, LearnDrop
from .world import World

FILENAME = "checkpoint.pt"
VERSION = 2  # 1: the controller's state at the top level (read, converted)
FIELDS = ("epoch", "step", "time_s", "events", "model", "rng")
V1_METHOD = ("policy", "policy_state", "optimizer", "cache_ops", "cache_refused")


def save_checkpoint(run_dir: Path, payload: dict[str, Any]) -> None:
    """Atomic; a full disk is an ``OSError`` (ENOSPC) and leaves no checkpoint.pt.tmp
    (``learndrop.files``)."""
    save_tensors(run_dir / FILENAME, {"version": VERSION, **payload})


def load_checkpoint(run_dir: Path) -> dict[str, Any]:
    path = run_dir / FILENAME
    if not path.is_file():
        raise LearnDropError(f"run {run_dir.name!r} has no checkpoint to resume from (none is written before "
                             "the first epoch ends)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise LearnDropError(f"{path} is not a readable checkpoint: {first_line(exc)}") from exc
    if not isinstance(payload, dict) or payload.get("version") not in (1, VERSION):
        raise LearnDropError(f"{path} is not a checkpoint of this version of learndrop")
    needed = FIELDS + (V1_METHOD if payload["version"] == 1 else ("method",))
    missing = [k for k in needed if k not in payload]
    if missing:
        raise LearnDropError(f"{path} is an incomplete checkpoint (no {', '.join(missing)})")
    if payload["version"] == 1:
        payload["method"] = {k: payload.pop(k) for k in V1_METHOD}
        # kept twice in version 1: the policy state has them
        payload.pop("dropped", None), payload.pop("frozen", None)
    return payload


def epoch_checkpoint(epoch: int, emit: ev.Emitter, ld: LearnDrop, augment_gen: torch.Generator,
                     ranks: list[torch.Tensor] | None) -> dict:
    """What ``train`` hands ``on_epoch`` after an epoch; ``ranks``: every process's augmentation generator, in
    a data-parallel run."""
    rng = {"torch": torch.get_rng_state(), "augment": augment_gen.get_state(),
           **({"ranks": ranks} if ranks else {})}
    return {"epoch": epoch, "step": emit.step, "time_s": emit.clock(),
            "model": {k: v.detach().cpu().clone() for k, v in ld.model.state_dict().items()},
            "method": ld.state_dict(), "rng": rng}


def restore(ck: dict, ld: LearnDrop, augment_gen: torch.Generator, chunks: list[torch.Tensor],
            emit: ev.Emitter, world: World) -> tuple[int, CacheUpdate | None]:
    """Put a run back where its checkpoint left it; returns the first epoch to train and the cache rebuild
    (its FLOPs and seconds count towards that epoch)."""
    start_epoch = ck["epoch"] + 1
    emit.epoch, emit.step = start_epoch, ck["step"]
    emit(ev.CheckpointRestored, from_epoch=start_epoch, set_aside=ck.get("set_aside", 0),
         previous_status=ck.get("previous_status", "interrupted"),
         device=str(next(ld.model.parameters()).device))
    ld.model.load_state_dict(ck["model"])
    rebuilt = ld.load_state_dict(ck["method"], chunks)
    torch.set_rng_state(ck["rng"]["torch"])
    augment_gen.set_state(ck["rng"]["ranks"][world.rank] if world.size > 1 else ck["rng"]["augment"])
    for event in getattr(rebuilt, "events", ()):
        emit.send(event)
    return start_epoch, rebuilt
