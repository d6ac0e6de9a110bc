"""What other thresholds would have done: a recorded run's changes replayed through ``policy.replay``.

The replay uses the very code the training loop uses. Its forward FLOPs are an estimate from the
per-unit FLOPs of ``run_started``: before a drop every image costs the full network; once a prefix is
dropped and cached, it costs the suffix only, plus what the cache costs as the training loop builds it:
one pass of the prefix over the data the run has (for a streaming run, each chunk as it arrives),
and one pass of newly dropped units over the rows already cached when the prefix grows. Without a
cache (turned off, or over its cap) the prefix still runs forward under no_grad, so forward FLOPs are
not saved at all. Augmentation keeps the cache: it then holds a fixed set of exact augmented views of
every image (crops and mirror images, see ``method.cache.ActivationCache``), and building it costs one
pass of the prefix per view; the estimate counts one pass, so for an augmented run it is somewhat low
(the explorer shows it next to the measured FLOPs).

A unit the recorded run dropped has no change recorded afterwards; the replay counts it as not moving.
A baseline run (policy ``none``) recorded every unit at every check, so replaying it is exact.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from .. import events as ev
from ..config import PolicyConfig
from ..method.cache import cache_cost
from ..method.policy import Decision, replay
from ..summary import reduction_pct
from .tables import DROP_COLUMNS, SCORE_COLUMNS


@dataclass(frozen=True)
class WhatIf:
    scores: pd.DataFrame  # like tables.scores_frame: check, epoch, unit, unit_index, d, s, c, state
    drops: pd.DataFrame  # like tables.drops_frame
    fwd_flops: int  # estimated forward FLOPs of training under these thresholds
    baseline_fwd_flops: int  # the full network for the same images

    @property
    def fwd_reduction_pct(self) -> float | None:
        return reduction_pct(self.fwd_flops, self.baseline_fwd_flops)


def d_rows(scores: pd.DataFrame, units: Sequence[str], values: str = "d"
           ) -> tuple[list[int], list[list[float | None]]]:
    """The recorded change ``d`` (or another score column: ``values``) per check (rows) and unit (columns,
    in ``units`` order); None if unmeasured."""
    if scores.empty:
        return [], []
    table = scores.pivot_table(index="check", columns="unit", values=values, aggfunc="first", dropna=False)
    table = table.reindex(columns=list(units))
    rows = [[None if pd.isna(v) else float(v) for v in row] for row in table.itertuples(index=False)]
    return [int(c) for c in table.index], rows


def prefix_fwd_costs(unit_fwd: Sequence[int]) -> list[int]:
    """Forward FLOPs per image of the first k units, for k = 0..n."""
    out = [0]
    for f in unit_fwd:
        out.append(out[-1] + f)
    return out


@dataclass(frozen=True)
class DataChunk:
    """Training data as it arrived: all of it at once, or one chunk of a streaming run."""
    start_step: int  # steps trained before it arrived
    images: int
    steps_per_epoch: int


def data_chunks(started: ev.RunStarted, chunks: pd.DataFrame) -> list[DataChunk]:
    """The run's training data as it arrived (``chunks`` as tables.chunks_frame; empty unless streaming)."""
    if chunks.empty:
        return [DataChunk(0, started.train_size, started.steps_per_epoch)]
    batch = started.config["batch_size"]
    return [DataChunk(int(c.step), int(c.images), math.ceil(int(c.images) / batch))
            for c in chunks.itertuples()]


def intervals(check_steps: Sequence[int], data: Sequence[DataChunk]) -> tuple[list[float], list[int]]:
    """Images trained between consecutive checks (the first from the start), and the chunk they came from.

    Checks fall inside epochs (the last at an epoch's last step), so an interval never spans two chunks."""
    starts = [c.start_step for c in data]
    images = []
    chunk_of = []
    previous = 0
    for step in check_steps:
        i = max(0, bisect_left(starts, step) - 1)  # the last chunk that started before this step
        images.append((step - previous) * data[i].images / max(1, data[i].steps_per_epoch))
        chunk_of.append(i)
        previous = step
    return images, chunk_of


def estimate_fwd_flops(unit_fwd: Sequence[int], head_fwd: int, prefix: Sequence[int], images: Sequence[float],
                       cached: bool, chunk_of: Sequence[int], chunk_images: Sequence[int]) -> tuple[int, int]:
    """(forward FLOPs, full-network forward FLOPs) of training.

    ``prefix[i]`` is the dropped prefix length while the ``images[i]`` images of interval i are trained
    (interval i ends at check i+1), drawn from data chunk ``chunk_of[i]`` of ``chunk_images[c]`` images;
    ``unit_fwd`` are per-image forward FLOPs of the units. The cache grows as the training loop grows it:
    the newly dropped units over the rows it holds when the prefix grows, the whole prefix over a chunk
    it does not hold yet.
    """
    costs = prefix_fwd_costs(unit_fwd)
    full = costs[-1] + head_fwd
    total = base = 0.0
    # prefix length the cache holds, its rows, the chunks among them
    built = 0
    rows = 0
    held = set()
    for k, n, c in zip(prefix, images, chunk_of):
        base += full * n
        if cached and k > built:
            # extend the cached rows by the newly dropped units
            total += cache_cost(unit_fwd, built, k, rows, 0)
            built = k
        if cached and k > 0 and c not in held:
            # the chunk's rows through the whole prefix
            total += cache_cost(unit_fwd, 0, k, 0, chunk_images[c])
            rows += chunk_images[c]
            held.add(c)
        total += (full - (costs[k] if cached else 0)) * n
    return int(total), int(base)


def replay_run(scores: pd.DataFrame, checks: pd.DataFrame, policy: PolicyConfig, units: Sequence[dict],
               data: Sequence[DataChunk], cached: bool,
               inherited_peaks: Mapping[str, float] | None = None, total_steps: int = 0) -> WhatIf:
    """Replay a run's recorded changes under ``policy``; ``units`` as in run_started (the head last),
    ``data`` as ``data_chunks`` gives it, ``inherited_peaks`` as in run_started (the peaks a fine-tuned run
    inherited; empty for the others), ``total_steps`` as in run_started (0: checks taken as evenly spaced)."""
    names = [u["name"] for u in units[:-1]]
    check_ids, rows = d_rows(scores, names)
    rewind = (d_rows(scores, names, "rewind")[1] if "rewind" in scores and scores["rewind"].notna().any()
              else None)
    epoch_of = dict(zip(checks["check"], checks["epoch"])) if not checks.empty else {}
    step_of = dict(zip(checks["check"], checks["step"])) if not checks.empty else {}
    known = total_steps > 0 and all(c in step_of for c in check_ids)
    progress = [step_of[c] / total_steps for c in check_ids] if known else None
    decisions = replay(names, rows, policy, [inherited_peaks[n] for n in names] if inherited_peaks else None,
                       rewind, progress)
    score_rows, drop_rows = _frames(decisions, check_ids, epoch_of, step_of)
    prefix = [0] + [sum(1 for s in d.scores if s.state == "dropped") for d in decisions[:-1]]
    fwd, base = _schedule_flops(units, prefix, [step_of.get(c, 0) for c in check_ids], data, cached)
    return WhatIf(pd.DataFrame(score_rows, columns=SCORE_COLUMNS),
                  pd.DataFrame(drop_rows, columns=DROP_COLUMNS), fwd, base)


def _schedule_flops(units: Sequence[dict], prefix: Sequence[int], check_steps: Sequence[int],
                    data: Sequence[DataChunk], cached: bool) -> tuple[int, int]:
    images, chunk_of = intervals(check_steps, data)
    return estimate_fwd_flops([u["fwd_flops"] for u in units[:-1]], units[-1]["fwd_flops"], prefix, images,
                              cached, chunk_of, [c.images for c in data])


def _frames(decisions: Sequence[Decision], check_ids: Sequence[int], epoch_of: dict, step_of: dict
            ) -> tuple[list[dict], list[dict]]:
    score_rows, drop_rows = [], []
    for check, decision in zip(check_ids, decisions):
        epoch, step = epoch_of.get(check), step_of.get(check)
        for i, s in enumerate(decision.scores):
            score_rows.append({"check": check, "epoch": epoch, "step": step, "time_s": None, "unit": s.unit,
                               "unit_index": i, "d": s.d, "s": s.s, "c": s.c, "state": s.state})
        for drop in decision.drops:
            drop_rows.append({"unit": drop.unit, "index": drop.index, "epoch": epoch, "check": check,
                              "step": step, "time_s": None, "s": drop.s, "c": drop.c, "reason": drop.reason})
    return score_rows, drop_rows


def recorded_schedule_flops(scores: pd.DataFrame, checks: pd.DataFrame, units: Sequence[dict],
                            data: Sequence[DataChunk], cached: bool) -> tuple[int, int]:
    """The same estimate for what the run actually dropped (to calibrate the estimate against the
    measurement)."""
    if scores.empty:
        return 0, 0
    dropped = scores.assign(is_dropped=scores["state"] == "dropped").groupby("check")["is_dropped"].sum()
    step_of = dict(zip(checks["check"], checks["step"]))
    prefix = [0] + [int(v) for v in dropped.tolist()[:-1]]
    return _schedule_flops(units, prefix, [step_of.get(int(c), 0) for c in dropped.index], data, cached)
