"""Fine-tuning from a recorded run: its backbone into a new network, and the peaks its units reached there.

The run is read by the run store (``runs.finetune.source_of``); this module only uses what it read, so the
training layer needs no runs folder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config import RunConfig
from ..errors import LearnDropError
from ..models import UnitNetwork


@dataclass(frozen=True)
class Source:
    """A recorded run a fine-tuning starts from: its config, saved model, and per unit the largest change
    ``d`` it recorded (with the peaks it inherited itself, when it was fine-tuned too)."""

    run_id: str
    config: RunConfig
    state: dict[str, torch.Tensor]
    peaks: dict[str, float]
    steps_per_epoch: int  # of its first chunk, as its run_started says


def load_backbone(model: UnitNetwork, config: RunConfig, source: Source) -> None:
    """Take every unit's weights from the source run; the head stays new (new classes)."""
    theirs = source.config
    if (theirs.model, theirs.width) != (config.model, config.width):
        raise LearnDropError(f"--init-from {source.run_id}: that run trained {theirs.model} at width "
                             f"{theirs.width:g}, this one asks for {config.model} at width {config.width:g}",
                             field="init_from")
    head = model.head_name + "."
    backbone = {k: v for k, v in source.state.items() if not k.startswith(head)}
    own = {k: v for k, v in model.state_dict().items() if not k.startswith(head)}
    if set(backbone) != set(own) or any(backbone[k].shape != own[k].shape for k in own):
        raise LearnDropError(f"--init-from {source.run_id}: its saved model does not fit this network "
                             "(different input channels or image size?)", field="init_from")
    model.load_state_dict(backbone, strict=False)


def inherited_peaks(source: Source, config: RunConfig, units: list[str], images_per_epoch: float
                    ) -> dict[str, float]:
    """Each unit's peak change in the source run, in this run's units and scale.

    A pretrained unit moves little from the first step, so measured against its own peak it never
    looks converged; measured against the peak it reached while it learned, it does. The recorded
    peak (change over one check, already per unit of learning rate where ``lr_normalized``) is scaled
    by this run's learning rate and steps per check over that run's: early in training the change
    grows linearly with both. Empty (own peaks only) where the runs measured d differently.
    """
    theirs = source.config
    if (theirs.policy.measure, theirs.policy.lr_normalized) != (config.policy.measure,
                                                                config.policy.lr_normalized):
        return {}
    if not source.steps_per_epoch or not set(units) <= set(source.peaks):
        return {}
    source_steps = source.steps_per_epoch / theirs.checks_per_epoch
    steps = math.ceil(images_per_epoch / config.batch_size) / config.checks_per_epoch
    scale = (config.lr * steps) / (theirs.lr * source_steps)
    return {u: source.peaks[u] * scale for u in units}
