"""Look inside: what each unit computes, recorded at every check into ``inside.jsonl`` beside the run.

An event sink of the training: at each ``unit_scores`` (the end of a check, its drops done) it runs a few
fixed test images through the network in eval mode and writes one JSON line: the first unit's filters
(up to ``FILTERS``), and for each shown unit (up to ``MAX_UNITS``, spread over the network) its strongest
feature maps per image (``MAPS`` channels, at most ``MAP_PX`` px a side), as uint8 in base64. A dropped
unit is recorded once more at its drop and never again: its input and weights are frozen, so its maps
stay as they were (the reader says "unchanged since check k"). The file is capped at ``MAX_BYTES``;
a resumed run appends to it. Each line carries the seconds its recording took, so its share of the
training time can be read back (``report.inside``).
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import events as ev
from ..data.loader import Normalizer
from ..report.inside import FILE
from ..training.prepare import Setup

IMAGES = 3
FILTERS = 64
MAPS = 8
MAP_PX = 16
MAX_UNITS = 16
MAX_BYTES = 8 * 2**20  # a run's file stops growing here (a line says so)


def to_uint8(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """``x`` scaled to 0..255 over ``dims`` (each map or filter on its own scale)."""
    low, high = x.amin(dim=dims, keepdim=True), x.amax(dim=dims, keepdim=True)
    return ((x - low) / (high - low).clamp_min(1e-12) * 255).round().to(torch.uint8)


def encode(x: torch.Tensor) -> dict:
    return {"shape": list(x.shape), "data": base64.b64encode(x.cpu().contiguous().numpy().tobytes()).decode()}


def first_filters(unit: nn.Module) -> torch.Tensor | None:
    """The first conv's filters of ``unit`` (up to ``FILTERS``), as uint8 (n, c, h, w); None without a
    conv."""
    conv = next((m for m in unit.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        return None
    return to_uint8(conv.weight.detach()[:FILTERS].float(), (1, 2, 3))


def strongest_maps(out: torch.Tensor) -> tuple[list[list[int]], torch.Tensor]:
    """Per image, the ``MAPS`` channels of ``out`` (B, C, H, W) with the largest mean activation, pooled down
    to at most ``MAP_PX`` px a side: their indices, and the maps as uint8 (B, MAPS, h, w)."""
    strength = out.float().mean(dim=(2, 3))
    top = strength.topk(min(MAPS, out.shape[1]), dim=1).indices
    maps = torch.gather(out.float(), 1, top[:, :, None, None].expand(-1, -1, *out.shape[2:]))
    if max(maps.shape[2:]) > MAP_PX:
        maps = F.adaptive_avg_pool2d(maps, (min(MAP_PX, maps.shape[2]), min(MAP_PX, maps.shape[3])))
    return top.tolist(), to_uint8(maps, (2, 3))


def shown_units(n: int) -> list[int]:
    """Up to ``MAX_UNITS`` unit indices spread over ``n``, the first and the last included."""
    if n <= MAX_UNITS:
        return list(range(n))
    return sorted({round(i * (n - 1) / (MAX_UNITS - 1)) for i in range(MAX_UNITS)})


class InsideRecorder:
    """The sink that writes ``inside.jsonl`` for the run in ``run_dir`` trained on ``setup``."""

    def __init__(self, run_dir: Path, setup: Setup):
        self.path, self.model = Path(run_dir) / FILE, setup.model
        test = setup.test_data
        rows = torch.linspace(0, len(test) - 1, min(IMAGES, len(test))).round().long()
        self.images = test.images[rows]
        self.labels = test.labels[rows]
        self.classes = test.classes
        self.train_images = setup.train_data.images
        self.normalization = setup.normalization  # the inputs as the network sees them (pretrained: its own)
        self.units = shown_units(len(self.model.unit_names))
        self.final: set[int] = set()  # dropped units already recorded at their drop
        self.full = self.path.exists() and self.path.stat().st_size >= MAX_BYTES
        self._x: torch.Tensor | None = None

    def __call__(self, event: ev.Event) -> None:
        if self.full:
            return
        if isinstance(event, ev.RunStarted) and not self.path.exists():
            self._write({"kind": "images", "labels": self.labels.tolist(), "classes": list(self.classes),
                         "units": [self.model.unit_names[k] for k in self.units],
                         "images": encode(self.images)})
        elif isinstance(event, ev.UnitScores):
            self._record(event)

    def _record(self, event: ev.UnitScores) -> None:
        t0 = time.perf_counter()
        states = {s["unit"]: s["state"] for s in event.scores}
        names = self.model.unit_names
        wanted = [k for k in self.units if k not in self.final]
        if not wanted:
            return
        maps, modes = {}, [m.training for m in self.model.modules()]
        self.model.eval()
        with torch.no_grad():
            x = self._inputs()
            for k in range(max(wanted) + 1):
                x = self.model.forward_units(x, k, k + 1)
                if k in wanted and x.dim() == 4:
                    channels, pixels = strongest_maps(x)
                    maps[names[k]] = {"channels": channels, **encode(pixels)}
            filters = first_filters(self.model.unit(0)) if 0 in wanted else None
        for m, mode in zip(self.model.modules(), modes):
            m.training = mode
        self.final |= {k for k in wanted if states.get(names[k]) == "dropped"}
        line = {"kind": "check", "check": event.check, "epoch": event.epoch, "states": states, "maps": maps,
                "filters": encode(filters) if filters is not None else None}
        line["seconds"] = round(time.perf_counter() - t0, 6)
        self._write(line)

    def _inputs(self) -> torch.Tensor:
        # the run's normalisation (the training set's: its statistics from 1,000 images, cheap)
        if self._x is None:
            device = next(self.model.parameters()).device
            norm = self.normalization
            given = norm.for_channels(self.train_images.shape[1]) if norm.mean is not None else (None, None)
            self._x = Normalizer(self.train_images[:1000], device, False, *given)(self.images.to(device))
        return self._x

    def _write(self, line: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(line) + "\n")
            self.full = f.tell() >= MAX_BYTES
            if self.full:
                f.write(json.dumps({"kind": "full", "max_bytes": MAX_BYTES}) + "\n")
