"""SIGTERM (docker stop, systemd, timeout) while the data load stops the process at once and records nothing;
a new run stopped before its first training step leaves no folder (before: a run recorded `stopped` at step 0
with an untrained model that could not be resumed, once all the data had loaded)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import ROOT, fast_config
from PIL import Image

from learndrop.runs.recorder import RunRecorder
from learndrop.runs.store import RunStore
from learndrop.training.control import TrainingControl

# the CLI, with each image's decoding slowed down as a slow disk would (about 40 s for the folder below)
SLOW_LOAD = ("import sys, time; import learndrop.data.decode as d; real = d._decode\n"
             "def slow(*a):\n    print('loading', flush=True); time.sleep(0.2); return real(*a)\n"
             "d._decode = slow; from learndrop.cli import main; sys.exit(main(sys.argv[1:]))")


@pytest.mark.slow  # the CLI in a subprocess, sent SIGTERM
def test_sigterm_while_the_data_load_stops_at_once_and_records_nothing(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / "images" / cls).mkdir(parents=True)
        for i in range(200):
            Image.fromarray(np.full((8, 8, 3), i, dtype=np.uint8)).save(tmp_path / "images" / cls / f"{i}.png")
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_LOAD, "train", "--dataset", f"folder:{tmp_path / 'images'}",
                             "--runs-dir", str(runs), "--batch-size", "16"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "loading"
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("still loading 15 s after SIGTERM") from None
    assert time.monotonic() - sent < 15
    err = proc.stderr.read()
    assert code == 128 + signal.SIGTERM, err[-2000:]
    assert err.strip().splitlines()[-1] == "stopped by SIGTERM before training began: nothing was recorded"
    assert not runs.exists() or not any(runs.iterdir())


def test_a_run_stopped_before_its_first_step_leaves_no_folder(tmp_path):
    store = RunStore(tmp_path)
    config = fast_config(epochs=2)
    control = TrainingControl(config.policy)
    control.request_stop()  # as SIGTERM does once the run folder exists, before the first step
    summary = RunRecorder(store).start(config, control=control)
    assert summary["status"] == "stopped"
    assert store.run_ids() == [] and not any(tmp_path.iterdir())
