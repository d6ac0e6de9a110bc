"""Why a unit drops under Learn&Drop's rule, as the sentence its ``unit_dropped`` event carries: its scores
against the thresholds, its annealing, or the freeze it came from; the pace it waited for and the rewind test
it passed."""

from __future__ import annotations

from typing import Any

from ..config import PolicyConfig


def drop_reason(unit: str, s: float | None, c: float | None, cfg: PolicyConfig, annealing: tuple,
                frozen_earlier: bool, observed: dict[str, Any]) -> str:
    """Why ``unit`` drops, as a sentence: ``s`` and ``c`` are its scores now, ``annealing`` its
    (check, progress, end progress) or (), ``observed`` what the gates saw of it (its rewind test)."""
    if annealing:
        reason = (f"{unit} dropped: a candidate since check {int(annealing[0])}, its learning rate "
                  f"annealed to 0 over {cfg.anneal} checks")
    elif frozen_earlier or s is None or c is None:
        reason = f"{unit} dropped: frozen earlier as a candidate, now at the front of the network"
    else:
        slowing = "still slowing down" if c < 1 else "no longer speeding up"
        wait = f" for {cfg.patience} checks" if cfg.patience > 1 else ""
        reason = (f"{unit} dropped: change {s:.2f} of its peak (tau {cfg.tau:g}), continuation {c:.2f} "
                  f"(kappa {cfg.kappa:g}), {slowing}{wait}")
    if "due" in observed:
        reason += f"; paced: the pace allowed it from {100 * observed['due']:.0f} % of training"
    if "rewind" in observed:
        reason += f"; rewinding its last interval changed the probe loss by {100 * observed['rewind']:.2g} %"
    return reason
