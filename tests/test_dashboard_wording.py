"""What the Train page says, seen in Chromium and corrected: every chart drawn by check marks a threshold
change, the last unit before the head is not shown as a candidate waiting for nothing, whole-number ticks on
check and epoch axes, no "−0.0 %", "1 events" or an arrow beside a signed delta, and time figures that sit
inside the machine's epoch-to-epoch noise are called noise."""

from __future__ import annotations

import pandas as pd
from test_plots import all_figures, frames, make_view

from dashboard.widgets import accuracy_delta_label, droppable, signed, unsigned
from learndrop.report import plots
from learndrop.report.noise import epoch_spread, speedup_noise


def test_every_chart_drawn_by_check_marks_a_threshold_change():
    f = frames(make_view())
    checks = f["checks"].copy()
    checks.loc[checks["check"] >= 5, "tau"] = 0.5
    for fig in (plots.change_heatmap(f["scores"], f["drops"], checks), plots.score_lines(f["scores"], checks, f["drops"]),
                plots.active_network(f["scores"], f["drops"], None, checks)):
        assert [s.x0 for s in fig.layout.shapes] == [4.5]
        assert any("→0.5" in a.text for a in fig.layout.annotations)


def test_the_last_unit_before_the_head_is_never_shown_as_a_candidate():
    """Today's policy never marks it; a recording made before that did, and the chart still says it trains."""
    f = frames(make_view(units=4, epochs=12))
    scores = f["scores"]
    is_last = scores["unit_index"] == scores["unit_index"].max()
    assert not (scores.loc[is_last, "state"] == "candidate").any()
    older = scores.copy()
    older.loc[is_last & (older["check"] > 12), "state"] = "candidate"
    fig = plots.active_network(older, f["drops"])
    heat = fig.data[0]
    row = list(heat.y).index(scores.loc[is_last, "unit"].iloc[0])
    assert 1 not in [v for v in heat.z[row] if v == v]  # 1: candidate's code
    assert all("always trains" in t for t in heat.text[row] if t)


def test_check_and_epoch_axes_have_whole_number_ticks():
    for name, fig in all_figures(make_view(units=6, epochs=3, checks=2)).items():
        if name in ("heatmap", "lines", "active", "times", "flops", "loss"):
            assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.tickformat == "d", name
    long = all_figures(make_view(units=6, epochs=60, checks=2))
    assert long["heatmap"].layout.xaxis.dtick == 10 and long["times"].layout.xaxis.dtick == 5


def test_numbers_read_as_meant():
    assert unsigned(-0.04, 1) == "0.0" and unsigned(48.6, 1) == "48.6"
    assert signed(-0.001, 2) == "0.00" and signed(-0.75, 2) == "−0.75" and signed(1.0, 2) == "+1.00"
    assert accuracy_delta_label((-0.0075, 3), 3, 3) == "−0.75 pp vs baseline"
    assert droppable({"units": 6, "policy": "learndrop"}) == 5 and droppable({"units": 6, "policy": "freeze-first-k"}) == 6


def test_a_speedup_inside_the_epoch_time_noise_is_called_noise():
    steady = pd.DataFrame({"epoch_time_s": [5.0, 4.0, 4.1, 3.9, 4.0], "active_units": [6] * 5})
    busy = pd.DataFrame({"epoch_time_s": [5.0, 4.0, 46.0, 4.1, 9.0], "active_units": [6] * 5})
    assert epoch_spread(steady) < 0.05 and epoch_spread(busy) > 1
    assert speedup_noise(1.8, [epoch_spread(steady)]) is None
    assert "within that noise" in speedup_noise(0.85, [epoch_spread(busy)])
    assert "counted, not timed" in speedup_noise(1.19, [epoch_spread(busy), None])
