"""A fine-tuning's source run, read from the runs folder, and a run prepared with it (``prepare_run``)."""

from __future__ import annotations

from .. import events as ev
from ..config import RunConfig
from ..data.datasets import ImageData
from ..training.finetune import Source
from ..training.preflight import preflight
from ..training.prepare import Setup, prepare
from .store import RunStore


def source_of(store: RunStore, run_id: str) -> Source:
    """The recorded run ``run_id``: its config, model, and each unit's largest recorded change."""
    peaks: dict[str, float] = {}
    steps_per_epoch = 0
    for e in store.events(run_id).events:
        if isinstance(e, ev.RunStarted):
            steps_per_epoch = e.steps_per_epoch
            peaks.update(e.inherited_peaks)  # a run that was itself fine-tuned passes its own on
        elif isinstance(e, ev.UnitScores):
            for u in e.scores:
                if u["d"] is not None:
                    peaks[u["unit"]] = max(peaks.get(u["unit"], 0.0), u["d"])
    return Source(run_id, store.config(run_id), store.model_state(run_id), peaks, steps_per_epoch)


def prepare_run(config: RunConfig, store: RunStore | None = None,
                data: tuple[ImageData, ImageData] | None = None) -> Setup:
    """``training.prepare`` with, for a fine-tuning (``config.init_from``), its source run read from ``store``
    (default: the default runs folder)."""
    preflight(config)  # every check that needs no data, before the source run is read
    source = source_of(store or RunStore(), config.init_from) if config.init_from else None
    return prepare(config, data, source)
