"""The linear schedule's times: when unit i of the ``m = n - 1`` droppable units drops under the ``schedule``
peer (from ``schedule_start`` to ``schedule_end``), and the earliest it may drop under a paced Learn&Drop
(``PolicyConfig.paced``, from ``pace_start`` to the end of training): Learn&Drop decides whether a unit has
stopped learning, the pace how soon in training it may go."""

from __future__ import annotations

from ..config import PolicyConfig


def schedule_times(n: int, start: float, end: float) -> list[float]:
    """When each of the ``m = n - 1`` droppable units goes: ``start + (end - start) * (i + 1) / m``."""
    m = n - 1
    return [start + (end - start) * (i + 1) / m for i in range(m)]


def due(i: int, times: list[float], progress: float) -> bool:
    """Whether training (``progress``, the share done) has reached unit i's time (``times``: one per droppable
    unit, the last unit none)."""
    return i < len(times) and times[i] <= progress + 1e-12


def pace_times(n: int, cfg: PolicyConfig) -> list[float]:
    """The paced rule's times: the earliest each droppable unit may drop."""
    return schedule_times(n, cfg.pace_start, 1.0)


def peer_times(n: int, cfg: PolicyConfig) -> list[float]:
    """The schedule peer's times: when each droppable unit drops."""
    return schedule_times(n, cfg.schedule_start, cfg.schedule_end)
