"""Who trains a run: a run is live while a process holds its folder's lock, whatever process.json says (a
pid reused by another process, another host's name after a container restart, a copied runs folder), and
taking a run for training is atomic (of three resumes at once, one trains; the others get one line, exit 2)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from fake_run import write_fake_run
from helpers import ROOT, fast_config

from learndrop import events as ev
from learndrop.errors import LearnDropError
from learndrop.runs.recorder import RunRecorder
from learndrop.runs.registry import RunRegistry
from learndrop.runs.store import RunStore
from learndrop.training.control import TrainingControl

HOLD = ("import sys, time; from learndrop.runs.store import RunStore; "
        "claim = RunStore(sys.argv[1]).claim(sys.argv[2]); print('held', flush=True); time.sleep(600)")


def _killed_mid_run(store: RunStore) -> str:
    """A run whose process ended without run_finished (its writer gone: the lock released)."""
    return write_fake_run(store, units=4, epochs=3, finished=False)


@pytest.mark.parametrize("holder", [
    {"pid": 1, "host": socket.gethostname()},  # a pid that now belongs to another (live) process: init
    {"pid": os.getpid(), "host": socket.gethostname()},  # this very process, which does not train it
    {"pid": 12345, "host": "container-before-its-restart"},  # another host's name: not to be trusted forever
])
def test_a_run_whose_process_is_gone_is_interrupted_whatever_process_json_says(holder, tmp_path):
    store = RunStore(tmp_path)
    run_id = _killed_mid_run(store)
    (store.path(run_id) / "process.json").write_text(json.dumps(holder))
    assert store.summary(run_id)["status"] == "interrupted"
    registry = RunRegistry(store)
    assert registry.status(run_id) == "interrupted" and registry.trainer(run_id) is None
    assert registry.resume_problem(run_id) is not None and "checkpoint" in registry.resume_problem(run_id)


@pytest.mark.slow  # a lock-holding subprocess
def test_a_run_a_live_process_holds_is_running_and_resume_says_who_holds_it(tmp_path, capsys):
    store = RunStore(tmp_path)
    run_id = _killed_mid_run(store)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), run_id], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert store.summary(run_id)["status"] == "running"
        registry = RunRegistry(store)
        assert registry.status(run_id) == "running"
        assert f"process {holder.pid} on host" in registry.trainer(run_id)
        assert f"being trained by process {holder.pid}" in registry.resume_problem(run_id)
        with pytest.raises(LearnDropError, match=f"being trained by process {holder.pid}"):
            RunRecorder(store).open_for_resume(run_id)
    finally:
        holder.kill()  # the way out: the process ends (however), the lock goes with it
        holder.wait()
    assert store.summary(run_id)["status"] == "interrupted"


def _stopped_after_first_epoch(store: RunStore, epochs: int) -> str:
    config = fast_config(epochs=epochs)
    control = TrainingControl(config.policy)

    def stop(event):
        if isinstance(event, ev.EpochEnded):
            control.request_stop()

    return RunRecorder(store).start(config, [stop], control=control)["run_id"]


@pytest.mark.slow  # three CLI subprocesses
def test_three_resumes_of_one_run_at_once_train_it_once(tmp_path):
    """Before: in 3 of 16 tries two processes trained the same run, both exited 0, and one process's event log
    went to an unlinked file. Now the first to take the run's lock trains; the others say so in one line."""
    store = RunStore(tmp_path)
    run_id = _stopped_after_first_epoch(store, epochs=200)  # long enough to outlast the others' start
    cmd = [sys.executable, "-m", "learndrop", "train", "--runs-dir", str(tmp_path), "--resume", run_id]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    deadline = time.monotonic() + 90
    while sum(p.poll() is not None for p in procs) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    for p in procs:  # the one still training stops at its next step (recorded as stopped)
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    outcomes = sorted((p.wait(timeout=120), p.stderr.read()) for p in procs)
    assert [code for code, _ in outcomes] == [0, 2, 2], outcomes
    for _, err in outcomes[1:]:
        assert err.count("\n") == 1 and f"error: run {run_id!r} is being trained by process " in err, err
    events = store.events(run_id)
    assert events.skipped == 0
    assert [type(e).__name__ for e in events.events].count("CheckpointRestored") == 1
    assert isinstance(events.events[-1], ev.RunFinished) and events.events[-1].status == "stopped"
    assert len(list(store.path(run_id).glob("events.before-resume-*.jsonl"))) <= 1
