"""Figures that set runs side by side: a metric per run on one axis, FLOPs as bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from ..frontier import AXES, SECONDS, frontier, margin
from ._style import BASELINE, FLOPS_AXIS, HEIGHT, METHOD, _layout, chunk_starts, empty_figure, mark_chunks, si


def compare_lines(frames: Mapping[str, pd.DataFrame], x: str, y: str, x_title: str, y_title: str,
                  scale: float = 1.0, log_y: bool = False, chunks: Mapping[str, pd.DataFrame] | None = None
                  ) -> go.Figure:
    """One line per run: column ``y`` (times ``scale``) against column ``x`` of each run's epochs frame; where
    ``chunks`` (by the same names) has a streaming run's chunks, their starts on the x axis (epochs or
    time)."""
    frames = {k: v for k, v in frames.items() if not v.empty}
    if not frames:
        return empty_figure("Choose runs that have finished at least one epoch.")
    fig = go.Figure()
    colors = sample_colorscale("Turbo", [0.1 + 0.8 * i / max(1, len(frames) - 1) for i in range(len(frames))])
    for (name, df), color in zip(frames.items(), colors):
        fig.add_trace(go.Scatter(x=df[x], y=df[y] * scale, mode="lines+markers", name=name,
                                 line=dict(color=color)))
    axis = {"epoch_number": "epoch", "train_time_s": "time"}.get(x)
    if axis and chunks:
        starts = [s for name, df in frames.items() for s in chunk_starts(chunks.get(name), axis, df)]
        mark_chunks(fig, sorted(set(starts)))  # runs chunked alike share their lines
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title=y_title, type="log" if log_y else None,
                     tickformat="~s" if "FLOPs" in y_title else None,
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


# --- Budget frontier ---------------------------------------------------------------------------------
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "pentagon", "cross", "triangle-down",
           "hexagon")
PALETTE = ("#3b6fb6", "#c44e52", "#55a868", "#8172b2", "#dd8452", "#937860", "#da8bc3", "#4c4c4c", "#ccb974",
           "#64b5cd")
LABELLED = 12  # up to this many points, each is labelled with its margin on the chart (more overlap: hover)


def flops_unit(largest: float) -> tuple[float, str]:
    """The unit people read training FLOPs in, for values up to ``largest``: (divisor, name)."""
    for divisor, name in ((1e18, "EFLOPs"), (1e15, "PFLOPs"), (1e12, "TFLOPs"), (1e9, "GFLOPs")):
        if largest >= divisor:
            return divisor, name
    return 1.0, "FLOPs"


def frontier_chart(baseline: Sequence[Mapping[str, Any]], others: Sequence[Mapping[str, Any]],
                   named: bool = False, axis: str = SECONDS) -> go.Figure:
    """Test accuracy against the training cost on ``axis`` (seconds, ``train_time_s``; or FLOPs,
    ``train_flops``): the baseline runs (``epochs``, the cost, ``test_acc``) of one set-up as the frontier
    line (the baseline trained for fewer epochs, made monotone), every other run (``name``, ``policy``, the
    cost, ``test_acc``) as a point of its policy's trace, labelled with its margin above or below the line (up
    to ``LABELLED`` points; hover says it always). ``named``: a figure without hover, each point a legend
    entry with its name and margin, one symbol per policy."""
    cost = AXES[axis]
    front = frontier(baseline, axis=axis)
    others = [o for o in others if o.get("test_acc") is not None and o.get(cost) is not None]
    if not front:
        what = "at a few epoch budgets" if axis == SECONDS else "in runs that record their training FLOPs"
        return empty_figure(f"Train the baseline (policy none) of this set-up, {what}, to draw the frontier.")
    largest = max([*(c for c, _ in front.line), *(float(o[cost]) for o in others)])
    divisor, unit = (1.0, "s") if axis == SECONDS else flops_unit(largest)
    fmt = ".1f" if axis == SECONDS else ".3g"
    fig = go.Figure()
    xs, ys = [c / divisor for c, _ in front.line], [100 * a for _, a in front.line]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers+text", name="baseline, fewer epochs (frontier)",
                             line=dict(color=BASELINE, width=3),
                             text=[f"{b.epochs} ep" for b in front.budgets], textposition="bottom right",
                             hovertemplate=f"%{{text}}: %{{x:{fmt}}} {unit}, %{{y:.2f}} "
                                           "%<extra>frontier</extra>"))
    margins = [margin(front, float(o[cost]), float(o["test_acc"])) for o in others]
    by_policy: dict[str, list[int]] = {}  # each policy's points, in first-seen order: one symbol per policy
    for i, o in enumerate(others):
        by_policy.setdefault(str(o.get("policy") or "other runs"), []).append(i)
    for k, (policy, idx) in enumerate(by_policy.items()):
        symbol = SYMBOLS[k % len(SYMBOLS)]
        if named:  # a figure without hover (a PNG): one legend entry per point, named, with its margin
            for i in idx:
                fig.add_trace(go.Scatter(x=[others[i][cost] / divisor], y=[100 * others[i]["test_acc"]],
                                         mode="markers", name=f"{others[i].get('name', '')}: "
                                                              f"{margins[i].label()} pts",
                                         marker=dict(size=11, symbol=symbol,
                                                     color=PALETTE[i % len(PALETTE)])))
            continue
        fig.add_trace(go.Scatter(  # the margins labelled on the chart while the labels fit, always on hover
            x=[others[i][cost] / divisor for i in idx], y=[100 * others[i]["test_acc"] for i in idx],
            mode="markers+text" if len(others) <= LABELLED else "markers", name=policy,
            textposition="top center",
            marker=dict(color=METHOD if len(by_policy) == 1 else PALETTE[k % len(PALETTE)], size=10,
                        symbol=symbol),
            text=[margins[i].label() for i in idx],
            customdata=[[str(others[i].get("name", "")), margins[i].text()] for i in idx],
            hovertemplate=f"%{{customdata[0]}}<br>%{{x:{fmt}}} {unit}, %{{y:.2f}} %<br>%{{customdata[1]}}"
                          "<extra></extra>"))
    title = "training time (s)" if axis == SECONDS else f"training {unit} (forward + backward run, 2·MAC)"
    fig.update_xaxes(title=title, range=[0, 1.15 * largest / divisor])  # room for the labels on the right
    fig.update_yaxes(title="test accuracy (%)")
    _layout(fig, height=HEIGHT + 40)
    if any(m.where != "inside" for m in margins):
        span = "time" if axis == SECONDS else "FLOPs"
        fig.add_annotation(text=f"* outside the frontier's {span} range: compared with its nearest budget",
                           x=0, y=-0.3, xref="paper", yref="paper", showarrow=False, xanchor="left",
                           font=dict(size=11, color="#666"))
        fig.update_layout(margin=dict(b=80))
    return fig
