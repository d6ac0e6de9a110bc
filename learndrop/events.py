"""Typed training events: frozen dataclasses of plain Python values, one JSON line each.

Every event carries ``run_id``, ``epoch`` (0-based), ``step`` (optimizer steps so far) and ``time_s``
(seconds since the run started). ``run_started`` is always first and ``run_finished`` always last. The
controller (``LearnDrop.check``) makes its events unstamped, with its own step count; an ``Emitter``
stamps them with the run's id, epoch, step and clock when it hands them on (``Emitter.send``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from . import typecheck


@dataclass(frozen=True, kw_only=True)
class Event:
    type: ClassVar[str] = "event"
    run_id: str = ""
    epoch: int = 0
    step: int = 0
    time_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    type: ClassVar[str] = "run_started"
    config: dict[str, Any]
    units: list[dict[str, Any]]  # per unit and the head: name, params, fwd_flops, bwd_flops (per sample)
    device: str
    train_size: int
    test_size: int
    classes: list[str]
    steps_per_epoch: int  # of the first chunk (all of the data unless streaming)
    input_shape: list[int]  # C, H, W
    total_steps: int = 0  # all steps of the run (0 in recordings that predate it)
    data_notes: list[str] = field(default_factory=list)  # what loading the data had to fix
    inherited_peaks: dict[str, float] = field(default_factory=dict)  # fine-tuning: the source run's peaks
    val_size: int = 0  # images held out from the training set as the validation split (config val_split)
    normalization: dict[str, Any] = field(default_factory=dict)  # name, mean, std (0..1 units) of the inputs


@dataclass(frozen=True, kw_only=True)
class EpochStarted(Event):
    type: ClassVar[str] = "epoch_started"
    lr: float


@dataclass(frozen=True, kw_only=True)
class Progress(Event):
    type: ClassVar[str] = "progress"
    loss: float  # mean training loss since the last progress event
    images_per_s: float
    lr: float
    epoch_step: int  # step within the epoch, 1-based
    epoch_steps: int


@dataclass(frozen=True, kw_only=True)
class UnitScores(Event):
    type: ClassVar[str] = "unit_scores"
    check: int  # 1-based
    scores: list[dict[str, Any]]  # per unit: unit, d, s, c, state (training|candidate|frozen|dropped)
    thresholds: dict[str, Any]
    # mean learning rate since the last check / peak (d is divided by it if lr_normalized)
    lr_factor: float = 1.0


@dataclass(frozen=True, kw_only=True)
class UnitDropped(Event):
    type: ClassVar[str] = "unit_dropped"
    unit: str
    index: int
    check: int
    s: float | None
    c: float | None
    reason: str


@dataclass(frozen=True, kw_only=True)
class UnitFrozen(Event):
    type: ClassVar[str] = "unit_frozen"
    unit: str
    check: int


@dataclass(frozen=True, kw_only=True)
class ThresholdsChanged(Event):
    type: ClassVar[str] = "thresholds_changed"
    old: dict[str, Any]
    new: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class CacheBuilt(Event):
    type: ClassVar[str] = "cache_built"
    units: int  # prefix length whose output is cached
    extended_rows: int  # cached rows carried from a shorter prefix through the newly dropped units
    added_rows: int  # rows computed from images (new data: the training set, or a newly arrived chunk)
    rows: int  # rows cached in all
    bytes: int
    seconds: float
    dtype: str
    fwd_flops: int  # what building it cost


@dataclass(frozen=True, kw_only=True)
class CacheSkipped(Event):
    type: ClassVar[str] = "cache_skipped"
    reason: str
    bytes_needed: int


@dataclass(frozen=True, kw_only=True)
class ChunkStarted(Event):
    type: ClassVar[str] = "chunk_started"
    chunk: int  # 0-based
    chunks: int
    images: int
    classes: list[int]  # class indices present in this chunk


@dataclass(frozen=True, kw_only=True)
class ChunkEnded(Event):
    type: ClassVar[str] = "chunk_ended"
    chunk: int
    test_acc: float  # full test set
    seen_acc: float  # test images of the classes seen so far
    val_acc: float | None = None  # the validation split (None without one)
    per_class_acc: dict[str, float]  # classes seen so far, by name


@dataclass(frozen=True, kw_only=True)
class CheckpointRestored(Event):
    type: ClassVar[str] = "checkpoint_restored"
    from_epoch: int  # first epoch trained after the restore (0-based)
    set_aside: int  # events written after the checkpoint, moved to events.before-resume-N.jsonl
    previous_status: str  # how the run had ended: stopped | failed | interrupted
    device: str = ""  # the device it continues on (resume --device may move a run; empty in older recordings)


@dataclass(frozen=True, kw_only=True)
class RunPaused(Event):
    type: ClassVar[str] = "run_paused"


@dataclass(frozen=True, kw_only=True)
class RunUnpaused(Event):
    type: ClassVar[str] = "run_unpaused"
    paused_s: float


@dataclass(frozen=True, kw_only=True)
class EpochEnded(Event):
    type: ClassVar[str] = "epoch_ended"
    train_loss: float
    train_acc: float
    test_loss: float  # on the data set's test split: reported, never used to choose anything
    test_acc: float
    val_loss: float | None = None  # on the validation split held out from the training images (None: none)
    val_acc: float | None = None
    epoch_time_s: float  # training only: cache building and instrumentation included, evaluation not
    eval_time_s: float
    instrument_time_s: float  # part of epoch_time_s spent on scores, events and FLOPs measurement
    data_time_s: float  # part of epoch_time_s spent preparing batches
    fwd_flops: int  # every forward pass run: the steps', the cache builds', the probe batch's
    bwd_flops: int
    baseline_fwd_flops: int  # the full network for the same steps
    baseline_bwd_flops: int
    trainable_params: int
    active_units: int  # units still trained
    images: int  # training images seen this epoch
    probe_flops: int = 0  # part of fwd_flops: the probe batch's passes (function-space scores, rewind tests)


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    type: ClassVar[str] = "run_finished"
    status: str  # completed | stopped | failed | interrupted
    error: str | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls for cls in (RunStarted, EpochStarted, Progress, UnitScores, UnitDropped, UnitFrozen,
                              ThresholdsChanged, CacheBuilt, CacheSkipped, ChunkStarted, ChunkEnded,
                              CheckpointRestored, RunPaused, RunUnpaused, EpochEnded, RunFinished)
}

# event types recorded under older names: the units were "layers", lifting a pause "resumed" a run
RENAMED = {"layer_scores": "unit_scores", "layer_dropped": "unit_dropped", "layer_frozen": "unit_frozen",
           "run_resumed": "run_unpaused"}

Sink = Callable[[Event], None]


def to_dict(event: Event) -> dict[str, Any]:
    return {"type": event.type, **dataclasses.asdict(event)}


def to_json(event: Event) -> str:
    return json.dumps(to_dict(event), allow_nan=True, separators=(",", ":"))


# the entries of the list fields that pages read field by field, and their fields' types
_ENTRIES: dict[tuple[type[Event], str], dict[str, Any]] = {
    (UnitScores, "scores"): {"unit": str, "state": str, "d": float | None, "s": float | None,
                             "c": float | None},
    # older recordings may lack a unit's counts (None: absent), never hold them as text
    (RunStarted, "units"): {"name": str, "params": int | None, "fwd_flops": float | None,
                            "bwd_flops": float | None},
}


def _entries_fit(entries: list, shape: dict[str, Any]) -> bool:
    tests = [(key, typecheck.checker(hint)) for key, hint in shape.items()]
    for entry in entries:
        if not isinstance(entry, dict):
            return False
        for key, test in tests:
            if not test(entry.get(key)):
                return False
    return True


def from_dict(data: dict[str, Any]) -> Event:
    """The event a line holds; ``ValueError`` (a line to skip and count) for an unknown type or a value of the
    wrong type (``"fwd_flops": null``), ``TypeError`` for a missing field: what reads events trusts their
    types."""
    if not isinstance(data, dict):
        raise ValueError("an event is a JSON object")
    data = dict(data)
    kind = data.pop("type", None)
    cls = EVENT_TYPES.get(RENAMED.get(kind, kind) if isinstance(kind, str) else kind)
    if cls is None:
        raise ValueError("unknown event type")
    names = {f.name for f in dataclasses.fields(cls)}
    if cls is RunStarted and "reference_peaks" in data:  # recorded before "inherited peaks" was the one name
        data.setdefault("inherited_peaks", data.pop("reference_peaks"))
    if cls in (EpochEnded, ChunkEnded) and "test_acc" not in data:  # recorded before the validation split:
        data["test_acc"], data["val_acc"] = data.get("val_acc"), None  # their val_* were the test split's
        data["test_loss"], data["val_loss"] = data.get("val_loss"), None
    fields = {k: v for k, v in data.items() if k in names}
    hints = typecheck.hints(cls)
    for name, value in fields.items():
        if not typecheck.fits(value, hints[name]):
            wanted = typecheck.describe(hints[name])
            raise ValueError(f"{cls.type}: {name} is {json.dumps(value)[:40]}, not {wanted}")
        shape = _ENTRIES.get((cls, name))
        if shape and not _entries_fit(value, shape):
            raise ValueError(f"{cls.type}: an entry of {name} lacks a field or has one of the wrong type")
    return cls(**fields)


def from_json(line: str) -> Event:
    return from_dict(json.loads(line))


@dataclass
class Emitter:
    """Stamps events with the run's id, position and clock, and hands them to every sink."""

    run_id: str
    sinks: list[Sink] = field(default_factory=list)
    clock: Callable[[], float] | None = None
    epoch: int = 0
    step: int = 0

    def __call__(self, cls: type[Event], **fields: Any) -> Event:
        return self.send(cls(**fields))

    def send(self, event: Event) -> Event:
        """``event`` stamped with the run's id, epoch, step and clock, handed to every sink."""
        event = dataclasses.replace(event, run_id=self.run_id, epoch=self.epoch, step=self.step,
                                    time_s=round(self.clock(), 4) if self.clock else 0.0)
        for sink in self.sinks:
            sink(event)
        return event
