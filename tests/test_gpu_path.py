"""What of the GPU path can be checked on a CPU: an out-of-memory while building the cache, resuming on
another device, the span timer, the benchmark's memory of the run's device, and gpu_smoke.py's dry run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from helpers import FORCED, ROOT, SHARED_DATA, fast_config

from learndrop import events as ev
from learndrop.bench.running import PeakMemory
from learndrop.method.cache import ActivationCache
from learndrop.runs.recorder import RunRecorder
from learndrop.training.device import SpanTimer
from learndrop.training.loop import train


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_running_out_of_memory_while_building_the_cache_is_a_cache_skipped_not_a_failure(monkeypatch):
    def no_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(ActivationCache, "add", no_memory)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    events: list[ev.Event] = []
    summary = train(fast_config(policy=FORCED, epochs=4), [events.append])
    assert summary["status"] == "completed" and summary["dropped"]
    skipped = [e for e in events if isinstance(e, ev.CacheSkipped)]
    assert skipped and "ran out of memory" in skipped[0].reason
    assert not any(isinstance(e, ev.CacheBuilt) for e in events)


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_resume_takes_another_device_and_says_where_it_continues(store):
    config = fast_config(policy=FORCED, epochs=3, device="auto")

    def stop_at_the_second_epochs_end(event):  # at the second epoch's end: the first one's checkpoint is saved
        if isinstance(event, ev.EpochEnded) and event.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        RunRecorder(store).start(config, [stop_at_the_second_epochs_end])
    (run_id,) = store.run_ids()
    events: list[ev.Event] = []
    assert RunRecorder(store).resume(run_id, [events.append], device="cpu")["status"] == "completed"
    assert next(e for e in events if isinstance(e, ev.CheckpointRestored)).device == "cpu"


@pytest.mark.slow  # the CLI in a subprocess
def test_the_cli_resumes_with_device_and_refuses_a_gpu_that_is_not_there(store):
    def stop_at_the_second_epochs_end(event):  # at the second epoch's end: the first one's checkpoint is saved
        if isinstance(event, ev.EpochEnded) and event.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        RunRecorder(store).start(fast_config(epochs=3), [stop_at_the_second_epochs_end])
    (run_id,) = store.run_ids()
    cmd = [sys.executable, "-m", "learndrop", "train", "--runs-dir", str(store.root), "--resume", run_id]
    run = lambda *extra: subprocess.run([*cmd, *extra], cwd=ROOT, capture_output=True, text=True, timeout=300,  # noqa: E731
                                        check=False, env={"PYTHONPATH": str(ROOT)})
    if not torch.cuda.is_available():
        gpu = run("--device", "cuda")
        assert gpu.returncode == 2 and "no CUDA GPU" in gpu.stderr and gpu.stderr.strip().count("\n") == 0
    again = run("--device", "cpu")
    assert again.returncode == 0, again.stderr[-1500:]
    assert f"resuming run {run_id} at epoch 2 on cpu" in again.stderr


def test_the_span_timer_sums_its_spans_on_the_cpu():
    timer = SpanTimer(torch.device("cpu"))
    for _ in range(3):
        timer.start()
        sum(range(20_000))
        timer.stop()
    assert 0 < timer.seconds() < 1


def test_the_benchmark_measures_the_memory_of_the_device_the_run_used():
    with PeakMemory(torch.device("cpu")) as mem:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB resident
        block += 1
        import time

        time.sleep(0.2)
    assert mem.mb >= 64 and not mem.cuda


@pytest.mark.slow
@pytest.mark.skipif(not ((SHARED_DATA / "cifar10" / "train").is_dir() and (SHARED_DATA / "MNIST" / "raw").is_dir()),
                    reason="gpu_smoke.py's quick pairs train on ../shared/data/cifar10 and MNIST, not present here")
def test_gpu_smoke_runs_as_a_dry_run_on_the_cpu(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_smoke.py"), "--device", "cpu", "--out",
                          str(tmp_path / "results"), "--epochs", "1", "--subset", "512"], cwd=ROOT,
                         capture_output=True, text=True, timeout=900, check=False, env={"PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    (path,) = (tmp_path / "results").glob("gpu-*.json")
    result = json.loads(path.read_text())
    assert set(result["checks"]) == {"cuda tests all passed", "no host sync in the step",
                                     "time efficiency >= 0.9 (quick pairs)"}
    assert result["cuda_tests"]["tests"] and all(t["outcome"] == "skipped" for t in result["cuda_tests"]["tests"].values())
    assert len(result["quick"]) == 2 and result["host_syncs"]["checked"] is False
