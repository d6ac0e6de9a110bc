"""The learning-rate schedules: a pure function of the step, nanoGPT's ``get_lr``."""

from __future__ import annotations

import math

from ..config import RunConfig


def lr_at(config: RunConfig, step: int, total_steps: int) -> float:
    """Learning rate at optimizer step ``step`` (0-based) of ``total_steps``."""
    progress = step / max(1, total_steps)
    if config.lr_schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * progress))
    if config.lr_schedule == "onecycle":  # linear warm-up over 20 %, then linear decay to 0
        return config.lr * (progress / 0.2 if progress < 0.2 else (1 - progress) / 0.8)
    if config.lr_schedule == "wsd":  # warm-up over 5 %, stable until 70 %, linear decay to 0
        return config.lr * min(1.0, progress / 0.05, (1 - progress) / 0.3)
    return config.lr
