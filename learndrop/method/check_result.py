"""What a check of ``LearnDrop`` gives back (``CheckResult``): the policy's decision, the interval's mean
learning rate as a share of the peak, and the events the check has to say; a drop as its ``unit_dropped``
event."""

from __future__ import annotations

from dataclasses import dataclass

from .. import events as ev
from .policy import Decision, Drop


@dataclass(frozen=True)
class CheckResult:
    decision: Decision
    lr_factor: float  # the interval's mean learning rate as a share of the peak
    events: list[ev.Event]  # thresholds_changed?, unit_scores, unit_dropped..., unit_frozen... (unstamped)

    @property
    def drops(self) -> tuple[Drop, ...]:
        return self.decision.drops


def dropped_event(drop: Drop, check: int) -> ev.UnitDropped:
    """The event that reports ``drop`` at ``check`` (0: before any training)."""
    return ev.UnitDropped(unit=drop.unit, index=drop.index, check=check, s=drop.s, c=drop.c,
                          reason=drop.reason)
