"""Plotly figures of a run, as pure functions of the DataFrames in ``tables`` (no Streamlit here).

Every builder returns a figure that reads on its own: with no data yet it says what will appear,
long runs are decimated (at most ``MAX_COLUMNS`` checks, ``MAX_POINTS`` points per line), and
FLOPs are conv/matmul FLOPs counted as 2·MAC. Inputs are never modified (they are shared).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

MAX_COLUMNS = 300  # checks drawn in a heatmap
MAX_POINTS = 200  # points per line
HEIGHT = 340  # px
STATES = ("training", "candidate", "frozen", "dropped")
STATE_COLORS = ("#3b6fb6", "#f28e2b", "#9c6ade", "#d4d4d4")
METHOD, BASELINE, FULL = "#3b6fb6", "#8c8c8c", "#c44e52"
FLOPS_AXIS = "FLOPs (conv/matmul, 2·MAC)"
CHUNK = "#333333"  # the line where a streaming run's next data chunk arrives
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


def _unit_order(scores: pd.DataFrame) -> list[str]:
    return scores.drop_duplicates("unit").sort_values("unit_index")["unit"].tolist()


def _threshold_changes(checks: pd.DataFrame) -> list[tuple[int, str]]:
    """(check, label) where the thresholds differ from the check before."""
    out = []
    if checks.empty:
        return out
    cols = ["tau", "kappa", "warmup", "patience"]
    prev = None
    for row in checks[["check", *cols]].itertuples(index=False):
        now = dict(zip(cols, row[1:]))
        if prev is not None and now != prev:
            out.append((int(row[0]), ", ".join(f"{k} {prev[k]:g}→{now[k]:g}" for k in cols if now[k] != prev[k])))
        prev = now
    return out


def _mark_threshold_changes(fig: go.Figure, checks: pd.DataFrame, **where) -> None:
    for check, label in _threshold_changes(checks):
        fig.add_vline(x=check - 0.5, line=dict(color=FULL, dash="dash", width=2), **where)
        fig.add_annotation(x=check - 0.5, y=1, yref="paper", text=label, showarrow=False, xanchor="left",
                           yanchor="top", font=dict(size=11, color=FULL), bgcolor="rgba(255,255,255,0.8)")


def chunk_starts(chunks: pd.DataFrame | None, axis: str, frame: pd.DataFrame | None = None) -> list[tuple[float, str]]:
    """Where each data chunk of a streaming run starts on a chart's x axis, with its label ("chunk k").

    ``axis`` is the chart's x: "check" (between the chunk's first check and the one before; ``frame`` has the
    columns check and epoch, as the scores and checks frames do), "epoch" (between epoch bars numbered from 1),
    "epochs_trained" (epochs done so far, 0 at the start: the loss chart) or "time" (training seconds spent
    before the chunk; ``frame`` is the epochs frame). Empty for a run that does not stream.
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


def mark_chunks(fig: go.Figure, starts: Sequence[tuple[float, str]], color: str = CHUNK, **where) -> go.Figure:
    """A thin vertical line at each chunk's start, labelled at the bottom (at most ``MAX_CHUNK_LABELS``
    labels: with many chunks every n-th); ``where`` picks subplots (row=, col=)."""
    every = max(1, -(-len(starts) // MAX_CHUNK_LABELS))
    for i, (x, label) in enumerate(starts):
        text = dict(annotation_text=label, annotation_position="bottom right",
                    annotation=dict(font=dict(size=11, color="#333"), bgcolor="rgba(255,255,255,0.75)"))
        fig.add_vline(x=x, line=dict(color=color, width=1.5), layer="above", **(text if i % every == 0 else {}),
                      **where)
    return fig


def _grid(scores: pd.DataFrame, value: str, keep: Sequence[int]) -> pd.DataFrame:
    """units (rows, forward order) x checks (columns, decimated) of one score column."""
    grid = scores.pivot_table(index="unit", columns="check", values=value, aggfunc="first", dropna=False)
    grid = grid.reindex(index=_unit_order(scores))
    return grid[decimate(list(grid.columns), MAX_COLUMNS, keep)]


# --- (a) change-score heatmap ------------------------------------------------------------------------
def change_heatmap(scores: pd.DataFrame, drops: pd.DataFrame, checks: pd.DataFrame,
                   chunks: pd.DataFrame | None = None) -> go.Figure:
    """Change score s of each unit (rows, input side on top) at each check, drops marked with an x, and
    where each data chunk of a streaming run arrived."""
    if scores.empty:
        return empty_figure("Waiting for the first check: each unit's change score appears here.")
    grid = _grid(scores, "s", drops["check"].tolist())
    fig = go.Figure(go.Heatmap(z=grid.to_numpy(dtype=float), x=list(grid.columns), y=list(grid.index),
                               colorscale="Viridis", zmin=0, zmax=1, colorbar=dict(title="s", thickness=12),
                               hovertemplate="%{y}<br>check %{x}<br>s = %{z:.2f}<extra></extra>", hoverongaps=False))
    if not drops.empty:
        fig.add_trace(go.Scatter(x=drops["check"], y=drops["unit"], mode="markers", name="dropped here",
                                 marker=dict(symbol="x", size=13, color=FULL, line=dict(width=2, color="white")),
                                 text=drops["reason"], hovertemplate="%{text}<extra></extra>"))
    _mark_threshold_changes(fig, checks)
    mark_chunks(fig, chunk_starts(chunks, "check", scores), color="white")
    fig.update_yaxes(autorange="reversed", title=None, type="category")
    fig.update_xaxes(title="check")
    return _layout(fig, height=max(HEIGHT, 22 * len(grid) + 90))


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
        fig.add_trace(go.Scatter(x=rows["check"], y=rows["s"], mode="lines", name=unit, line=dict(color=color, width=2),
                                 hovertemplate=f"{unit}<br>check %{{x}}<br>s = %{{y:.2f}}<extra></extra>"))
    if not checks.empty:
        fig.add_trace(go.Scatter(x=checks["check"], y=checks["tau"], mode="lines", name="tau", line_shape="hv",
                                 line=dict(color=FULL, dash="dash", width=2)))
    if not drops.empty:
        at = drops.merge(scores[["check", "unit", "s"]], on=["check", "unit"], how="left", suffixes=("_drop", ""))
        fig.add_trace(go.Scatter(x=at["check"], y=at["s"], mode="markers", name="dropped", text=at["reason"],
                                 marker=dict(symbol="x", size=12, color=FULL), hovertemplate="%{text}<extra></extra>"))
    mark_chunks(fig, chunk_starts(chunks, "check", scores))
    fig.update_yaxes(title="change score s", range=[0, 1.05])
    fig.update_xaxes(title="check")
    return _layout(fig, legend=len(units) <= 12)


# --- (c) the active network over time ----------------------------------------------------------------
def active_network(scores: pd.DataFrame, drops: pd.DataFrame | None = None,
                   chunks: pd.DataFrame | None = None) -> go.Figure:
    """Which units train, are candidates, are frozen or dropped, at each check."""
    if scores.empty:
        return empty_figure("Waiting for the first check: the network's state per unit appears here.")
    coded = scores.assign(code=scores["state"].map({s: i for i, s in enumerate(STATES)}))
    grid = _grid(coded, "code", [] if drops is None else drops["check"].tolist())
    scale = []
    for i, color in enumerate(STATE_COLORS):
        scale += [[i / len(STATES), color], [(i + 1) / len(STATES), color]]
    names = np.array(STATES + ("",), dtype=object)[np.nan_to_num(grid.to_numpy(dtype=float), nan=4).astype(int)]
    fig = go.Figure(go.Heatmap(z=grid.to_numpy(dtype=float), x=list(grid.columns), y=list(grid.index), zmin=-0.5,
                               zmax=len(STATES) - 0.5, colorscale=scale, text=names, xgap=1, ygap=1,
                               hovertemplate="%{y}<br>check %{x}: %{text}<extra></extra>",
                               colorbar=dict(tickvals=list(range(len(STATES))), ticktext=list(STATES), thickness=12)))
    mark_chunks(fig, chunk_starts(chunks, "check", scores))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title="check")
    return _layout(fig, height=max(HEIGHT, 22 * len(grid) + 90), legend=False)


# --- (d) epoch times ---------------------------------------------------------------------------------
def epoch_times(epochs: pd.DataFrame, baseline: pd.DataFrame | None = None, label: str = "Learn&Drop",
                chunks: pd.DataFrame | None = None) -> go.Figure:
    """Training seconds per epoch (evaluation excluded), the baseline's beside them when there is one."""
    if epochs.empty:
        return empty_figure("Waiting for the first epoch to end.")
    fig = go.Figure(go.Bar(x=epochs["epoch_number"], y=epochs["epoch_time_s"], name=label, marker_color=METHOD,
                           hovertemplate="epoch %{x}: %{y:.2f} s<extra></extra>"))
    if baseline is not None and not baseline.empty:
        fig.add_trace(go.Bar(x=baseline["epoch_number"], y=baseline["epoch_time_s"], name="baseline (full training)",
                             marker_color=BASELINE, hovertemplate="epoch %{x}: %{y:.2f} s<extra></extra>"))
    fig.update_layout(barmode="group", bargap=0.25)
    mark_chunks(fig, chunk_starts(chunks, "epoch"))
    fig.update_yaxes(title="training time (s)")
    fig.update_xaxes(title="epoch", dtick=1 if len(epochs) <= 30 else None)
    return _layout(fig)


# --- (e) FLOPs per epoch and cumulative --------------------------------------------------------------
def flops_chart(epochs: pd.DataFrame, label: str = "Learn&Drop", chunks: pd.DataFrame | None = None) -> go.Figure:
    """Forward and backward FLOPs per epoch (stacked) against the full network's for the same steps,
    and cumulative training FLOPs against the full network's."""
    if epochs.empty:
        return empty_figure("Waiting for the first epoch to end: FLOPs are counted per epoch.")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.16)
    x = epochs["epoch_number"]
    full = dict(color=BASELINE, dash="dash", width=2)
    fig.add_trace(go.Bar(x=x, y=epochs["fwd_flops"], name="forward", marker_color=METHOD), 1, 1)
    fig.add_trace(go.Bar(x=x, y=epochs["bwd_flops"], name="backward", marker_color="#9ec1e6"), 1, 1)
    fig.add_trace(go.Scatter(x=x, y=epochs["baseline_flops"], name="full network", mode="lines+markers", line=full,
                             legendgroup="full"), 1, 1)
    fig.add_trace(go.Scatter(x=x, y=epochs["cum_flops"], name=f"{label} (fwd + bwd)", mode="lines+markers",
                             line=dict(color=METHOD, width=3)), 1, 2)
    fig.add_trace(go.Scatter(x=x, y=epochs["cum_baseline_flops"], name="full network", mode="lines+markers", line=full,
                             legendgroup="full", showlegend=False), 1, 2)
    fig.update_layout(barmode="stack")
    mark_chunks(fig, chunk_starts(chunks, "epoch"), row="all", col="all")
    fig.update_yaxes(tickformat="~s", title="FLOPs per epoch (2·MAC)", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(tickformat="~s", title="cumulative FLOPs", rangemode="tozero", row=1, col=2)
    fig.update_xaxes(title="epoch", dtick=1 if len(epochs) <= 12 else None)
    return _layout(fig, height=HEIGHT + 20)


# --- (f) loss and accuracy ---------------------------------------------------------------------------
def loss_accuracy(epochs: pd.DataFrame, progress: pd.DataFrame, steps_per_epoch: int,
                  chunks: pd.DataFrame | None = None) -> go.Figure:
    """Training loss as it goes, and training and test accuracy per epoch (x: epochs trained)."""
    if epochs.empty and progress.empty:
        return empty_figure("Waiting for the first steps: loss appears here, accuracy after each epoch.")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14)
    if not progress.empty:
        shown = progress.iloc[decimate(range(len(progress)), MAX_POINTS * 2)]
        if "epoch_steps" in shown and shown["epoch_steps"].notna().all() and (shown["epoch_steps"] > 0).all():
            x = shown["epoch"] + shown["epoch_step"] / shown["epoch_steps"]  # exact, also for chunks of other sizes
        else:
            x = shown["step"] / max(1, steps_per_epoch)
        fig.add_trace(go.Scatter(x=x, y=shown["loss"], mode="lines",
                                 name="training loss, running", line=dict(color="#9ec1e6")), 1, 1)
    if not epochs.empty:
        x = epochs["epoch_number"]
        fig.add_trace(go.Scatter(x=x, y=epochs["train_loss"], name="training loss", mode="lines+markers",
                                 line=dict(color=METHOD)), 1, 1)
        fig.add_trace(go.Scatter(x=x, y=epochs["val_loss"], name="test loss", mode="lines+markers",
                                 line=dict(color=FULL)), 1, 1)
        fig.add_trace(go.Scatter(x=x, y=100 * epochs["train_acc"], name="training accuracy", mode="lines+markers",
                                 line=dict(color=METHOD)), 1, 2)
        fig.add_trace(go.Scatter(x=x, y=100 * epochs["val_acc"], name="test accuracy", mode="lines+markers",
                                 line=dict(color=FULL)), 1, 2)
    mark_chunks(fig, chunk_starts(chunks, "epochs_trained"), row="all", col="all")
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="loss", row=1, col=1)
    fig.update_yaxes(title="accuracy (%)", row=1, col=2)
    return _layout(fig, height=HEIGHT + 20)


# --- (g) streaming: accuracy after each data chunk ---------------------------------------------------
def chunk_accuracy(chunks: pd.DataFrame) -> go.Figure:
    """Test accuracy after each chunk was trained: on the whole test set, and on the classes seen so far."""
    done = chunks.dropna(subset=["val_acc"]) if not chunks.empty else chunks
    if done.empty:
        return empty_figure("Waiting for the first data chunk to be trained.")
    x = done["chunk"].astype(int) + 1
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=100 * done["seen_acc"], name="classes seen so far", mode="lines+markers",
                             line=dict(color=METHOD, width=3),
                             hovertemplate="after chunk %{x}: %{y:.1f} %<extra>classes seen</extra>"))
    fig.add_trace(go.Scatter(x=x, y=100 * done["val_acc"], name="all classes", mode="lines+markers",
                             line=dict(color=FULL, width=3),
                             hovertemplate="after chunk %{x}: %{y:.1f} %<extra>all classes</extra>"))
    fig.update_xaxes(title="data chunk", dtick=1, range=[0.5, int(chunks["chunks"].iloc[0]) + 0.5])
    fig.update_yaxes(title="test accuracy (%)", range=[0, 101])
    return _layout(fig, height=HEIGHT - 40)


# --- Compare runs ------------------------------------------------------------------------------------
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
def unit_story(scores: pd.DataFrame, unit: str, tau: float, kappa: float,
               chunks: pd.DataFrame | None = None) -> go.Figure:
    """One unit's change d with its running peak (top), and its scores s and c against tau and kappa (bottom)."""
    rows = scores[(scores["unit"] == unit) & scores["d"].notna()]
    if rows.empty:
        return empty_figure(f"No change recorded for {unit} yet.")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    fig.add_trace(go.Scatter(x=rows["check"], y=rows["d"], name="change d", mode="lines+markers",
                             line=dict(color=METHOD)), 1, 1)
    fig.add_trace(go.Scatter(x=rows["check"], y=rows["d"].cummax(), name="peak of d", mode="lines",
                             line=dict(color=BASELINE, dash="dot")), 1, 1)
    fig.add_trace(go.Scatter(x=rows["check"], y=rows["s"], name="change score s = d / peak", mode="lines+markers",
                             line=dict(color="#2a9d8f")), 2, 1)
    fig.add_trace(go.Scatter(x=rows["check"], y=rows["c"], name="continuation c = d(t) / d(t−w)",
                             mode="lines+markers", line=dict(color="#e76f51")), 2, 1)
    top = min(3.0, max(1.1, 1.1 * kappa, 1.05 * float(rows["c"].max(skipna=True) or 0)))  # a huge kappa or c
    fig.add_hline(y=tau, line=dict(color="#2a9d8f", dash="dash"), annotation_text=f"tau {tau:g}", row=2, col=1)
    if kappa <= top:
        fig.add_hline(y=kappa, line=dict(color="#e76f51", dash="dash"), annotation_text=f"kappa {kappa:g}", row=2,
                      col=1)
    last = float(rows["check"].max()) + 0.5  # the unit's chart ends where it stopped being measured
    mark_chunks(fig, [(x, label) for x, label in chunk_starts(chunks, "check", scores) if x <= last], row="all", col=1)
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
    fig.add_trace(go.Bar(y=units["name"], x=units["fwd_flops"], name="forward", orientation="h", marker_color=METHOD))
    fig.add_trace(go.Bar(y=units["name"], x=units["bwd_flops"], name="backward", orientation="h",
                         marker_color="#9ec1e6"))
    if dropped:
        fig.add_hrect(y0=-0.5, y1=dropped - 0.5, fillcolor=BASELINE, opacity=0.15, line_width=0,
                      annotation_text="dropped prefix", annotation_position="bottom right")
    fig.update_layout(barmode="group")
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title=f"{FLOPS_AXIS} per image", tickformat="~s")
    return _layout(fig, height=max(HEIGHT, 26 * len(units) + 100))
