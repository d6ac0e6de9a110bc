"""Shared look of the figures: layout, colours, decimation, SI numbers, chunk and threshold marks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ...config import THRESHOLDS

MAX_COLUMNS = 300  # checks drawn in a heatmap
MAX_POINTS = 200  # points per line
HEIGHT = 340  # px
STATES = ("training", "candidate", "frozen", "dropped")
STATE_COLORS = ("#3b6fb6", "#f28e2b", "#9c6ade", "#d4d4d4")
METHOD = "#3b6fb6"
BASELINE = "#8c8c8c"
FULL = "#c44e52"
FLOPS_AXIS = "FLOPs (conv/matmul, 2·MAC)"
CHUNK = "#333333"  # the line where a streaming run's next data chunk arrives
MAX_TICKS = 12  # ticks on an axis of checks or epochs
MAX_CHUNK_LABELS = 8  # "chunk k" labels per chart; more chunks get a line each, every n-th a label


def _layout(fig: go.Figure, height: int = HEIGHT, legend: bool = True) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), showlegend=legend,
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
                      hoverlabel=dict(namelength=-1), font=dict(size=13))
    return fig


def empty_figure(message: str, height: int = HEIGHT) -> go.Figure:
    """A figure that says why it has nothing to show yet."""
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=14, color="#666"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, height, legend=False)


def si(value: float) -> str:
    """1234567 -> '1.23 M': FLOPs and bytes in SI units, three significant digits."""
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:#.3g}".rstrip(".") + f" {prefix}"
    return f"{value:#.3g}".rstrip(".")


def decimate(values: Sequence, max_n: int, keep: Sequence = ()) -> list:
    """At most about ``max_n`` evenly spaced items of ``values`` (first and last kept), plus ``keep``."""
    values = list(values)
    if len(values) <= max_n:
        return values
    idx = set(np.linspace(0, len(values) - 1, max_n).round().astype(int).tolist())
    keep = set(keep)
    return [v for i, v in enumerate(values) if i in idx or v in keep]


def integer_ticks(fig: go.Figure, last: float, **where) -> go.Figure:
    """Whole-number ticks (1, 2, 5, 10, 20, 50 ... apart, at most ``MAX_TICKS``) on the x axis of checks or
    epochs: plotly's own put ticks at half a check or half an epoch on short runs."""
    step = 1
    while last / step > MAX_TICKS:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    fig.update_xaxes(dtick=step, tick0=0 if step > 1 else 1, tickformat="d", **where)
    return fig


def _unit_order(scores: pd.DataFrame) -> list[str]:
    return scores.drop_duplicates("unit").sort_values("unit_index")["unit"].tolist()


def _threshold_changes(checks: pd.DataFrame) -> list[tuple[int, str]]:
    """(check, label) where the thresholds differ from the check before."""
    out = []
    if checks.empty:
        return out
    cols = list(THRESHOLDS)
    prev = None
    for row in checks[["check", *cols]].itertuples(index=False):
        now = dict(zip(cols, row[1:]))
        if prev is not None and now != prev:
            out.append((int(row[0]), ", ".join(f"{k} {prev[k]:g}→{now[k]:g}" for k in cols
                                               if now[k] != prev[k])))
        prev = now
    return out


def _mark_threshold_changes(fig: go.Figure, checks: pd.DataFrame, **where) -> None:
    for check, label in _threshold_changes(checks):
        fig.add_vline(x=check - 0.5, line=dict(color=FULL, dash="dash", width=2), **where)
        fig.add_annotation(x=check - 0.5, y=1, yref="paper", text=label, showarrow=False, xanchor="left",
                           yanchor="top", font=dict(size=11, color=FULL), bgcolor="rgba(255,255,255,0.8)")


def chunk_starts(chunks: pd.DataFrame | None, axis: str,
                 frame: pd.DataFrame | None = None) -> list[tuple[float, str]]:
    """Where each data chunk of a streaming run starts on a chart's x axis, with its label ("chunk k").

    ``axis`` is the chart's x: "check" (between the chunk's first check and the one before; ``frame`` has the
    columns check and epoch, as the scores and checks frames do), "epoch" (between epoch bars numbered from
    1), "epochs_trained" (epochs done so far, 0 at the start: the loss chart) or "time" (training seconds
    spent before the chunk; ``frame`` is the epochs frame). Empty for a run that does not stream.
    """
    if chunks is None or chunks.empty:
        return []
    out = []
    for chunk, epoch in zip(chunks["chunk"].astype(int), chunks["epoch"].astype(int)):
        if axis == "check":
            if frame is None or frame.empty:
                continue
            later = frame.loc[frame["epoch"] >= epoch, "check"]
            x = float(later.min()) - 0.5 if len(later) else float(frame["check"].max()) + 0.5
        elif axis == "epoch":
            x = epoch + 0.5
        elif axis == "epochs_trained":
            x = float(epoch)
        elif axis == "time":
            if frame is None:
                continue
            before = frame.loc[frame["epoch"] < epoch, "train_time_s"]
            if len(before) < epoch:
                continue  # the epochs before it are not all recorded: no place on this axis
            x = float(before.iloc[-1]) if len(before) else 0.0
        else:
            raise ValueError(f"unknown axis {axis!r}")
        out.append((x, f"chunk {chunk + 1}"))
    return out


def mark_chunks(fig: go.Figure, starts: Sequence[tuple[float, str]], color: str = CHUNK,
                **where) -> go.Figure:
    """A thin vertical line at each chunk's start, labelled at the bottom (at most ``MAX_CHUNK_LABELS``
    labels: with many chunks every n-th); ``where`` picks subplots (row=, col=)."""
    every = max(1, -(-len(starts) // MAX_CHUNK_LABELS))
    for i, (x, label) in enumerate(starts):
        text = dict(annotation_text=label, annotation_position="bottom right",
                    annotation=dict(font=dict(size=11, color="#333"), bgcolor="rgba(255,255,255,0.75)"))
        fig.add_vline(x=x, line=dict(color=color, width=1.5), layer="above",
                      **(text if i % every == 0 else {}), **where)
    return fig


def _grid(scores: pd.DataFrame, value: str, keep: Sequence[int]) -> pd.DataFrame:
    """units (rows, forward order) x checks (columns, decimated) of one score column."""
    grid = scores.pivot_table(index="unit", columns="check", values=value, aggfunc="first", dropna=False)
    grid = grid.reindex(index=_unit_order(scores))
    return grid[decimate(list(grid.columns), MAX_COLUMNS, keep)]


# --- (a) change-score heatmap ------------------------------------------------------------------------
