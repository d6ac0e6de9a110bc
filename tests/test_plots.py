"""Figures, tables, comparison and what-if replay: pure functions, tested without Streamlit."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import plotly.graph_objects as go
import pytest
from fake_run import fake_config, fake_events

from learndrop import events as ev
from learndrop.config import PolicyConfig
from learndrop.method.pace import pace_times
from learndrop.report import plots, tables
from learndrop.report.compare import compare_table, export_json, find_baseline, flops_speedup, run_label, time_speedup
from learndrop.report.replay import (
    DataChunk,
    data_chunks,
    estimate_fwd_flops,
    intervals,
    recorded_schedule_flops,
    replay_run,
)
from learndrop.report.view import RunView, progress_status


def make_view(units=6, epochs=8, checks=2, finished=True, policy="learndrop") -> RunView:
    view = RunView("r")
    view.extend(fake_events("r", fake_config(units, epochs, checks, policy), units, finished=finished))
    return view


@pytest.fixture(scope="module")
def small() -> RunView:
    return make_view()


@pytest.fixture(scope="module")
def big() -> RunView:
    """500 checks x 60 units: the size the app must stay responsive with."""
    return make_view(units=60, epochs=250, checks=2)


def frames(view: RunView) -> dict[str, pd.DataFrame]:
    return {name: view.table(name) for name in ("scores", "drops", "checks", "epochs", "progress", "units", "log",
                                                "chunks")}


def all_figures(view: RunView) -> dict[str, go.Figure]:
    f = frames(view)
    return {
        "heatmap": plots.change_heatmap(f["scores"], f["drops"], f["checks"]),
        "lines": plots.score_lines(f["scores"], f["checks"], f["drops"]),
        "active": plots.active_network(f["scores"], f["drops"]),
        "times": plots.epoch_times(f["epochs"], f["epochs"]),
        "flops": plots.flops_chart(f["epochs"]),
        "loss": plots.loss_accuracy(f["epochs"], f["progress"], 79),
        "story": plots.unit_story(f["scores"], view.unit_names()[0], 0.25, 1.0),
        "unit_flops": plots.flops_by_unit(f["units"], 2),
        "compare": plots.compare_lines({"a": f["epochs"]}, "train_time_s", "test_acc", "s", "%", 100),
        "bars": plots.flops_bars({"measured": 5e9, "estimate": 6e9}, 1e10),
    }


def test_every_figure_has_data_for_a_finished_run(small):
    for name, fig in all_figures(small).items():
        assert isinstance(fig, go.Figure), name
        assert fig.data and all(len(t.x if t.x is not None else t.z) for t in fig.data), name
        json.loads(fig.to_json())  # serialisable as Streamlit sends it


def test_every_figure_says_why_it_is_empty_before_data():
    view = RunView("r")
    view.extend(list(fake_events("r", fake_config(6, 2), 6))[:1])  # run_started only
    for name, fig in all_figures(view).items():
        if name in ("unit_flops", "bars"):
            continue  # they need no checks
        assert not fig.data and fig.layout.annotations[0].text, name


def test_heatmap_units_top_to_bottom_checks_across_with_drop_markers(small):
    f = frames(small)
    fig = plots.change_heatmap(f["scores"], f["drops"], f["checks"])
    heat, marks = fig.data[0], fig.data[1]
    assert list(heat.y) == small.unit_names()  # first unit first, drawn on top:
    assert fig.layout.yaxis.autorange == "reversed"
    assert list(heat.x) == list(range(1, 17))  # 8 epochs x 2 checks
    assert len(marks.x) == len(f["drops"]) > 0 and list(marks.text) == list(f["drops"]["reason"])
    # a dropped unit has no score after its drop: blank cells
    first = f["drops"].iloc[0]
    row = list(heat.y).index(first["unit"])
    assert pd.isna(heat.z[row][list(heat.x).index(first["check"]) + 1])


def test_threshold_change_is_marked_on_the_score_charts(small):
    f = frames(small)
    checks = f["checks"].copy()
    before = checks["tau"].iloc[0]
    checks.loc[checks["check"] >= 5, "tau"] = 0.5
    heat = plots.change_heatmap(f["scores"], f["drops"], checks)
    lines = plots.score_lines(f["scores"], checks, f["drops"])
    assert [s.x0 for s in heat.layout.shapes] == [4.5]
    assert f"tau {before:g}→0.5" in heat.layout.annotations[0].text
    tau = next(t for t in lines.data if t.name == "tau")
    assert list(tau.y)[3:5] == [before, 0.5]


def test_long_runs_are_decimated(big):
    f = frames(big)
    assert f["checks"]["check"].max() == 500 and big.started and len(big.unit_names()) == 60
    heat = plots.change_heatmap(f["scores"], f["drops"], f["checks"])
    assert len(heat.data[0].x) <= plots.MAX_COLUMNS + len(f["drops"])
    lines = plots.score_lines(f["scores"], f["checks"], f["drops"])
    unit_lines = [t for t in lines.data if t.name not in ("tau", "dropped")]
    assert len(unit_lines) == 60 and max(len(t.x) for t in unit_lines) <= plots.MAX_POINTS + len(f["drops"])
    assert not lines.layout.showlegend  # 60 units: colour by depth, no legend
    loss = plots.loss_accuracy(f["epochs"], f["progress"], 79)
    assert len(loss.data[0].x) <= 2 * plots.MAX_POINTS


def test_flops_chart_cumulative_matches_the_epochs(small):
    f = frames(small)
    fig = plots.flops_chart(f["epochs"])
    cum = next(t for t in fig.data if t.name.endswith("(fwd + bwd)"))
    assert cum.y[-1] == (f["epochs"]["fwd_flops"] + f["epochs"]["bwd_flops"]).sum()
    full = [t for t in fig.data if t.name == "full network"]
    assert len(full) == 2 and full[1].y[-1] == f["epochs"]["cum_baseline_flops"].iloc[-1]


def test_epoch_times_with_and_without_baseline(small):
    epochs = small.table("epochs")
    assert len(plots.epoch_times(epochs).data) == 1
    fig = plots.epoch_times(epochs, epochs.assign(epoch_time_s=epochs["epoch_time_s"] * 2))
    assert [t.name for t in fig.data] == ["Learn&Drop", "baseline (full training)"]


def test_figures_leave_their_inputs_alone(small):
    f = frames(small)
    before = {k: v.copy() for k, v in f.items()}
    all_figures(small)
    for name, df in f.items():
        pd.testing.assert_frame_equal(df, before[name])


def test_view_tables_are_cached_until_their_events_change():
    view = make_view(finished=False)
    scores = view.table("scores")
    assert view.table("scores") is scores
    view.extend([ev.Progress(run_id="r", epoch=8, step=999, time_s=99.0, loss=0.1, images_per_s=1.0, lr=0.1,
                             epoch_step=1, epoch_steps=79)])
    assert view.table("scores") is scores  # progress does not touch the scores
    built = []
    assert view.derived("f", ("scores",), lambda: built.append(1) or "fig") == "fig"
    assert view.derived("f", ("scores",), lambda: built.append(1) or "fig") == "fig" and built == [1]


def test_progress_status_while_running_and_when_done():
    view = RunView("r")
    events = list(fake_events("r", fake_config(6, 4), 6))
    view.extend(events[:len(events) // 2])
    status = progress_status(view)
    assert 0 < status.fraction < 1 and status.seconds_left is not None and "epoch" in status.label()
    view.extend(events[len(events) // 2:])
    done = progress_status(view)
    assert done.fraction == 1 and done.seconds_left is None and done.epoch == 4


def test_event_log_and_checks_tables(small):
    log = small.table("log")
    assert list(log.columns) == tables.LOG_COLUMNS
    assert log["event"].iloc[0] == "run started" and log["event"].iloc[-1] == "run finished"
    assert (log["event"] == "unit dropped").sum() == len(small.table("drops"))
    checks = small.table("checks")
    assert len(checks) == 16 and (checks["training"] + checks["candidates"] + checks["dropped"] == 6).all()


# --- what-if replay ------------------------------------------------------------------------------------
def test_estimate_fwd_flops_by_hand():
    # units 10, 20, 30 FLOPs per image, head 5: the full network is 65 per image; one chunk of 100 images
    # interval 1, nothing dropped:                65 x 100            = 6500
    # interval 2, unit 1 dropped and cached:      10 x 100 (build) + 55 x 100 = 6500
    # interval 3, units 1-2 dropped, cache grown: 20 x 100 (extend) + 35 x 100 = 5500
    one_chunk = ([0, 0, 0], [100])
    assert estimate_fwd_flops([10, 20, 30], 5, [0, 1, 2], [100, 100, 100], True, *one_chunk) == (18_500, 19_500)
    # without a cache the prefix still runs forward (under no_grad): nothing saved
    assert estimate_fwd_flops([10, 20, 30], 5, [0, 1, 2], [100, 100, 100], False, *one_chunk) == (19_500, 19_500)


def test_estimate_fwd_flops_of_a_stream_by_hand():
    # the same network, data in two chunks of 100 images, one interval of 100 images each:
    # chunk 0, nothing dropped:                    65 x 100                      = 6500
    # chunk 0, unit 1 dropped: cache chunk 0       10 x 100 + 55 x 100           = 6500
    # chunk 1 arrives, unit 1 dropped: add it      10 x 100 + 55 x 100           = 6500
    # chunk 1, units 1-2: extend both chunks' rows 20 x 200 + 35 x 100           = 7500
    streamed = estimate_fwd_flops([10, 20, 30], 5, [0, 1, 1, 2], [100] * 4, True, [0, 0, 1, 1], [100, 100])
    assert streamed == (27_000, 26_000)  # the cache costs more than this short stream saves


def test_intervals_count_images_per_chunk():
    data = [DataChunk(0, 100, 4), DataChunk(8, 30, 1)]  # 2 epochs of 4 steps, then 30 images in one step
    assert intervals([2, 4, 8, 9, 10], data) == ([50.0, 50.0, 100.0, 30.0, 30.0], [0, 0, 0, 1, 1])


def test_replay_with_the_recorded_thresholds_reproduces_the_run(small):
    f = frames(small)
    started = small.started
    args = (started.units, data_chunks(started, f["chunks"]), True)
    timed = (*args, None, started.total_steps)  # the pace's progress: the checks' steps of the run's
    same = replay_run(f["scores"], f["checks"], PolicyConfig(), *timed)
    assert same.drops[["unit", "check"]].values.tolist() == f["drops"][["unit", "check"]].values.tolist()
    assert same.fwd_flops == recorded_schedule_flops(f["scores"], f["checks"], *args)[0]
    eager = replay_run(f["scores"], f["checks"], PolicyConfig(tau=1.0, kappa=3.0), *timed)
    assert len(eager.drops) >= len(same.drops) and eager.fwd_flops <= same.fwd_flops
    # after its recorded drop a unit's change is unknown and counts as zero: it drops one check later at most
    strict = replay_run(f["scores"], f["checks"], PolicyConfig(tau=0.01, kappa=0.05), *timed)
    assert (strict.drops["check"].values <= f["drops"]["check"].values + 1).all()


def test_replaying_a_baseline_is_exact():
    base = make_view(policy="none")
    f = frames(base)
    assert f["drops"].empty and f["scores"]["d"].notna().all()  # every unit measured at every check
    started = base.started
    args = (started.units, data_chunks(started, f["chunks"]), True)
    never = replay_run(f["scores"], f["checks"], PolicyConfig(tau=0.01, kappa=0.05), *args)
    assert never.drops.empty and never.fwd_reduction_pct == 0
    some = replay_run(f["scores"], f["checks"], PolicyConfig(), *args)
    assert len(some.drops) > 0 and some.fwd_reduction_pct > 0


def test_a_paced_replay_drops_no_unit_before_its_time_on_the_schedule():
    base = make_view(policy="none")
    f = frames(base)
    started = base.started
    args = (started.units, data_chunks(started, f["chunks"]), True)
    # every unit meets the rule from its second check on
    eager = PolicyConfig(tau=1.0, kappa=1e9, warmup=0, paced=False)
    paced = dataclasses.replace(eager, paced=True, pace_start=0.5)
    free = replay_run(f["scores"], f["checks"], eager, *args, None, started.total_steps)
    held = replay_run(f["scores"], f["checks"], paced, *args, None, started.total_steps)
    times = pace_times(len(started.units) - 1, paced)  # the units without the head
    assert len(held.drops) > 0 and free.drops["step"].min() < held.drops["step"].min()
    for drop in held.drops.itertuples():
        assert drop.step / started.total_steps >= times[drop.index] - 1e-9, drop.unit


# --- comparing runs ------------------------------------------------------------------------------------
def test_find_baseline_matches_the_training_setup():
    cfg = fake_config(6, 8).to_dict()
    base = {**cfg, "policy": {**cfg["policy"], "name": "none"}, "checks_per_epoch": 3}
    other_seed = {**base, "seed": 1}
    configs = {"2-ld": cfg, "1-base": base, "3-base-seed1": other_seed, "0-base-old": base}
    statuses = {"1-base": "completed", "0-base-old": "completed", "3-base-seed1": "completed"}
    assert find_baseline("2-ld", configs, statuses) == "1-base"  # newest completed with the same setup
    assert find_baseline("1-base", configs, statuses) is None  # a baseline has none


def test_speedups_and_compare_table(small):
    epochs = small.table("epochs")
    slow = epochs.assign(epoch_time_s=epochs["epoch_time_s"] * 3)
    assert time_speedup(epochs, slow) == (pytest.approx(3.0), 8)
    assert time_speedup(epochs.iloc[:0], slow) is None
    summary = {**small.summary(), "run_id": "20261122-020815-tiny-shapes-learndrop-df10"}
    assert flops_speedup(summary) > 1
    base = {**summary, "run_id": "b", "policy": "none", "test_acc": summary["test_acc"] - 0.01}
    table = compare_table([summary, base], {summary["run_id"]: epochs, "b": slow}, "b")
    assert table["speedup"].tolist() == [3.0, 1.0] and table["accuracy delta (pp)"].iloc[0] == pytest.approx(1.0)
    assert json.loads(export_json([summary], {summary["run_id"]: epochs}))[0]["epochs"][0]["epoch"] == 0
    assert run_label(summary) == "learndrop · resnet56 · shapes · 02:08:15 df10"


# --- streaming: chunk boundaries ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def streamed() -> RunView:
    """3 chunks of 3 epochs each, 2 checks per epoch: 9 epochs, 18 checks."""
    view = RunView("r")
    view.extend(fake_events("r", fake_config(6, 3, 2, stream=3), 6))
    return view


def vlines(fig: go.Figure) -> list[tuple[float, str]]:
    """(x, axis) of the figure's vertical lines."""
    return [(s.x0, s.xref) for s in fig.layout.shapes if s.x0 == s.x1]


def chunk_labels(fig: go.Figure) -> list[tuple[float, str]]:
    return [(a.x, a.text) for a in fig.layout.annotations if a.text and a.text.startswith("chunk ")]


def test_chunks_table(streamed):
    chunks = streamed.table("chunks")
    assert chunks["chunk"].tolist() == [0, 1, 2] and chunks["epoch"].tolist() == [0, 3, 6]
    assert chunks["end_epoch"].tolist() == [2, 5, 8] and chunks["classes"].iloc[1] == [3, 4, 5]
    assert (chunks["seen_acc"] >= chunks["test_acc"]).all()
    shown = tables.chunk_table(chunks, 3)
    assert shown["chunk"].tolist() == ["1 of 3", "2 of 3", "3 of 3"]
    assert shown["epochs"].tolist() == ["1–3", "4–6", "7–9"]
    assert shown["classes"].tolist() == ["0-2", "3-5", "6-9"]
    assert shown["test accuracy, classes seen (%)"].iloc[0] == f"{100 * chunks['seen_acc'].iloc[0]:.2f}"
    assert tables.format_classes((0, 2, 4)) == "0,2,4" and tables.format_classes(None) == ""


def test_chunk_starts_are_marked_on_every_time_axis(streamed):
    f, chunks = frames(streamed), streamed.table("chunks")
    labels = ["chunk 1", "chunk 2", "chunk 3"]
    # checks: chunk k starts at epoch 3k, whose first check is 2 x 3k + 1: lines between checks 6k and 6k+1
    for fig in (plots.change_heatmap(f["scores"], f["drops"], f["checks"], chunks),
                plots.score_lines(f["scores"], f["checks"], f["drops"], chunks),
                plots.active_network(f["scores"], f["drops"], chunks)):
        assert vlines(fig) == [(0.5, "x"), (6.5, "x"), (12.5, "x")]
        assert chunk_labels(fig) == list(zip([0.5, 6.5, 12.5], labels))
    # epoch bars numbered from 1: chunk k's first bar is 3k + 1, the line just before it
    times = plots.epoch_times(f["epochs"], None, "Learn&Drop", chunks)
    assert vlines(times) == [(0.5, "x"), (3.5, "x"), (6.5, "x")] and [t for _, t in chunk_labels(times)] == labels
    flops = plots.flops_chart(f["epochs"], "Learn&Drop", chunks)  # both panels
    assert sorted(vlines(flops)) == sorted((x, a) for x in (0.5, 3.5, 6.5) for a in ("x", "x2"))
    # loss and accuracy against epochs trained: chunk k starts after 3k epochs
    loss = plots.loss_accuracy(f["epochs"], f["progress"], 79, chunks)
    assert sorted(vlines(loss)) == sorted((x, a) for x in (0.0, 3.0, 6.0) for a in ("x", "x2"))
    story = plots.unit_story(f["scores"], streamed.unit_names()[-1], 0.25, 1.0, chunks)
    assert {x for x, _ in vlines(story)} == {0.5, 6.5, 12.5}
    # compare: epochs as above; training time spent before the chunk (cumulative seconds after epoch 3k)
    by_epoch = plots.compare_lines({"a": f["epochs"], "b": f["epochs"]}, "epoch_number", "test_acc", "epoch", "%",
                                   100, chunks={"a": chunks, "b": chunks})
    assert vlines(by_epoch) == [(0.5, "x"), (3.5, "x"), (6.5, "x")]  # two runs chunked alike share their lines
    by_time = plots.compare_lines({"a": f["epochs"]}, "train_time_s", "test_acc", "s", "%", 100, chunks={"a": chunks})
    cum = f["epochs"]["train_time_s"]
    assert vlines(by_time) == [(0.0, "x"), (cum.iloc[2], "x"), (cum.iloc[5], "x")]


def test_chunk_marks_while_a_chunk_has_just_started_and_with_many_chunks(streamed):
    events = list(fake_events("r", fake_config(6, 3, 2, stream=3), 6))
    second = next(i for i, e in enumerate(events) if e.type == "chunk_started" and e.chunk == 1)
    live = RunView("r")
    live.extend(events[:second + 1])  # chunk 2 arrived, no check in it yet: its line follows the last check
    f = frames(live)
    fig = plots.score_lines(f["scores"], f["checks"], f["drops"], live.table("chunks"))
    assert vlines(fig) == [(0.5, "x"), (6.5, "x")]
    many = pd.DataFrame({"chunk": range(20), "epoch": range(20)})
    fig = plots.epoch_times(streamed.table("epochs"), chunks=many)
    assert len(vlines(fig)) == 20 and len(chunk_labels(fig)) <= plots.MAX_CHUNK_LABELS  # every n-th labelled


def test_runs_that_do_not_stream_get_no_chunk_marks(small):
    f = frames(small)
    assert small.table("chunks").empty
    assert not vlines(plots.epoch_times(f["epochs"], chunks=small.table("chunks")))
    assert not vlines(plots.change_heatmap(f["scores"], f["drops"], f["checks"], small.table("chunks")))


def test_chunk_accuracy_figure(streamed):
    chunks = streamed.table("chunks")
    fig = plots.chunk_accuracy(chunks)
    seen, every = fig.data
    assert list(seen.x) == [1, 2, 3] and list(every.y) == pytest.approx(list(100 * chunks["test_acc"]))
    assert not plots.chunk_accuracy(chunks.iloc[:0]).data  # says what will appear instead
    json.loads(fig.to_json())
