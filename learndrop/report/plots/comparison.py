"""Figures that set runs side by side: a metric per run on one axis, FLOPs as bars."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from ._style import BASELINE, FLOPS_AXIS, HEIGHT, METHOD, _layout, chunk_starts, empty_figure, mark_chunks, si


def compare_lines(frames: Mapping[str, pd.DataFrame], x: str, y: str, x_title: str, y_title: str,
                  scale: float = 1.0, log_y: bool = False, chunks: Mapping[str, pd.DataFrame] | None = None
                  ) -> go.Figure:
    """One line per run: column ``y`` (times ``scale``) against column ``x`` of each run's epochs frame; where
    ``chunks`` (by the same names) has a streaming run's chunks, their starts on the x axis (epochs or time)."""
    frames = {k: v for k, v in frames.items() if not v.empty}
    if not frames:
        return empty_figure("Choose runs that have finished at least one epoch.")
    fig = go.Figure()
    colors = sample_colorscale("Turbo", [0.1 + 0.8 * i / max(1, len(frames) - 1) for i in range(len(frames))])
    for (name, df), color in zip(frames.items(), colors):
        fig.add_trace(go.Scatter(x=df[x], y=df[y] * scale, mode="lines+markers", name=name, line=dict(color=color)))
    axis = {"epoch_number": "epoch", "train_time_s": "time"}.get(x)
    if axis and chunks:
        starts = [s for name, df in frames.items() for s in chunk_starts(chunks.get(name), axis, df)]
        mark_chunks(fig, sorted(set(starts)))  # runs chunked alike share their lines
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title=y_title, type="log" if log_y else None, tickformat="~s" if "FLOPs" in y_title else None,
                     rangemode="tozero" if not log_y and ("FLOPs" in y_title or "time" in y_title) else None)
    _layout(fig, height=HEIGHT + 40)
    fig.update_layout(legend=dict(y=-0.25, yanchor="top"))
    return fig


# --- Threshold explorer ------------------------------------------------------------------------------
def flops_bars(values: Mapping[str, float | None], full: float) -> go.Figure:
    """Forward FLOPs of training under several schedules, against the full network's."""
    items = {k: v for k, v in values.items() if v is not None}
    if not items or not full:
        return empty_figure("This run has no FLOPs recorded yet.")
    names = [*items, "full network"]
    vals = [*items.values(), full]
    text = [f"{si(v)}  (−{100 * (1 - v / full):.1f} %)" for v in items.values()] + [si(full)]
    fig = go.Figure(go.Bar(x=vals, y=names, orientation="h", text=text, textposition="auto",
                           marker_color=[METHOD] * len(items) + [BASELINE]))
    fig.update_xaxes(title=f"forward {FLOPS_AXIS} of training", tickformat="~s")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, height=60 * len(names) + 100, legend=False)


# --- How it works ------------------------------------------------------------------------------------
