"""How far a run's time figures can be trusted on this machine: the spread of training seconds between epochs
that trained the same network. On a busy machine (2 cores shared with another job) one epoch took 46 s
against its neighbours' 4 s, and a run that saved 48.6 % of its FLOPs read "×0.85" mid-run: a time figure
inside that spread is noise, and the page says so; FLOPs are counted, not timed, and do not vary."""

from __future__ import annotations

import pandas as pd

NOISY = 0.15  # a spread above this share of the mean epoch time makes a speedup near 1 unreadable


def epoch_spread(epochs: pd.DataFrame) -> float | None:
    """The relative spread (standard deviation / mean) of training seconds between epochs with the same number
    of units training, pooled over those groups (the first epoch left out: it warms caches); None with fewer
    than two comparable epochs."""
    if epochs is None or len(epochs) < 3 or "active_units" not in epochs:
        return None
    rows = epochs.iloc[1:]
    shares = []
    for _, group in rows.groupby("active_units"):
        if len(group) >= 2 and group["epoch_time_s"].mean() > 0:
            mean = group["epoch_time_s"].mean()
            shares += list((group["epoch_time_s"] - mean) / mean)
    if len(shares) < 2:
        return None
    return float(pd.Series(shares).pow(2).mean() ** 0.5)


def speedup_noise(speedup: float, spreads: list[float | None]) -> str | None:
    """A sentence when the measured speedup is within the epochs' timing spread (then the time figures say
    more about the machine than about the method), else None."""
    spread = max((s for s in spreads if s is not None), default=None)
    if spread is None or spread < NOISY and abs(speedup - 1) > 2 * spread:
        return None
    if abs(speedup - 1) > 2 * spread:
        return (f"Epoch times here vary by ±{100 * spread:.0f} % with the same network (a busy machine): "
                "read the speedup as rough; the FLOPs saved are counted, not timed.")
    return (f"Epoch times here vary by ±{100 * spread:.0f} % with the same network (a busy machine): a "
            f"speedup of ×{speedup:.2f} is within that noise. The FLOPs saved are counted, not timed: they "
            "hold.")


__all__ = ["NOISY", "epoch_spread", "speedup_noise"]
