"""What one epoch accumulates while it trains (loss, hits, time shares, FLOPs), and the progress events it
reports every few steps: one device sync each, summed over a data-parallel run's processes."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from .. import events as ev
from ..errors import LearnDropError
from ..method.controller import CacheUpdate, LearnDrop
from .control import TrainingControl
from .world import World


class StopRequested(Exception):
    """Raised inside the loop when the control's stop flag is set (never escapes ``train``)."""


@dataclass
class EpochMeters:
    """What one epoch accumulates. Loss and hits stay on the device (no sync per step)."""

    loss_sum: torch.Tensor
    correct: torch.Tensor
    window_loss: torch.Tensor  # since the last progress event
    window_images: int = 0
    window_start: float = field(default_factory=time.perf_counter)
    paused_s: float = 0.0
    instrument_s: float = 0.0  # scores, checks, progress events
    data_s: float = 0.0  # preparing batches
    extra_s: float = 0.0  # a cache rebuilt on resume, before the epoch began
    extra_fwd: int = 0  # and its FLOPs
    flops_at_start: tuple[int, int, int] = (0, 0, 0)  # the controller's forward, backward, probe FLOPs then

    @classmethod
    def start(cls, device: torch.device, ld: LearnDrop, carry: CacheUpdate | None = None) -> EpochMeters:
        zero = torch.zeros((), device=device)
        return cls(zero.clone(), torch.zeros((), device=device, dtype=torch.long), zero.clone(),
                   extra_s=carry.seconds if carry else 0.0, extra_fwd=carry.fwd_flops if carry else 0,
                   flops_at_start=(ld.flops.fwd, ld.flops.bwd, ld.flops.probe))

    def add(self, loss: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        b = len(y)
        self.loss_sum += loss.detach() * b
        self.window_loss += loss.detach() * b
        self.window_images += b
        self.correct += (out.argmax(1) == y).sum()

    def reduce(self, world: World, stop: bool) -> bool:
        """The epoch's loss and hits summed over the processes; whether any of them was asked to stop."""
        if world.size == 1:
            return stop
        total = world.sum(torch.stack([self.loss_sum.double(), self.correct.double(),
                                       torch.tensor(float(stop), dtype=torch.float64,
                                                    device=self.correct.device)]))
        self.loss_sum, self.correct = total[0].float(), total[1].long()
        return bool(total[2] > 0)

    def totals(self, ld: LearnDrop, images: int, processes: int = 1) -> dict:
        """The epoch's accuracy, time shares and FLOPs (``images`` and ``processes``: over all processes, each
        of which counted its own FLOPs), as ``epoch_ended`` records them."""
        full, (fwd0, bwd0, probe0) = ld.full_flops, self.flops_at_start
        return dict(train_acc=float(self.correct) / images, instrument_time_s=self.instrument_s,
                    data_time_s=self.data_s, fwd_flops=(ld.flops.fwd - fwd0 + self.extra_fwd) * processes,
                    bwd_flops=(ld.flops.bwd - bwd0) * processes,
                    probe_flops=(ld.flops.probe - probe0) * processes,
                    baseline_fwd_flops=full.fwd_total * images,
                    baseline_bwd_flops=full.bwd_total * images, trainable_params=ld.trainable_params,
                    active_units=ld.active_units, images=images)


def report_progress(emit: ev.Emitter, meters: EpochMeters, lr: float, epoch_step: int, epoch_steps: int,
                    world: World, control: TrainingControl) -> None:
    """A progress event (one device sync). Data-parallel: the loss and images summed over the processes, and
    whether any was asked to stop (all stop here together)."""
    start = time.perf_counter()
    loss = float(meters.window_loss)
    images = meters.window_images
    stop = False
    if world.size > 1:
        total = world.sum(torch.tensor([loss, images, float(control.stop_requested)], dtype=torch.float64,
                                       device=meters.window_loss.device))
        loss = total[0].item()
        images = int(total[1].item())
        stop = bool(total[2] > 0)
    mean_loss = loss / max(1, images)
    if not math.isfinite(mean_loss):
        raise diverged(mean_loss, emit.epoch, emit.step)
    if stop:
        raise StopRequested
    elapsed = max(1e-9, start - meters.window_start)
    emit(ev.Progress, loss=mean_loss, images_per_s=images / elapsed, lr=lr, epoch_step=epoch_step,
         epoch_steps=epoch_steps)
    meters.window_loss.zero_()
    meters.window_images, meters.window_start = 0, time.perf_counter()
    meters.instrument_s += time.perf_counter() - start


def diverged(loss: float, epoch: int, step: int) -> LearnDropError:
    return LearnDropError(f"training diverged: the loss became {loss} at epoch {epoch + 1}, step {step}; "
                          "try a lower learning rate")
