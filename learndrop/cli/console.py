"""What the command line prints while a run trains and when it ends."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from .. import events as ev


class ProgressBar:
    """A tqdm bar over all steps of the run, fed by events; drops are printed as they happen."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            for note in event.data_notes:
                print(f"note: {note}", file=sys.stderr)
            total = event.total_steps or event.steps_per_epoch * event.config["epochs"]
            self.bar = tqdm(total=total, unit="step", dynamic_ncols=True, file=sys.stderr)
        elif isinstance(event, ev.CheckpointRestored):
            self.bar = tqdm(initial=event.step, unit="step", dynamic_ncols=True, file=sys.stderr)
        elif self.bar is None:
            return
        elif isinstance(event, ev.Progress):
            self.bar.update(event.step - self.bar.n)
            self.bar.set_postfix(epoch=event.epoch + 1, loss=f"{event.loss:.3f}",
                                 img_s=f"{event.images_per_s:.0f}")
        elif isinstance(event, ev.UnitDropped):
            self.bar.write(f"  epoch {event.epoch + 1}: {event.reason}")
        elif isinstance(event, ev.CacheSkipped):
            self.bar.write(f"  cache skipped: {event.reason}")
        elif isinstance(event, ev.EpochEnded):
            val = "" if event.val_acc is None else f"val acc {100 * event.val_acc:.2f} %, "
            self.bar.write(f"epoch {event.epoch + 1}: train loss {event.train_loss:.4f}, {val}test acc "
                           f"{100 * event.test_acc:.2f} %, {event.epoch_time_s:.2f} s, {event.active_units} "
                           "units training")
        elif isinstance(event, ev.RunFinished):
            self.bar.close()


def tensorboard_sinks(a: argparse.Namespace) -> list:
    """--tensorboard DIR: a sink writing the run's TensorBoard log (learndrop/report/tensorboard.py)."""
    if not getattr(a, "tensorboard", None):
        return []
    from ..report.tensorboard import TensorBoardSink

    return [TensorBoardSink(a.tensorboard)]


def format_summary(s: dict) -> str:
    acc = f"{100 * s['test_acc']:.2f} %" if s["test_acc"] is not None else "n/a"
    drops = ", ".join(f"{d['unit']} (epoch {d['epoch']})" for d in s["dropped"]) or "none"
    fwd, train_red = s["fwd_flops_reduction_pct"], s["train_flops_reduction_pct"]
    lines = [
        f"run           {s['run_id']}  [{s['status']}]",
        f"test accuracy {acc}",
        *([f"validation    {100 * s['val_acc']:.2f} % (held-out training images)"]
          if s.get("val_acc") is not None else []),
        f"training time {s['train_time_s']:.1f} s  (evaluation {s['eval_time_s']:.1f} s apart)"
        + (f" on {s['world_size']} processes" if s.get("world_size", 1) > 1 else ""),
        f"forward FLOPs {'n/a' if fwd is None else f'{-fwd + 0.0:+.1f} %'} against full training of the same "
        f"steps (training FLOPs {'n/a' if train_red is None else f'{-train_red + 0.0:+.1f} %'})",
        f"dropped       {drops}",
    ]
    return "\n".join(lines)
