"""Figures of one run as it trains: scores, states, the active network, epoch times, FLOPs, loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from ._style import (
    BASELINE,
    FULL,
    HEIGHT,
    MAX_POINTS,
    METHOD,
    STATE_COLORS,
    STATES,
    _grid,
    _layout,
    _mark_threshold_changes,
    _unit_order,
    chunk_starts,
    decimate,
    empty_figure,
    integer_ticks,
    mark_chunks,
)


def change_heatmap(scores: pd.DataFrame, drops: pd.DataFrame, checks: pd.DataFrame,
                   chunks: pd.DataFrame | None = None) -> go.Figure:
    """Change score s of each unit (rows, input side on top) at each check, drops marked with an x, and
    where each data chunk of a streaming run arrived."""
    if scores.empty:
        return empty_figure("Waiting for the first check: each unit's change score appears here.")
    grid = _grid(scores, "s", drops["check"].tolist())
    fig = go.Figure(go.Heatmap(z=grid.to_numpy(dtype=float), x=list(grid.columns), y=list(grid.index),
                               colorscale="Viridis", zmin=0, zmax=1, colorbar=dict(title="s", thickness=12),
                               hovertemplate="%{y}<br>check %{x}<br>s = %{z:.2f}<extra></extra>",
                               hoverongaps=False))
    if not drops.empty:
        fig.add_trace(go.Scatter(x=drops["check"], y=drops["unit"], mode="markers", name="dropped here",
                                 marker=dict(symbol="x", size=13, color=FULL,
                                             line=dict(width=2, color="white")),
                                 text=drops["reason"], hovertemplate="%{text}<extra></extra>"))
    _mark_threshold_changes(fig, checks)
    mark_chunks(fig, chunk_starts(chunks, "check", scores), color="white")
    fig.update_yaxes(autorange="reversed", title=None, type="category")
    fig.update_xaxes(title="check")
    return _layout(integer_ticks(fig, scores["check"].max()), height=max(HEIGHT, 22 * len(grid) + 90))


# --- (b) change score per unit over time, with tau ---------------------------------------------------
def score_lines(scores: pd.DataFrame, checks: pd.DataFrame, drops: pd.DataFrame,
                chunks: pd.DataFrame | None = None) -> go.Figure:
    """s per unit against checks (colour: depth), the tau threshold as a step line, drops marked."""
    if scores.empty:
        return empty_figure("Waiting for the first check: one line per unit will appear here.")
    units = _unit_order(scores)
    colors = sample_colorscale("Viridis", [i / max(1, len(units) - 1) * 0.9 for i in range(len(units))])
    keep_checks = set(decimate(sorted(scores["check"].unique()), MAX_POINTS, drops["check"].tolist()))
    shown = scores[scores["check"].isin(keep_checks)]
    fig = go.Figure()
    for unit, color in zip(units, colors):
        rows = shown[shown["unit"] == unit]
        fig.add_trace(go.Scatter(x=rows["check"], y=rows["s"], mode="lines", name=unit,
                                 line=dict(color=color, width=2),
                                 hovertemplate=f"{unit}<br>check %{{x}}<br>s = %{{y:.2f}}<extra></extra>"))
    if not checks.empty:
        fig.add_trace(go.Scatter(x=checks["check"], y=checks["tau"], mode="lines", name="tau",
                                 line_shape="hv", line=dict(color=FULL, dash="dash", width=2)))
    if not drops.empty:
        at = drops.merge(scores[["check", "unit", "s"]], on=["check", "unit"], how="left",
                         suffixes=("_drop", ""))
        fig.add_trace(go.Scatter(x=at["check"], y=at["s"], mode="markers", name="dropped", text=at["reason"],
                                 marker=dict(symbol="x", size=12, color=FULL),
                                 hovertemplate="%{text}<extra></extra>"))
    _mark_threshold_changes(fig, checks)
    mark_chunks(fig, chunk_starts(chunks, "check", scores))
    fig.update_yaxes(title="change score s", range=[0, 1.05])
    fig.update_xaxes(title="check")
    return _layout(integer_ticks(fig, scores["check"].max()), legend=len(units) <= 12)


# --- (c) the active network over time ----------------------------------------------------------------
def active_network(scores: pd.DataFrame, drops: pd.DataFrame | None = None,
                   chunks: pd.DataFrame | None = None, checks: pd.DataFrame | None = None) -> go.Figure:
    """Which units train, are candidates, are frozen or dropped, at each check. The last unit before the head
    always trains (the prefix rule never drops it): shown training, not as a candidate waiting for nothing."""
    if scores.empty:
        return empty_figure("Waiting for the first check: the network's state per unit appears here.")
    last = scores["unit_index"] == scores["unit_index"].max()
    state = scores["state"].where(~(last & (scores["state"] == "candidate")), "training")
    coded = scores.assign(code=state.map({s: i for i, s in enumerate(STATES)}))
    grid = _grid(coded, "code", [] if drops is None else drops["check"].tolist())
    scale = []
    for i, color in enumerate(STATE_COLORS):
        scale += [[i / len(STATES), color], [(i + 1) / len(STATES), color]]
    state_index = np.nan_to_num(grid.to_numpy(dtype=float), nan=4).astype(int)
    names = np.array(STATES + ("",), dtype=object)[state_index]
    last_unit = scores.loc[last, "unit"].iloc[0]
    names[list(grid.index).index(last_unit)] = [f"{n} (the last unit before the head always trains)"
                                                if n else n
                                                for n in names[list(grid.index).index(last_unit)]]
    fig = go.Figure(go.Heatmap(z=grid.to_numpy(dtype=float), x=list(grid.columns), y=list(grid.index),
                               zmin=-0.5, zmax=len(STATES) - 0.5, colorscale=scale, text=names, xgap=1,
                               ygap=1, hovertemplate="%{y}<br>check %{x}: %{text}<extra></extra>",
                               colorbar=dict(tickvals=list(range(len(STATES))), ticktext=list(STATES),
                                             thickness=12)))
    if checks is not None:
        _mark_threshold_changes(fig, checks)
    mark_chunks(fig, chunk_starts(chunks, "check", scores))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title="check")
    return _layout(integer_ticks(fig, scores["check"].max()), height=max(HEIGHT, 22 * len(grid) + 90),
                   legend=False)


# --- (d) epoch times ---------------------------------------------------------------------------------
def epoch_times(epochs: pd.DataFrame, baseline: pd.DataFrame | None = None, label: str = "Learn&Drop",
                chunks: pd.DataFrame | None = None) -> go.Figure:
    """Training seconds per epoch (evaluation excluded), the baseline's beside them when there is one."""
    if epochs.empty:
        return empty_figure("Waiting for the first epoch to end.")
    fig = go.Figure(go.Bar(x=epochs["epoch_number"], y=epochs["epoch_time_s"], name=label,
                           marker_color=METHOD, hovertemplate="epoch %{x}: %{y:.2f} s<extra></extra>"))
    if baseline is not None and not baseline.empty:
        fig.add_trace(go.Bar(x=baseline["epoch_number"], y=baseline["epoch_time_s"],
                             name="baseline (full training)",
                             marker_color=BASELINE, hovertemplate="epoch %{x}: %{y:.2f} s<extra></extra>"))
    fig.update_layout(barmode="group", bargap=0.25)
    mark_chunks(fig, chunk_starts(chunks, "epoch"))
    fig.update_yaxes(title="training time (s)")
    fig.update_xaxes(title="epoch")
    return _layout(integer_ticks(fig, epochs["epoch_number"].max()))


# --- (e) FLOPs per epoch and cumulative --------------------------------------------------------------
def flops_chart(epochs: pd.DataFrame, label: str = "Learn&Drop",
                chunks: pd.DataFrame | None = None) -> go.Figure:
    """Forward and backward FLOPs per epoch (stacked) against the full network's for the same steps,
    and cumulative training FLOPs against the full network's."""
    if epochs.empty:
        return empty_figure("Waiting for the first epoch to end: FLOPs are counted per epoch.")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.16)
    x = epochs["epoch_number"]
    full = dict(color=BASELINE, dash="dash", width=2)
    fig.add_trace(go.Bar(x=x, y=epochs["fwd_flops"], name="forward", marker_color=METHOD), 1, 1)
    fig.add_trace(go.Bar(x=x, y=epochs["bwd_flops"], name="backward", marker_color="#9ec1e6"), 1, 1)
    fig.add_trace(go.Scatter(x=x, y=epochs["baseline_flops"], name="full network", mode="lines+markers",
                             line=full, legendgroup="full"), 1, 1)
    fig.add_trace(go.Scatter(x=x, y=epochs["cum_flops"], name=f"{label} (fwd + bwd)", mode="lines+markers",
                             line=dict(color=METHOD, width=3)), 1, 2)
    fig.add_trace(go.Scatter(x=x, y=epochs["cum_baseline_flops"], name="full network", mode="lines+markers",
                             line=full, legendgroup="full", showlegend=False), 1, 2)
    fig.update_layout(barmode="stack")
    mark_chunks(fig, chunk_starts(chunks, "epoch"), row="all", col="all")
    fig.update_yaxes(tickformat="~s", title="FLOPs per epoch (2·MAC)", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(tickformat="~s", title="cumulative FLOPs", rangemode="tozero", row=1, col=2)
    fig.update_xaxes(title="epoch")
    return _layout(integer_ticks(fig, epochs["epoch_number"].max()), height=HEIGHT + 20)


# --- (f) loss and accuracy ---------------------------------------------------------------------------
def loss_accuracy(epochs: pd.DataFrame, progress: pd.DataFrame, steps_per_epoch: int,
                  chunks: pd.DataFrame | None = None) -> go.Figure:
    """Training loss as it goes, and training, validation (where held out) and test accuracy per epoch
    (x: epochs trained)."""
    if epochs.empty and progress.empty:
        return empty_figure("Waiting for the first steps: loss appears here, accuracy after each epoch.")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14)
    if not progress.empty:
        shown = progress.iloc[decimate(range(len(progress)), MAX_POINTS * 2)]
        if "epoch_steps" in shown and shown["epoch_steps"].notna().all() and (shown["epoch_steps"] > 0).all():
            # exact, also for chunks of other sizes
            x = shown["epoch"] + shown["epoch_step"] / shown["epoch_steps"]
        else:
            x = shown["step"] / max(1, steps_per_epoch)
        fig.add_trace(go.Scatter(x=x, y=shown["loss"], mode="lines",
                                 name="training loss, running", line=dict(color="#9ec1e6")), 1, 1)
    if not epochs.empty:
        x = epochs["epoch_number"]
        fig.add_trace(go.Scatter(x=x, y=epochs["train_loss"], name="training loss", mode="lines+markers",
                                 line=dict(color=METHOD)), 1, 1)
        fig.add_trace(go.Scatter(x=x, y=epochs["test_loss"], name="test loss", mode="lines+markers",
                                 line=dict(color=FULL)), 1, 1)
        has_val = "val_acc" in epochs and epochs["val_acc"].notna().any()
        if has_val:
            fig.add_trace(go.Scatter(x=x, y=epochs["val_loss"], name="validation loss", mode="lines+markers",
                                     line=dict(color=FULL, dash="dot")), 1, 1)
        fig.add_trace(go.Scatter(x=x, y=100 * epochs["train_acc"], name="training accuracy",
                                 mode="lines+markers", line=dict(color=METHOD)), 1, 2)
        fig.add_trace(go.Scatter(x=x, y=100 * epochs["test_acc"], name="test accuracy", mode="lines+markers",
                                 line=dict(color=FULL)), 1, 2)
        if has_val:
            fig.add_trace(go.Scatter(x=x, y=100 * epochs["val_acc"], name="validation accuracy",
                                     mode="lines+markers", line=dict(color=FULL, dash="dot")), 1, 2)
    mark_chunks(fig, chunk_starts(chunks, "epochs_trained"), row="all", col="all")
    fig.update_xaxes(title="epoch")
    integer_ticks(fig, max(epochs["epoch_number"].max() if not epochs.empty else 1, 1))
    fig.update_yaxes(title="loss", row=1, col=1)
    fig.update_yaxes(title="accuracy (%)", row=1, col=2)
    return _layout(fig, height=HEIGHT + 20)


# --- (g) streaming: accuracy after each data chunk ---------------------------------------------------
def chunk_accuracy(chunks: pd.DataFrame) -> go.Figure:
    """Test accuracy after each chunk was trained: on the whole test set, and on the classes seen so far."""
    done = chunks.dropna(subset=["test_acc"]) if not chunks.empty else chunks
    if done.empty:
        return empty_figure("Waiting for the first data chunk to be trained.")
    x = done["chunk"].astype(int) + 1
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=100 * done["seen_acc"], name="classes seen so far", mode="lines+markers",
                             line=dict(color=METHOD, width=3),
                             hovertemplate="after chunk %{x}: %{y:.1f} %<extra>classes seen</extra>"))
    fig.add_trace(go.Scatter(x=x, y=100 * done["test_acc"], name="all classes", mode="lines+markers",
                             line=dict(color=FULL, width=3),
                             hovertemplate="after chunk %{x}: %{y:.1f} %<extra>all classes</extra>"))
    fig.update_xaxes(title="data chunk", dtick=1, range=[0.5, int(chunks["chunks"].iloc[0]) + 0.5])
    fig.update_yaxes(title="test accuracy (%)", range=[0, 101])
    return _layout(fig, height=HEIGHT - 40)


# --- Compare runs ------------------------------------------------------------------------------------
