"""The linear schedule's times: when unit i of the ``m = n - 1`` droppable units drops under the ``schedule``
peer, and the earliest it may drop under a paced Learn&Drop (``PolicyConfig.paced``): Learn&Drop decides
whether a unit has stopped learning, the schedule bounds how soon in training it may go."""

from __future__ import annotations

from ..config import PolicyConfig


def schedule_times(n: int, cfg: PolicyConfig) -> list[float]:
    """When each of the ``m = n - 1`` droppable units drops: ``start + (end - start) * (i + 1) / m``."""
    m = n - 1
    return [cfg.schedule_start + (cfg.schedule_end - cfg.schedule_start) * (i + 1) / m for i in range(m)]


def due(i: int, n: int, cfg: PolicyConfig, progress: float) -> bool:
    """Whether training (``progress``, the share done) has reached unit i's time on the schedule."""
    return i < n - 1 and schedule_times(n, cfg)[i] <= progress + 1e-12
