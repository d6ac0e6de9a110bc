"""Small Streamlit pieces the pages share: a chart with its explanation, the paged event log, KPIs."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import streamlit as st

from learndrop.report.compare import accuracy_delta, flops_speedup, time_speedup
from learndrop.report.noise import epoch_spread, speedup_noise
from learndrop.report.view import RunView

LOG_PAGE = 15  # event log rows per page
PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def chart(title: str, text: str | None, fig: go.Figure, key: str) -> None:
    """A figure under its title, with one or two sentences that say what it shows (``None``: said above)."""
    st.markdown(f"**{title}**")
    if text:
        st.caption(text)
    st.plotly_chart(fig, key=key, config=PLOTLY_CONFIG)


def event_log(view: RunView, key: str) -> None:
    """The run's events that matter, newest first, a page at a time (long runs stay responsive)."""
    log = view.table("log")
    pages = max(1, math.ceil(len(log) / LOG_PAGE))
    left, right = st.columns([4, 1])
    with right:
        page = int(st.number_input("page", min_value=1, value=1, step=1, key=f"{key}_page"))
    page = min(page, pages)
    rows = log.iloc[::-1].iloc[(page - 1) * LOG_PAGE: page * LOG_PAGE]
    with left:
        st.caption(f"{len(log)} event{'' if len(log) == 1 else 's'}, newest first; each drop gives its "
                   f"reason. Page {page} of {pages}.")
    rows = rows.assign(time_s=rows["time_s"].map("{:.1f}".format)).rename(columns={"time_s": "time (s)"})
    st.table(rows, hide_index=True, border="horizontal")


def accuracy_delta_label(delta: tuple[float, int], epochs: int, base_epochs: int) -> str:
    """The accuracy KPI's delta in percentage points (pp); it names the epoch when the runs have not run as
    many (one still trains). Its sign is the arrow's: the metric shows no arrow beside it."""
    points, n = delta
    return (f"{signed(100 * points, 2)} pp vs baseline"
            + ("" if epochs == base_epochs else f", both at epoch {n}"))


def signed(value: float, digits: int) -> str:
    """``+1.25``, ``−0.75``, and ``0.00`` where the rounded value is zero (not ``−0.00``)."""
    text = f"{value:+.{digits}f}"
    return text[1:] if float(text) == 0 else text.replace("-", "−")


def unsigned(value: float, digits: int) -> str:
    """``48.6`` and ``0.0``, never ``−0.0``."""
    return f"{abs(value) if round(value, digits) == 0 else value:.{digits}f}"


def droppable(summary: dict) -> int | None:
    """Units the policy can drop: every unit for freeze-first-k (its k may reach the linear probe), else all
    but the last before the head, which always trains."""
    units = summary.get("units")
    if units is None:
        return None
    return units if summary.get("policy") == "freeze-first-k" else max(0, units - 1)


def kpis(view: RunView, baseline: RunView | None) -> None:
    """Speedup (measured against the baseline, else FLOPs-implied), forward FLOPs saved, accuracy, drops."""
    summary = view.summary()
    cols = st.columns(4)
    epochs = view.table("epochs")
    base_epochs = baseline.table("epochs") if baseline is not None else None
    measured = time_speedup(epochs, base_epochs) if base_epochs is not None else None
    if summary.get("policy") == "none":
        cols[0].metric("Speedup", "—", help="This run is a baseline: it trains the full network.")
    elif measured:
        cols[0].metric("Speedup vs baseline", f"×{measured[0]:.2f}",
                       help=f"Baseline training time / this run's, over the {measured[1]} epoch(s) both have "
                            "run (evaluation excluded).")
    else:
        estimate = flops_speedup(summary)
        cols[0].metric("Speedup (FLOPs-implied estimate)", "—" if estimate is None else f"×{estimate:.2f}",
                       help="No baseline run yet: full-network training FLOPs / this run's training FLOPs. "
                            "Measured time speedups are usually smaller (memory, overheads).")
    fwd, train = summary.get("fwd_flops_reduction_pct"), summary.get("train_flops_reduction_pct")
    cols[1].metric("Forward FLOPs saved", "—" if fwd is None else f"{unsigned(fwd, 1)} %",
                   delta=None if train is None else f"training FLOPs saved: {unsigned(train, 1)} %",
                   delta_color="off", delta_arrow="off",
                   help="Against the full network for the same steps, cache building included. FLOPs are "
                        "counted as 2·MAC: a multiply-add (MAC) of a convolution or matrix product is two "
                        "operations.")
    acc = summary.get("test_acc")
    delta = accuracy_delta(epochs, base_epochs) if base_epochs is not None else None
    cols[2].metric("Test accuracy", "—" if acc is None else f"{100 * acc:.2f} %",
                   delta=None if acc is None or delta is None else accuracy_delta_label(delta, len(epochs),
                                                                                        len(base_epochs)),
                   delta_arrow="off",
                   help="Full network (the dropped front units, the prefix, and the rest) on the data set's "
                        "test split, after the last epoch. The delta compares both runs after the last epoch "
                        "both have run, in percentage points (pp: 91 % against 92 % is −1 pp)."
                        + ("" if summary.get("val_acc") is None else f" Validation split (held-out training "
                           f"images): {100 * summary['val_acc']:.2f} %."))
    units, can = summary.get("units"), droppable(summary)
    cols[3].metric("Units dropped", f"{len(summary.get('dropped') or [])} of "
                                    f"{can if can is not None else '—'}",
                   help="Units of the feature extractor frozen at the front of the network, of those that "
                        f"can drop: {can} of its {units} units"
                        + ("; the last one before the head always trains, so the head has features to learn "
                           "from."
                           if can is not None and units is not None and can < units else "."))
    spread = [epoch_spread(epochs), epoch_spread(base_epochs)]
    if measured and (note := speedup_noise(measured[0], spread)):
        st.caption(note)
