"""The run store: files on disk, events round-trip, interrupted runs, safe ids, refused model files."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import fast_config

from learndrop import events as ev
from learndrop.errors import LearnDropError
from learndrop.report.tables import drops_frame, epochs_frame, scores_frame
from learndrop.runs.recorder import RunRecorder
from learndrop.runs.store import read_events, validate_run_id
from learndrop.training.prepare import prepare


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_run_folder_and_round_trip(store):
    config = fast_config(epochs=3)
    seen = []
    setup = prepare(config)
    run_id = RunRecorder(store).start(config, [seen.append], setup=setup)["run_id"]
    files = {p.name for p in store.path(run_id).iterdir()}
    assert {"config.json", "events.jsonl", "summary.json", "model.pt"} <= files
    assert "process.json" not in files  # removed when the run finished
    loaded = store.events(run_id)
    assert loaded.skipped == 0 and loaded.events == seen  # frozen dataclasses compare by value
    assert store.config(run_id) == dataclasses.replace(config, normalize="dataset")  # "auto" recorded as resolved
    summary = store.summary(run_id)
    for key in ("run_id", "status", "policy", "model", "dataset", "epochs_done", "test_acc", "train_time_s",
                "eval_time_s", "fwd_flops", "bwd_flops", "baseline_fwd_flops", "baseline_bwd_flops",
                "fwd_flops_reduction_pct", "train_flops_reduction_pct", "dropped"):
        assert key in summary
    assert summary["status"] == "completed" and 0 <= summary["test_acc"] <= 1
    assert all(set(d) == {"unit", "epoch", "check"} for d in summary["dropped"])
    # the saved model is the network's whole state_dict (buffers included), shape for shape
    state = store.model_state(run_id)
    fresh = prepare(config).model.state_dict()  # the same seed: the untrained network
    assert list(state) == list(fresh)
    assert all(isinstance(v, torch.Tensor) and v.shape == fresh[k].shape and v.dtype == fresh[k].dtype
               for k, v in state.items())
    trained = setup.model.state_dict()  # and it is the trained network, not the initial one
    assert all(torch.equal(state[k], trained[k].cpu()) for k in trained)
    assert not all(torch.equal(state[k], fresh[k]) for k in fresh)
    assert store.run_ids() == [run_id]


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_tables_from_events(store):
    config = fast_config(epochs=3)
    run_id = RunRecorder(store).start(config)["run_id"]
    events = store.events(run_id).events
    epochs = epochs_frame(events)
    assert list(epochs["epoch_number"]) == [1, 2, 3]
    assert (epochs["cum_baseline_flops"].diff().dropna() > 0).all()
    scores = scores_frame(events)
    assert len(scores) == 3 * 2 * 6  # epochs x checks per epoch x units
    assert set(scores["state"]) <= {"training", "candidate", "frozen", "dropped"}
    assert len(drops_frame(events)) == len(store.summary(run_id)["dropped"])


def test_running_run_without_process_shows_interrupted(store):
    writer = store.create(fast_config())
    writer(ev.RunStarted(run_id=writer.run_id, epoch=0, step=0, time_s=0.0, config={}, units=[], device="cpu",
                         train_size=1, test_size=1, classes=[], steps_per_epoch=1, input_shape=[3, 8, 8]))
    assert store.summary(writer.run_id)["status"] == "running"  # its writer holds the run's lock
    writer.close()  # as the process's end does, however it ends (the kernel lets go of the lock)
    assert store.summary(writer.run_id)["status"] == "interrupted"


def test_corrupt_event_line_is_skipped_and_counted(tmp_path):
    path = tmp_path / "events.jsonl"
    good = ev.to_json(ev.EpochStarted(run_id="r", epoch=0, step=0, time_s=0.0, lr=0.1))
    path.write_text(good + "\n{not json\n" + good + "\n" + '{"type": "epoch_star')
    loaded = read_events(path)
    assert len(loaded.events) == 2 and loaded.skipped == 2


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", "", "a\\b", ".hidden", "x" * 200, "a..b"])
def test_run_ids_with_path_tricks_are_refused(bad, store):
    with pytest.raises(LearnDropError, match="invalid run id"):
        validate_run_id(bad)
    with pytest.raises(LearnDropError):
        store.path(bad)


def test_model_that_is_no_state_dict_is_refused(store):
    writer = store.create(fast_config())
    torch.save({"not": "tensors"}, writer.dir / "model.pt")
    with pytest.raises(LearnDropError, match="not a state dict"):
        store.model_state(writer.run_id)

    class Evil:
        def __reduce__(self):
            return (print, ("pickled code ran",))

    torch.save(Evil(), writer.dir / "model.pt")
    with pytest.raises(LearnDropError, match="not a loadable state dict"):
        store.model_state(writer.run_id)


def test_truncated_model_file_is_refused_naming_it(store):
    writer = store.create(fast_config())
    path = writer.dir / "model.pt"
    torch.save({"w": torch.ones(100)}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(LearnDropError, match="not a loadable state dict") as info:
        store.model_state(writer.run_id)
    assert str(path) in str(info.value)


def test_empty_model_file_is_refused_naming_it(store):
    writer = store.create(fast_config())
    (writer.dir / "model.pt").write_bytes(b"")
    with pytest.raises(LearnDropError, match="not a loadable state dict"):
        store.model_state(writer.run_id)


@pytest.mark.parametrize("model, dataset, expected", [
    ("torchvision:mobilenet_v3_small", "shapes", "-torchvision-mobilenet_v3_small-shapes-learndrop-"),
    ("timm:resnet50.a1_in1k", "folder:/data/my images", "-timm-resnet50.a1_in1k-folder-learndrop-"),
])
def test_run_ids_of_models_and_data_sets_whose_names_hold_other_characters(store, model, dataset, expected):
    run_id = store.new_run_id(fast_config(model=model, dataset=dataset))
    assert validate_run_id(run_id) == run_id and expected in run_id


def test_events_recorded_under_their_older_names_are_read_as_today(tmp_path):
    """The units were "layers" in older recordings, and lifting a pause "resumed" a run."""
    lines = [{"type": "layer_dropped", "run_id": "r", "epoch": 1, "step": 9, "time_s": 1.0, "unit": "features.0",
              "index": 0, "check": 2, "s": 0.1, "c": 0.9, "reason": "features.0 dropped"},
             {"type": "run_resumed", "run_id": "r", "epoch": 1, "step": 9, "time_s": 2.0, "paused_s": 1.5},
             {"type": "run_started", "run_id": "r", "epoch": 0, "step": 0, "time_s": 0.0, "config": {}, "units": [],
              "device": "cpu", "train_size": 1, "test_size": 1, "classes": [], "steps_per_epoch": 1,
              "input_shape": [3, 8, 8], "reference_peaks": {"features.0": 0.5}}]
    dropped, unpaused, started = (ev.from_dict(line) for line in lines)
    assert isinstance(dropped, ev.UnitDropped) and dropped.type == "unit_dropped" and dropped.unit == "features.0"
    assert isinstance(unpaused, ev.RunUnpaused) and unpaused.paused_s == 1.5
    assert started.inherited_peaks == {"features.0": 0.5}
