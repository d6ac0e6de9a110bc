"""Data-parallel Learn&Drop: two gloo processes on the CPU, started by torchrun (and by ``train --nproc``).

The processes end with identical parameters, make the drops one process makes, each cache only its shard;
one run folder, written by rank 0; a killed process ends the run as failed; a stopped run resumes on as many
processes. The parts that need no processes (shards, the launcher's command line) are tested directly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import ROOT, fast_config

from learndrop import events as ev
from learndrop.config import PolicyConfig, RunConfig
from learndrop.data.datasets import ImageData
from learndrop.errors import LearnDropError
from learndrop.runs.queue import RunQueue
from learndrop.runs.store import RunStore
from learndrop.status import RunState
from learndrop.training.world import World

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def _learndrop(*args: str) -> list[str]:
    return [sys.executable, "-m", "learndrop", *args]


# --- without processes ------------------------------------------------------------------------------------
def test_shards_are_disjoint_equal_and_cover_the_epoch_order():
    data = ImageData(torch.zeros(11, 1, 4, 4, dtype=torch.uint8), torch.arange(11), [str(i) for i in range(11)])
    shards = [World(rank, 2).shard(data).labels.tolist() for rank in (0, 1)]
    assert shards == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]  # the 11th image is trained by no one (as drop_last)
    order = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    owned = [World(rank, 2).own(order) for rank in (0, 1)]
    # each process's rows in the global order, as indices into its own shard
    assert [shards[r][i] for r in (0, 1) for i in owned[r].tolist()] == \
        [g for r in (0, 1) for g in order.tolist() if g % 2 == r]
    assert World().own(order) is order and World().shard(data) is data


def test_one_process_world_does_nothing():
    world = World()
    t = torch.tensor([1.0, 2.0])
    assert world.sum(t) is t and world.gather(3) == [3] and world.broadcast("x") == "x"
    world.agree("anything", 1)  # nothing to disagree with
    assert World.from_environment() == world  # not started by torchrun


def test_config_refuses_a_batch_that_does_not_split_and_streaming():
    with pytest.raises(LearnDropError, match="global batch"):
        RunConfig(batch_size=100, world_size=3).validate()
    with pytest.raises(LearnDropError, match="stream"):
        RunConfig(stream=3, world_size=2).validate()


def test_the_server_launches_a_new_run_from_its_config_and_a_resume_by_id(tmp_path, store):
    from learndrop.cli import build_parser
    from learndrop.cli.train import _config_file
    from learndrop.runs.processes import command

    config = RunConfig(model="vgg11", width=0.25, momentum=0.5, world_size=2,
                       policy=PolicyConfig(name="freezeout", measure="function"))
    argv = command(store, "r1", config, tmp_path)
    assert argv[argv.index("--nproc") + 1] == "2" and argv[argv.index("--run-id") + 1] == "r1"
    parsed = build_parser().parse_args(argv[3:])
    assert _config_file(parsed.config) == config  # every setting, momentum too (no option of its own)


# --- two processes ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def worker_runs(tmp_path_factory) -> dict[tuple[int, str], list[dict]]:
    """tests/ddp_worker.py on one process and on two (same global batch, seed and data), per policy."""
    out = {}
    for n in (1, 2):
        folder = tmp_path_factory.mktemp(f"ddp{n}")
        cmd = [*TORCHRUN, "2", "tests/ddp_worker.py", str(folder)] if n == 2 else \
            [sys.executable, "tests/ddp_worker.py", str(folder)]
        result = _run(cmd)
        assert result.returncode == 0, result.stderr[-3000:]
        for policy in ("learndrop", "schedule"):
            out[n, policy] = [torch.load(folder / f"rank{r}-{policy}.pt", weights_only=False) for r in range(n)]
    return out


@pytest.mark.slow  # torchrun: two gloo processes
@pytest.mark.parametrize("policy", ["learndrop", "schedule"])
def test_the_processes_end_with_identical_parameters_and_buffers(worker_runs, policy):
    first, second = (r["state"] for r in worker_runs[2, policy])
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.slow  # torchrun: two gloo processes
def test_two_processes_drop_what_one_drops(worker_runs):
    """At the same checks where the decision depends on progress alone; Learn&Drop's own scores differ a little
    (BatchNorm normalises each process's half-batch), so a unit on the edge of a threshold may tip one check
    later or earlier, never more, and the two processes always decide alike."""
    one, two = worker_runs[1, "schedule"][0], worker_runs[2, "schedule"]
    assert one["drops"] and two[0]["drops"] == one["drops"] == two[1]["drops"]
    one, two = worker_runs[1, "learndrop"][0], worker_runs[2, "learndrop"]
    assert one["drops"] and two[0]["drops"] == two[1]["drops"]
    assert [u for u, _ in two[0]["drops"]] == [u for u, _ in one["drops"]]
    assert all(abs(a[1] - b[1]) <= 1 for a, b in zip(two[0]["drops"], one["drops"]))


@pytest.mark.slow  # torchrun: two gloo processes
def test_each_process_caches_only_its_shard(worker_runs):
    one = worker_runs[1, "schedule"][0]  # the same drops at the same checks: the same prefixes cached
    assert one["caches"], "no cache was built"
    for rank in (0, 1):
        cache = worker_runs[2, "schedule"][rank]["caches"][0]
        assert cache[0] == one["caches"][0][0]  # the same prefix
        assert cache[1] == one["train_size"] // 2  # rows: its shard
        assert cache[2] * 2 == one["caches"][0][2]  # bytes: half the one-process cache


@pytest.mark.slow  # torchrun: two gloo processes
def test_torchrun_trains_one_run_recorded_by_rank_zero(tmp_path):
    """What the issue asks: torchrun --nproc_per_node 2 -m learndrop train --device cpu --epochs 4."""
    result = _run([*TORCHRUN, "2", "-m", "learndrop", "train", "--device", "cpu", "--epochs", "4",
                   "--runs-dir", str(tmp_path)])
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = list(tmp_path.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["status"] == "completed" and summary["dropped"]
    assert result.stdout.count("test accuracy") == 1  # rank 0 alone reports
    # the sharded, summed evaluation is the full test set's: the saved model, evaluated in one process
    from learndrop.data.loader import ImageBatches, Normalizer
    from learndrop.training.evaluate import evaluate
    from learndrop.training.prepare import prepare

    config = RunStore(tmp_path).config(run_dir.name)
    setup = prepare(RunConfig.from_dict({**config.to_dict(), "world_size": 1}))
    setup.model.load_state_dict(torch.load(run_dir / "model.pt", weights_only=True))
    norm = Normalizer(setup.train_data.images, torch.device("cpu"), True)
    _, acc, _ = evaluate(setup.model.to(memory_format=torch.channels_last),
                         ImageBatches(setup.test_data, norm, torch.device("cpu")), False)
    assert acc == pytest.approx(summary["test_acc"], abs=1.5 / len(setup.test_data))  # a borderline image at most


def _start(tmp_path: Path, *args: str) -> subprocess.Popen:
    """``train --nproc 2`` in the background, its runs in tmp_path/runs, its output in tmp_path/launcher.log
    (a pipe could fill up and stall it)."""
    log = open(tmp_path / "launcher.log", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(_learndrop("train", "--nproc", "2", "--device", "cpu", "--runs-dir",
                                       str(tmp_path / "runs"), *args), cwd=ROOT, env=ENV, stdout=log, stderr=log)


def _wait_for(predicate, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _children_with_rank(pid: int, rank: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            status = (proc / "status").read_text()
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
        if ppid == pid and f"RANK={rank}".encode() in environ:
            found.append(int(proc.name))
    return found


@pytest.mark.slow  # torchrun: two gloo processes
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the processes through /proc")
def test_a_killed_process_ends_the_other_and_the_run_fails(tmp_path):
    launcher = _start(tmp_path, "--epochs", "30")
    _wait_for(lambda: any(tmp_path.glob("runs/*/checkpoint.pt")))  # training, an epoch done
    (worker,) = _children_with_rank(launcher.pid, 1)
    killed = time.monotonic()
    os.kill(worker, signal.SIGKILL)
    launcher.wait(timeout=120)
    assert time.monotonic() - killed < 60, "the other process should end at once, not at the timeout"
    assert launcher.returncode == 1, (tmp_path / "launcher.log").read_text()[-3000:]
    store = RunStore(tmp_path / "runs")
    (run_id,) = store.run_ids()
    summary = store.summary(run_id)
    assert summary["status"] in ("failed", "interrupted") and summary["error"], summary


@pytest.mark.slow  # torchrun: two gloo processes
def test_a_stopped_run_resumes_on_as_many_processes(tmp_path):
    launcher = _start(tmp_path, "--epochs", "3")
    _wait_for(lambda: any(tmp_path.glob("runs/*/checkpoint.pt")))
    launcher.send_signal(signal.SIGTERM)  # what the dashboard's Stop does: every process stops together
    launcher.wait(timeout=120)
    runs = tmp_path / "runs"
    store = RunStore(runs)
    (run_id,) = store.run_ids()
    assert store.summary(run_id)["status"] == "stopped", (tmp_path / "launcher.log").read_text()[-3000:]

    alone = _run(_learndrop("train", "--resume", run_id, "--runs-dir", str(runs)))
    assert alone.returncode == 2 and "2 process" in alone.stderr and "Traceback" not in alone.stderr

    result = _run(_learndrop("train", "--resume", run_id, "--nproc", "2", "--runs-dir", str(runs)))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = store.summary(run_id)
    assert summary["status"] == "completed" and summary["epochs_done"] == 3 and summary["world_size"] == 2
    assert any(isinstance(e, ev.CheckpointRestored) for e in store.events(run_id).events)


@pytest.mark.slow  # torchrun: two gloo processes
def test_the_dashboards_queue_trains_a_run_on_two_processes_and_stops_it(store):
    queue = RunQueue(store)
    run_id = queue.submit(fast_config(world_size=2, epochs=200, subset=2048))
    run = queue.get(run_id)
    _wait_for(lambda: any(isinstance(e, ev.EpochEnded) for e in run.events_after(0)))  # followed from disk
    with pytest.raises(LearnDropError, match="not paused"):
        queue.pause(run_id)
    queue.stop(run_id)
    assert queue.wait(run_id, 120)
    assert queue.state(run_id) is RunState.STOPPED, run.error
    last = run.events_after(0)[-1]
    assert isinstance(last, ev.RunFinished) and last.status == "stopped"
    assert store.summary(run_id)["world_size"] == 2 and (store.path(run_id) / "model.pt").is_file()
