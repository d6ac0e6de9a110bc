"""Figures for the How it works page: one unit's story, FLOPs by unit."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._style import BASELINE, FLOPS_AXIS, HEIGHT, METHOD, _layout, chunk_starts, empty_figure, mark_chunks


def unit_story(scores: pd.DataFrame, unit: str, tau: float, kappa: float,
               chunks: pd.DataFrame | None = None) -> go.Figure:
    """One unit's change d with its running peak (top), and its scores s and c against tau and kappa
    (bottom)."""
    rows = scores[(scores["unit"] == unit) & scores["d"].notna()]
    if rows.empty:
        return empty_figure(f"No change recorded for {unit} yet.")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    fig.add_trace(go.Scatter(x=rows["check"], y=rows["d"], name="change d", mode="lines+markers",
                             line=dict(color=METHOD)), 1, 1)
    fig.add_trace(go.Scatter(x=rows["check"], y=rows["d"].cummax(), name="peak of d", mode="lines",
                             line=dict(color=BASELINE, dash="dot")), 1, 1)
    fig.add_trace(go.Scatter(x=rows["check"], y=rows["s"], name="change score s = d / peak",
                             mode="lines+markers", line=dict(color="#2a9d8f")), 2, 1)
    fig.add_trace(go.Scatter(x=rows["check"], y=rows["c"], name="continuation c = d(t) / d(t−w)",
                             mode="lines+markers", line=dict(color="#e76f51")), 2, 1)
    top = min(3.0, max(1.1, 1.1 * kappa, 1.05 * float(rows["c"].max(skipna=True) or 0)))  # a huge kappa or c
    fig.add_hline(y=tau, line=dict(color="#2a9d8f", dash="dash"), annotation_text=f"tau {tau:g}", row=2,
                  col=1)
    if kappa <= top:
        fig.add_hline(y=kappa, line=dict(color="#e76f51", dash="dash"), annotation_text=f"kappa {kappa:g}",
                      row=2, col=1)
    last = float(rows["check"].max()) + 0.5  # the unit's chart ends where it stopped being measured
    mark_chunks(fig, [(x, label) for x, label in chunk_starts(chunks, "check", scores) if x <= last],
                row="all", col=1)
    fig.update_yaxes(range=[0, top], row=2, col=1)
    fig.update_xaxes(title="check", row=2, col=1)
    fig.update_yaxes(title="change d", tickformat=".2~g", row=1, col=1)
    fig.update_yaxes(title="score", row=2, col=1)
    return _layout(fig, height=HEIGHT + 160)


def flops_by_unit(units: pd.DataFrame, dropped: int = 0) -> go.Figure:
    """Forward and backward FLOPs per image of each unit (and the head); the dropped prefix shaded."""
    if units.empty:
        return empty_figure("No run recorded yet.")
    fig = go.Figure()
    fig.add_trace(go.Bar(y=units["name"], x=units["fwd_flops"], name="forward", orientation="h",
                         marker_color=METHOD))
    fig.add_trace(go.Bar(y=units["name"], x=units["bwd_flops"], name="backward", orientation="h",
                         marker_color="#9ec1e6"))
    if dropped:
        fig.add_hrect(y0=-0.5, y1=dropped - 0.5, fillcolor=BASELINE, opacity=0.15, line_width=0,
                      annotation_text="dropped prefix", annotation_position="bottom right")
    fig.update_layout(barmode="group")
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title=f"{FLOPS_AXIS} per image", tickformat="~s")
    return _layout(fig, height=max(HEIGHT, 26 * len(units) + 100))
