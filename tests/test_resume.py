"""Checkpoints: a stopped or killed run continues from its last epoch and ends where it would have."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import FORCED, ROOT, fast_config

from learndrop import events as ev
from learndrop.cli import main
from learndrop.errors import LearnDropError
from learndrop.runs.recorder import RunRecorder
from learndrop.training.control import TrainingControl

# drops every droppable unit at check 2 (the end of epoch 2): after the stop, the cache must be rebuilt
DROP_AT_2 = FORCED


def _train_to_end(store, config):
    return RunRecorder(store).start(config)["run_id"]


def _train_and_stop_after_epoch(store, config, epoch):
    control = TrainingControl(config.policy)

    def stop(event):
        if isinstance(event, ev.EpochEnded) and event.epoch == epoch:
            control.request_stop()

    return RunRecorder(store).start(config, [stop], control=control)["run_id"]


@pytest.mark.slow  # over 5 s: trains a run in-process
@pytest.mark.parametrize("augment, stop_after", [(False, 2), (False, 0), (True, 2)],
                         ids=["drop-then-stop", "stop-then-drop", "augmented"])
def test_resumed_run_ends_with_the_same_weights(store, augment, stop_after):
    config = fast_config(epochs=5, checks_per_epoch=1, augment=augment, policy=DROP_AT_2)
    whole = _train_to_end(store, config)
    parts = _train_and_stop_after_epoch(store, config, epoch=stop_after)
    assert store.summary(parts)["status"] == "stopped"
    summary = RunRecorder(store).resume(parts)
    assert summary["status"] == "completed" and summary["epochs_done"] == 5
    a, b = store.model_state(whole), store.model_state(parts)
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ"
    assert store.summary(whole)["dropped"] == store.summary(parts)["dropped"]
    assert store.summary(parts)["dropped"], "the test wants a dropped prefix"
    events = store.events(parts).events
    assert [e.type for e in events].count("run_started") == 1 and events[-1].type == "run_finished"
    assert [e.epoch for e in events if isinstance(e, ev.EpochEnded)] == [0, 1, 2, 3, 4]
    restored = next(e for e in events if isinstance(e, ev.CheckpointRestored))
    assert restored.from_epoch == stop_after + 1 and restored.previous_status == "stopped"
    assert restored.set_aside >= 1
    assert list(store.path(parts).glob("events.before-resume-*.jsonl"))  # the stopped tail is kept aside


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_completed_run_cannot_resume(store):
    run_id = _train_to_end(store, fast_config(epochs=1))
    with pytest.raises(LearnDropError, match="already completed"):
        RunRecorder(store).resume(run_id)


@pytest.mark.slow  # the CLI in a subprocess, killed mid-run
def test_kill_9_mid_run_leaves_an_interrupted_run_that_resumes(tmp_path, capsys):
    """5 epochs of 512 images: killed right after the 2nd epoch ends, 3 epochs (each with a 2,000-image
    evaluation) before the run could finish, so the kill lands mid-run; the resume (the CLI in this
    process: no second start-up) trains those 3."""
    runs = tmp_path / "runs"
    epochs = 5
    args = [sys.executable, "-m", "learndrop", "train", "--runs-dir", str(runs), "--epochs", str(epochs),
            "--subset", "512", "--width", "0.5", "--device", "cpu"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 180
        events_file = None
        while time.time() < deadline and proc.poll() is None:
            found = list(runs.glob("*/events.jsonl"))
            if found and found[0].read_text().count('"epoch_ended"') >= 2:
                events_file = found[0]
                break
            time.sleep(0.05)
        assert events_file is not None, "the run did not reach its second epoch in time"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it was killed"
    lines = events_file.read_text().splitlines()
    readable = [json.loads(line) for line in lines[:-1]]  # all but a possibly half-written last line load
    try:
        readable.append(json.loads(lines[-1]))
    except json.JSONDecodeError:
        pass
    assert readable[0]["type"] == "run_started"
    assert not any(e["type"] == "run_finished" for e in readable), "killed after the run had finished"
    ended = sum(e["type"] == "epoch_ended" for e in readable)
    assert 2 <= ended < epochs
    run_id = events_file.parent.name
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    listed = next(line for line in capsys.readouterr().out.splitlines() if run_id in line)
    assert "interrupted" in listed
    assert main(["train", "--runs-dir", str(runs), "--resume", run_id]) == 0, capsys.readouterr().err[-2000:]
    summary = json.loads((events_file.parent / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_done"] == epochs
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    restored = [e for e in events if e["type"] == "checkpoint_restored"]
    # from epoch 2, or 1 when the kill landed between epoch 1's end and its checkpoint
    assert len(restored) == 1 and restored[0]["previous_status"] == "interrupted" and restored[0]["from_epoch"] >= 1
    assert [e["epoch"] for e in events if e["type"] == "epoch_ended"] == list(range(epochs))
