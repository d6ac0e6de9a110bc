"""A TensorBoard log of a run: a sink on its events, like the run store's writer (``--tensorboard DIR``).

Written through ``torch.utils.tensorboard.SummaryWriter`` (the ``tensorboard`` extra):

- per epoch (step = epoch number, from 1): ``loss/*`` and ``accuracy/*`` (train, and the held-out
  splits the epoch reports), ``flops/forward``, ``flops/backward``, ``flops/forward_baseline``,
  ``flops/forward_saved_pct``, ``units/active``, ``units/trainable_params``, ``time/epoch_s``;
- per check (step = check number, from 1): ``change_score/UNIT`` (s), ``change/UNIT`` (d) and
  ``continuation/UNIT`` (c) of every unit still scored;
- each drop as text (``drops``, step = check): the unit, the epoch and the policy's reason; a
  threshold change and a skipped cache as text too.
"""

from __future__ import annotations

from pathlib import Path

from .. import events as ev
from ..errors import LearnDropError

EPOCH_METRICS = (("loss", ("train_loss", "val_loss", "test_loss")),
                 ("accuracy", ("train_acc", "val_acc", "test_acc")))


class TensorBoardSink:
    """``sink(event)`` writes what TensorBoard can chart; ``close()`` (or ``run_finished``) flushes it."""

    def __init__(self, log_dir: str | Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise LearnDropError("--tensorboard needs the tensorboard package: pip install "
                                 "'learndrop[tensorboard]' (or pip install tensorboard)",
                                 field="tensorboard") from exc
        try:
            self.writer = SummaryWriter(log_dir=str(log_dir))
        except OSError as exc:
            raise LearnDropError(f"cannot write the TensorBoard log to {log_dir}: {exc}".splitlines()[0],
                                 field="tensorboard") from exc

    def __call__(self, event: ev.Event) -> None:
        w = self.writer
        if isinstance(event, ev.EpochEnded):
            self._epoch(event)
        elif isinstance(event, ev.UnitScores):
            for score in event.scores:
                for tag, key in (("change_score", "s"), ("change", "d"), ("continuation", "c")):
                    if score.get(key) is not None:
                        w.add_scalar(f"{tag}/{score['unit']}", score[key], event.check)
        elif isinstance(event, ev.UnitDropped):
            w.add_text("drops", f"epoch {event.epoch + 1}, check {event.check}: {event.reason}", event.check)
        elif isinstance(event, ev.ThresholdsChanged):
            w.add_text("thresholds", f"epoch {event.epoch + 1}: {event.old} -> {event.new}", event.step)
        elif isinstance(event, ev.CacheSkipped):
            w.add_text("cache", f"epoch {event.epoch + 1}: {event.reason}", event.step)
        elif isinstance(event, ev.RunFinished):
            w.add_text("run", f"{event.status}" + (f": {event.error}" if event.error else ""), event.step)
            self.close()

    def _epoch(self, e: ev.EpochEnded) -> None:
        w, n = self.writer, e.epoch + 1
        for group, names in EPOCH_METRICS:
            for name in names:
                value = getattr(e, name, None)
                if value is not None:
                    w.add_scalar(f"{group}/{name.rsplit('_', 1)[0]}", value, n)
        w.add_scalar("flops/forward", e.fwd_flops, n)
        w.add_scalar("flops/backward", e.bwd_flops, n)
        w.add_scalar("flops/forward_baseline", e.baseline_fwd_flops, n)
        if e.baseline_fwd_flops:
            w.add_scalar("flops/forward_saved_pct", 100 * (1 - e.fwd_flops / e.baseline_fwd_flops), n)
        w.add_scalar("units/active", e.active_units, n)
        w.add_scalar("units/trainable_params", e.trainable_params, n)
        w.add_scalar("time/epoch_s", e.epoch_time_s, n)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
