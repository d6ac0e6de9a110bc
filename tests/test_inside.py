"""Look inside: the record a run leaves (inside.jsonl), its bound, its reader, and the page that shows it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from fake_run import write_fake_run
from helpers import ROOT, fast_config
from streamlit.testing.v1 import AppTest

from dashboard import state
from learndrop import events as ev
from learndrop.data.datasets import ImageData
from learndrop.models import create_model
from learndrop.report import plots
from learndrop.report.inside import FILE, read
from learndrop.runs import inside as recording
from learndrop.runs.recorder import RunRecorder
from learndrop.training.prepare import Setup

PAGE = "pages/look_inside.py"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple:
    """A real short run that drops units, recorded as the app and the CLI record runs."""
    from learndrop.runs.store import RunStore

    store = RunStore(tmp_path_factory.mktemp("inside") / "runs")
    summary = RunRecorder(store).start(fast_config(epochs=4))
    return store, summary


@pytest.mark.slow  # over 5 s: the module's recorded run, trained in-process
def test_a_run_leaves_its_record_one_line_per_check(recorded):
    store, summary = recorded
    inside = read(store.path(summary["run_id"]))
    events = [json.loads(line) for line in (store.path(summary["run_id"]) / "events.jsonl").open()]
    checks = [e["check"] for e in events if e["type"] == "unit_scores"]
    assert inside.check_ids == checks
    assert inside.images.shape[0] == recording.IMAGES and inside.images.dtype == np.uint8
    assert inside.units == [s["unit"] for s in next(e for e in events if e["type"] == "unit_scores")["scores"]]
    filters, _ = inside.filters(checks[0])
    assert filters.shape[0] <= recording.FILTERS and filters.shape[1] == 3  # RGB tiles: the input has 3 channels
    for view in inside.at(checks[0]):
        assert view.maps.shape[1] <= recording.MAPS and max(view.maps.shape[2:]) <= recording.MAP_PX


@pytest.mark.slow  # over 5 s: the module's recorded run, trained in-process
def test_a_dropped_units_maps_stay_those_of_its_drop(recorded):
    store, summary = recorded
    inside = read(store.path(summary["run_id"]))
    drop = summary["dropped"][0]
    after = [c for c in inside.check_ids if c > drop["check"]]
    assert after, "the unit dropped before the last check"
    at_drop = next(v for v in inside.at(drop["check"]) if v.unit == drop["unit"])
    later = next(v for v in inside.at(after[-1]) if v.unit == drop["unit"])
    assert later.state == "dropped" and later.since == drop["check"] and np.array_equal(later.maps, at_drop.maps)
    learning = [v for v in inside.at(after[-1]) if v.state != "dropped"]
    assert learning and all(v.since is None for v in learning)  # units still training are recorded anew


def test_recording_leaves_every_module_in_its_mode_and_the_weights_alone(small_net, tmp_path):
    images = torch.randint(0, 255, (16, 3, 8, 8), dtype=torch.uint8)
    data = ImageData(images, torch.arange(16) % 10, tuple(str(i) for i in range(10)))
    setup = Setup(torch.device("cpu"), data, data, small_net)
    small_net.train()
    small_net.unit(0).eval()  # a dropped prefix stays in eval mode
    modes = [m.training for m in small_net.modules()]
    before = {k: v.clone() for k, v in small_net.state_dict().items()}
    rec = recording.InsideRecorder(tmp_path, setup)
    rec(_scores(1, small_net.unit_names))
    assert [m.training for m in small_net.modules()] == modes
    assert all(torch.equal(before[k], v) for k, v in small_net.state_dict().items())


def _scores(check: int, units, dropped: int = 0) -> ev.UnitScores:
    return ev.UnitScores(run_id="r", epoch=check - 1, step=check, time_s=float(check), check=check, thresholds={},
                          scores=[{"unit": u, "state": "dropped" if i < dropped else "training"}
                                  for i, u in enumerate(units)])


@pytest.mark.slow  # over 5 s: 400 checks of resnet56's record
def test_the_record_of_a_long_run_of_a_deep_model_is_bounded(tmp_path):
    model = create_model("resnet56", num_classes=10)
    images = torch.randint(0, 255, (8, 3, 32, 32), dtype=torch.uint8)
    data = ImageData(images, torch.arange(8) % 10, tuple(str(i) for i in range(10)))
    rec = recording.InsideRecorder(tmp_path, Setup(torch.device("cpu"), data, data, model))
    rec(ev.RunStarted(run_id="r", epoch=0, step=0, time_s=0.0, config={}, units=[], device="cpu", train_size=8,
                      test_size=8, classes=list(data.classes), steps_per_epoch=1, input_shape=[3, 32, 32]))
    assert len(rec.units) == recording.MAX_UNITS < len(model.unit_names)
    for check in range(1, 400):  # up to 400 checks of a 28-unit network, none dropped: the worst case
        rec(_scores(check, model.unit_names))
        if rec.full:
            break
    size = (tmp_path / FILE).stat().st_size
    assert rec.full and recording.MAX_BYTES <= size < recording.MAX_BYTES * 1.1
    assert read(tmp_path).full
    checks = len(read(tmp_path).checks)
    rec(_scores(999, model.unit_names))  # nothing more once full
    assert len(read(tmp_path).checks) == checks


@pytest.mark.slow  # over 5 s: the module's recorded run, trained in-process
def test_the_reader_skips_a_line_being_written_and_keeps_a_resumed_runs_last_record(recorded, tmp_path):
    store, summary = recorded
    lines = (store.path(summary["run_id"]) / FILE).read_text().splitlines()
    again = json.loads(lines[2])
    again["epoch"] = 99  # a resumed run records the same check again
    (tmp_path / FILE).write_text("\n".join([*lines, json.dumps(again), lines[3][:50]]))
    inside = read(tmp_path)
    assert inside.check_ids == read(store.path(summary["run_id"])).check_ids
    assert next(c for c in inside.checks if c["check"] == again["check"])["epoch"] == 99
    assert read(tmp_path / "none") is None


@pytest.mark.slow  # over 5 s: the module's recorded run, trained in-process
def test_the_figures_show_the_maps_and_say_when_there_are_none(recorded):
    store, summary = recorded
    inside = read(store.path(summary["run_id"]))
    last = inside.check_ids[-1]
    fig = plots.feature_maps(inside.at(last), 0)
    ticks = fig.layout.yaxis.ticktext
    assert len(ticks) == len(inside.units) and any("dropped (since check" in t for t in ticks)
    assert fig.data[0].z.shape[2] == 3
    assert plots.filter_grid(*inside.filters(last)[:1], inside.units[0]).data
    assert plots.feature_maps([], 0).layout.annotations  # says why it is empty


# --- the page ------------------------------------------------------------------------------------------
def _open(run_id: str | None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    if run_id:
        at.query_params["run"] = run_id
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_the_page_shows_a_finished_run_and_steps_through_its_checks(runs):
    summary = RunRecorder(runs).start(fast_config(epochs=4))
    at = _open(summary["run_id"])
    keys = {c.key for c in at.get("plotly_chart")}
    assert {f"filters_{summary['run_id']}", f"maps_{summary['run_id']}"} <= keys and not at.error
    slider = at.select_slider(key=f"inside_check_{summary['run_id']}")
    assert slider.value == read(runs.path(summary["run_id"])).check_ids[-1]  # the newest check first
    slider.set_value(1).run()
    assert not at.exception and at.select_slider(key=f"inside_check_{summary['run_id']}").value == 1
    at.toggle(key=f"inside_play_{summary['run_id']}").set_value(True).run()
    assert not at.exception


@pytest.mark.slow  # trains in the live queue's background thread
def test_the_page_says_so_for_a_run_without_a_record_and_for_a_live_run_before_its_first_check(runs):
    old = write_fake_run(runs, units=6, epochs=3)  # recorded before this view existed: no file
    at = _open(old)
    assert any("no look-inside record" in i.value for i in at.info) and not at.error
    registry = state.registry()
    live = registry.submit(fast_config(epochs=30))
    registry.pause(live)
    at = _open(live)
    assert not at.error and not at.exception


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_the_train_page_shows_the_latest_maps_of_the_run(runs):
    summary = RunRecorder(runs).start(fast_config(epochs=3))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["run"] = summary["run_id"]
    at.run()
    assert not at.exception
    assert f"inside_latest_{summary['run_id']}" in {c.key for c in at.get("plotly_chart")}
