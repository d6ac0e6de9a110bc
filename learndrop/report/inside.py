"""Reading ``inside.jsonl`` (written by ``runs.inside``): the test images, and per check what each unit
computed on them, with its state; a dropped unit shows its maps of the check it dropped at."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import LearnDropError, first_line

FILE = "inside.jsonl"


def decode(blob: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(blob["data"]), dtype=np.uint8).reshape(blob["shape"])


@dataclass(frozen=True)
class UnitView:
    """One unit at one check: its maps (image, channel, h, w), the channels they are, its state then, and the
    check its maps come from (earlier than the one shown when the unit was dropped before it)."""

    unit: str
    state: str
    maps: np.ndarray | None
    channels: list[list[int]]
    since: int | None

    @property
    def unchanged(self) -> bool:
        return self.since is not None


@dataclass
class Inside:
    images: np.ndarray  # uint8 (n, C, H, W), the test images every check ran
    labels: list[int]
    classes: list[str]
    units: list[str]  # the units shown, in forward order
    # the check lines, in order, each check once (the last kept)
    checks: list[dict] = field(default_factory=list)
    full: bool = False  # the file reached its cap; later checks were not recorded

    @property
    def check_ids(self) -> list[int]:
        return [c["check"] for c in self.checks]

    def seconds(self) -> float:
        """What recording took, in all."""
        return sum(c.get("seconds", 0.0) for c in self.checks)

    def filters(self, check: int) -> tuple[np.ndarray | None, int | None]:
        """The first unit's filters (n, c, h, w) at ``check`` (its last record before, once it dropped), and
        the check they come from."""
        for line in reversed(self._upto(check)):
            if line.get("filters"):
                return decode(line["filters"]), line["check"]
        return None, None

    def at(self, check: int) -> list[UnitView]:
        """Every shown unit at ``check``: its state there and its latest maps up to it."""
        lines = self._upto(check)
        if not lines:
            return []
        states = lines[-1]["states"]
        out = []
        for unit in self.units:
            source = next((line for line in reversed(lines) if unit in line["maps"]), None)
            blob = source["maps"][unit] if source else None
            since = source["check"] if source is not None and source["check"] != lines[-1]["check"] else None
            out.append(UnitView(unit, states.get(unit, "training"), decode(blob) if blob else None,
                                blob["channels"] if blob else [], since))
        return out

    def _upto(self, check: int) -> list[dict]:
        return [c for c in self.checks if c["check"] <= check]


def read(run_dir: Path) -> Inside | None:
    """The run's record, or None when it has none (an older run). A line still being written, or one that is
    not UTF-8 JSON of a check's shape (a damaged byte), is left out; ``LearnDropError`` when the first line,
    the images every check refers to, is damaged."""
    path = Path(run_dir) / FILE
    if not path.is_file():
        return None
    head = None
    checks = {}
    full = False
    with open(path, "rb") as f:
        for raw in f:
            try:
                line = json.loads(raw.decode("utf-8"))
            # the line the training thread is writing now, or damaged
            except (UnicodeDecodeError, ValueError):
                continue
            kind = line.get("kind") if isinstance(line, dict) else None
            if kind == "images":
                head = line
            elif kind == "check" and _is_check(line):
                checks[line["check"]] = line  # a resumed run recorded its checks after the checkpoint again
            elif kind == "full":
                full = True
    if head is None:
        return None
    try:
        return Inside(decode(head["images"]), list(head["labels"]), list(head["classes"]),
                      list(head["units"]), [checks[k] for k in sorted(checks)], full)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise LearnDropError(f"{path}: its first line (the test images) is damaged "
                             f"({first_line(exc)})") from None


def _is_check(line: dict) -> bool:
    """A check line as ``runs.inside`` writes it: its number, states and maps (each an encoded array)."""
    maps = line.get("maps")
    return (isinstance(line.get("check"), int) and isinstance(line.get("states"), dict)
            and isinstance(maps, dict)
            and all(isinstance(m, dict) and isinstance(m.get("data"), str)
                    and isinstance(m.get("shape"), list) for m in maps.values())
            and (line.get("filters") is None or isinstance(line["filters"], dict)))
