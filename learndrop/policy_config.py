"""The drop rule's settings: ``PolicyConfig``, one small frozen dataclass, validated, saved inside the run's
config (``config.RunConfig.policy``)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import LearnDropError, check_choice

FREEZEOUT_SCALES = ("linear", "squared", "cubic")
MEASURES = ("params", "directions", "function")
PEAKS = ("own", "network")
THRESHOLDS = ("tau", "kappa", "warmup", "patience")  # the live-tunable part of a PolicyConfig (the sliders)


@dataclass(frozen=True)
class PolicyConfig:
    """The drop rule (README: "The method"). Frozen: live changes make a new one (``dataclasses.replace``)."""

    # learndrop | none (baseline: scores recorded, nothing dropped) | a peer (method/peers)
    name: str = "learndrop"
    tau: float = 0.4  # change score s = d / peak(d) at or below which a unit may drop, in (0, 1]
    kappa: float = 1.0  # continuation score c = d(t) / d(t - window) at or below which it may drop, > 0
    warmup: int = 1  # checks before any unit can be a candidate
    patience: int = 1  # consecutive candidate checks before a drop
    window: int = 2  # checks back for the continuation score
    # params: d on the raw parameters | directions: BN-followed conv filters at unit length |
    # function: 1 - linear CKA of the unit's output on a fixed probe batch (the validation split's), last
    # check to now
    measure: str = "directions"
    lr_normalized: bool = True  # divide d by the interval's mean learning rate (as a share of the peak)
    freeze_candidates: bool = False  # freeze (not drop) candidates behind a unit still training
    # fine-tuning from a recorded run: start each unit's peak at the one it had there
    inherit_peaks: bool = True
    # rewind gate: a candidate drops only if putting it back to its weights of the last check changes the
    # probe batch's loss by less than this share (0.01: 1 %); 0: no gate
    rewind_eps: float = 0.0
    # checks over which a candidate's own learning rate is annealed to 0 before it drops; 0: at once
    anneal: int = 0
    # what s = d / peak divides by: own (the unit's own peak change so far, the paper's) | network (the
    # largest change any unit still training made at this check)
    peak: str = "own"
    # paced: a unit drops no earlier than a linear schedule from pace_start to the end of training would
    # drop it; the rule decides whether it has stopped learning, the pace how soon in training it may go
    # (the default since leave-one-pair-out chose it: docs/benchmarks/leave-one-out.md)
    paced: bool = True
    # the pace: share of training, in [0, 1), where the first droppable unit's time lies before spreading
    # (unit i of m may go from pace_start + (1 - pace_start) * (i + 1) / m)
    pace_start: float = 0.25
    # the peers (README: "Policies"); each default is its source's
    # FreezeOut: share of training, in (0, 1], where the first unit's t_i lies before scaling (FreezeOut's
    # --t_0)
    freezeout_t0: float = 0.8
    # FreezeOut: linear | squared | cubic, t_i's growth with depth (its --how_scale)
    freezeout_scale: str = "cubic"
    # FreezeOut: start each unit at lr / t_i, so all travel alike (its --scale_lr)
    freezeout_scale_lr: bool = True
    # AutoFreeze: percentile, in (0, 100], of the units' gradient-norm change rates (AutoFreeze's
    # --percentile: 50)
    autofreeze_percentile: float = 50.0
    # schedule: share of training, in [0, 1), where drops begin (Composer's freeze_start)
    schedule_start: float = 0.5
    # schedule: share of training, in (start, 1], by which all droppable units are dropped (Composer's
    # freeze_level 1)
    schedule_end: float = 1.0
    # freeze-first-k: units dropped before any training, >= 0 (partial fine-tuning's usual first few)
    k: int = 1

    def validate(self) -> None:
        check_choice("peak", self.peak, PEAKS)
        if self.measure not in MEASURES:
            raise LearnDropError(f"unknown measure {self.measure!r}; choose one of: {', '.join(MEASURES)}",
                                 field="measure")
        if not isinstance(self.name, str) or not self.name:
            # which: method.registry
            raise LearnDropError(f"a policy is named, got {self.name!r}", field="policy")
        if not (0.0 < self.tau <= 1.0):
            raise LearnDropError(f"tau must be in (0, 1], got {self.tau}", field="tau")
        if not (0.0 < self.kappa < math.inf):
            raise LearnDropError(f"kappa must be a positive finite number, got {self.kappa}", field="kappa")
        for name in ("warmup", "patience", "window", "anneal"):
            low = 0 if name in ("warmup", "anneal") else 1
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise LearnDropError(f"{name} must be an integer >= {low}, got {value}", field=name)
        if not (isinstance(self.rewind_eps, (int, float)) and 0.0 <= self.rewind_eps < 1.0):
            raise LearnDropError(f"rewind_eps must be a number in [0, 1), got {self.rewind_eps}",
                                 field="rewind_eps")
        self._validate_peers()

    def _validate_peers(self) -> None:
        bounds = (("freezeout_t0", 0.0, 1.0, "(]"), ("autofreeze_percentile", 0.0, 100.0, "(]"),
                  ("schedule_start", 0.0, 1.0, "[)"), ("schedule_end", 0.0, 1.0, "(]"),
                  ("pace_start", 0.0, 1.0, "[)"))
        for name, low, high, ends in bounds:
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (number and (value >= low if ends[0] == "[" else value > low)
                    and (value <= high if ends[1] == "]" else value < high)):
                interval = f"{ends[0]}{low:g}, {high:g}{ends[1]}"
                raise LearnDropError(f"{name} must be a number in {interval}, got {value}", field=name)
        if self.schedule_start >= self.schedule_end:
            raise LearnDropError(f"schedule_end ({self.schedule_end}) must be after schedule_start "
                                 f"({self.schedule_start})", field="schedule_end")
        check_choice("freezeout_scale", self.freezeout_scale, FREEZEOUT_SCALES)
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 0:
            raise LearnDropError(f"k must be an integer >= 0, got {self.k}", field="k")

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> PolicyConfig:
        """The policy a run recorded (its config.json, a checkpoint): fields it does not know are left out,
        and one recorded before the pace was the default says nothing of it and was unpaced; one paced
        before ``pace_start`` existed paced from ``schedule_start``."""
        known = {f.name for f in dataclasses.fields(cls)}
        given = {k: v for k, v in data.items() if k in known}
        given.setdefault("paced", False)
        if given["paced"] is True and "pace_start" not in given:
            given["pace_start"] = given.get("schedule_start", cls.schedule_start)
        return cls(**given)

    def thresholds(self) -> dict[str, float | int]:
        """The live-tunable part, as recorded in ``thresholds_changed`` events."""
        return {name: getattr(self, name) for name in THRESHOLDS}
