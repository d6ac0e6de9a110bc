"""The live run registry: queueing, baselines, steering, and many readers while a run writes."""

from __future__ import annotations

import threading
import time

import pytest
from fake_run import fake_config, fake_events
from helpers import fast_config

from learndrop import events as ev
from learndrop.config import PolicyConfig
from learndrop.errors import LearnDropError
from learndrop.runs.registry import RunRegistry
from learndrop.runs.store import RunStore


@pytest.fixture
def registry(store) -> RunRegistry:
    return RunRegistry(store)


@pytest.mark.slow  # trains in the live queue's background thread
def test_many_readers_while_a_run_writes_lose_and_duplicate_nothing(registry):
    run_id = registry.submit(fast_config(epochs=3, progress_every=1))
    seen: dict[int, list] = {}
    counts: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def read(k: int) -> None:
        try:
            got, cursor, view_counts = [], 0, []
            while True:
                live = registry.is_live(run_id)
                new, cursor = registry.events_since(run_id, cursor)
                got += new
                view_counts.append(registry.view(run_id).count)  # the one shared view, drained by all
                if not live:  # finished before this read: what follows is the rest
                    new, cursor = registry.events_since(run_id, cursor)
                    got += new
                    break
                time.sleep(0.002)
            seen[k], counts[k] = got, view_counts
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    readers = [threading.Thread(target=read, args=(k,)) for k in range(8)]
    for t in readers:
        t.start()
    for t in readers:
        t.join(120)
    assert not errors and len(seen) == 8
    on_disk = registry.store.events(run_id).events
    assert on_disk[0].type == "run_started" and on_disk[-1].type == "run_finished"
    for k, got in seen.items():
        assert got == on_disk  # every event once, in order
        assert counts[k] == sorted(counts[k]) and len(counts[k]) > 1
    view = registry.view(run_id)
    assert view.count == len(on_disk) and view.finished.status == "completed"
    assert view.of_type(*{e.type for e in on_disk}) == on_disk


@pytest.mark.slow  # trains in the live queue's background thread
def test_baseline_is_queued_right_after_with_the_same_setup(registry):
    run_id = registry.submit(fast_config(epochs=2), with_baseline=True)
    base_id = registry.baseline_of(run_id)
    assert base_id and registry.get(base_id).compared_with == run_id
    assert registry.queued_behind(base_id) in ([run_id], [])  # waits for its Learn&Drop run
    assert registry.wait(run_id, 120) and registry.wait(base_id, 120)
    ld, base = registry.store.config(run_id), registry.store.config(base_id)
    assert base.policy.name == "none" and ld.policy.name == "learndrop" and base.seed == ld.seed
    assert registry.status(run_id) == registry.status(base_id) == "completed"
    ld_end = registry.view(run_id).finished
    base_start = registry.store.path(base_id) / "config.json"
    ld_model = registry.store.path(run_id) / "model.pt"
    assert ld_end is not None and base_start.stat().st_mtime >= ld_model.stat().st_mtime


@pytest.mark.slow  # trains in the live queue's background thread
def test_stop_cancels_a_queued_baseline_and_queued_runs(registry):
    first = registry.submit(fast_config(epochs=20))
    second = registry.submit(fast_config(epochs=2), with_baseline=True)
    assert registry.status(second) == "queued" and registry.queued_behind(second) == [first]
    registry.stop(second)  # cancelled before it started, and its baseline with it
    base = registry.baseline_of(second)
    registry.stop(first)
    assert registry.wait(first, 60) and registry.wait(second, 10) and registry.wait(base, 10)
    assert registry.status(first) in ("stopped", "not started")  # not started: stopped before its first step
    assert registry.status(second) == registry.status(base) == "not started"
    assert registry.get(second).error == "stopped before it started" and "was stopped" in registry.get(base).error
    with pytest.raises(LearnDropError, match="not running"):
        registry.stop(first)


@pytest.mark.slow  # trains in the live queue's background thread
def test_the_run_training_and_the_runs_queued_behind_it_are_told_apart(registry):
    first = registry.submit(fast_config(epochs=20))
    registry.pause(first)  # paused, it still holds the one training slot
    second = registry.submit(fast_config(epochs=2), with_baseline=True)
    base = registry.baseline_of(second)
    assert registry.training_and_queued() == ([first], [second, base])
    registry.stop(second)  # cancelled, and its baseline with it: neither waits any more
    assert registry.training_and_queued() == ([first], [])
    registry.stop(first)
    assert registry.wait(first, 60) and registry.wait(second, 10) and registry.wait(base, 10)
    assert registry.training_and_queued() == ([], [])


@pytest.mark.slow  # trains in the live queue's background thread
def test_thresholds_and_pause_reach_a_live_run(registry):
    run_id = registry.submit(fast_config(epochs=30, policy=PolicyConfig()))
    registry.pause(run_id)
    assert registry.is_paused(run_id) and registry.status(run_id) in ("paused", "queued")
    registry.set_thresholds(run_id, tau=0.6, patience=2)
    assert registry.policy(run_id).tau == 0.6 and registry.policy(run_id).patience == 2
    with pytest.raises(LearnDropError, match="tau"):
        registry.set_thresholds(run_id, tau=1.5)
    registry.unpause(run_id)
    registry.stop(run_id)  # stopped; or, before its first step, recorded nowhere ("not started")
    assert registry.wait(run_id, 60) and registry.status(run_id) in ("stopped", "not started")
    with pytest.raises(LearnDropError):
        registry.set_thresholds(run_id, tau=0.3)


def test_a_runs_folder_that_cannot_be_written_refuses_a_run_before_it_queues(tmp_path):
    (tmp_path / "file").write_text("x")
    registry = RunRegistry(RunStore(tmp_path / "file" / "runs"))
    with pytest.raises(LearnDropError, match="is a file"):
        registry.submit(fast_config(), with_baseline=True)
    assert registry.run_ids() == [] and registry.training_and_queued() == ([], [])


def test_setup_failure_is_recorded_without_a_run_folder(registry):
    run_id = registry.submit(fast_config(dataset="folder:/nonexistent/images"))
    assert registry.wait(run_id, 30)
    assert "does not exist" in registry.get(run_id).error and not registry.store.exists(run_id)
    assert registry.status(run_id) == "not started" and run_id in registry.run_ids()


def test_view_follows_a_run_another_process_writes_and_a_rewritten_log(registry, store):
    config = fake_config(5, 3)
    writer = store.create(config)  # its writer stays open: the run's lock held, as by a process training it
    for event in fake_events(writer.run_id, config, 5, finished=False):
        writer(event)
    run_id = writer.run_id
    view = registry.view(run_id)
    n = view.count
    assert view.finished is None and registry.status(run_id) == "running"
    writer.close()
    path = store.path(run_id) / "events.jsonl"
    with open(path, "a", encoding="utf-8") as f:
        f.write(ev.to_json(ev.RunFinished(run_id=run_id, epoch=2, step=1, time_s=9.0, status="stopped")) + "\n")
    assert registry.view(run_id).count == n + 1 and registry.view(run_id).finished.status == "stopped"
    # a resume rewrites the log (fewer lines, a new file): the view starts over
    lines = path.read_text().splitlines(keepends=True)[:4]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(lines))
    tmp.replace(path)
    assert registry.view(run_id).count == 4


def test_malformed_run_ids_are_refused(registry):
    for bad in ("../x", "a/b", ".."):
        with pytest.raises(LearnDropError, match="invalid run id"):
            registry.view(bad)
        with pytest.raises(LearnDropError):
            registry.stop(bad)


def _stopped_after_first_epoch(registry, epochs: int) -> str:
    """A real run stopped once its first epoch has ended (so it has a checkpoint), through the registry."""
    run_id = registry.submit(fast_config(epochs=epochs, progress_every=1))
    deadline = time.monotonic() + 120
    while registry.view(run_id).table("epochs").empty and time.monotonic() < deadline:
        time.sleep(0.005)
    registry.stop(run_id)
    assert registry.wait(run_id, 60) and registry.status(run_id) == "stopped"
    return run_id


@pytest.mark.slow  # trains in the live queue's background thread
def test_a_stopped_run_resumes_under_its_id_and_finishes(registry, store):
    run_id = _stopped_after_first_epoch(registry, epochs=4)
    done = store.summary(run_id)["epochs_done"]
    assert 1 <= done < 4 and registry.resume_problem(run_id) is None
    other = registry.submit(fast_config(epochs=20))  # one training at a time: the continuation waits its turn
    assert registry.resume_run(run_id) == run_id
    assert registry.status(run_id) == "queued" and registry.queued_behind(run_id) == [other]
    assert "is queued" in registry.resume_problem(run_id)
    registry.stop(other)
    assert registry.wait(other, 60) and registry.wait(run_id, 120)
    assert registry.get(run_id).error is None and registry.status(run_id) == "completed"
    view = registry.view(run_id)
    restored = view.last("checkpoint_restored")
    assert restored.from_epoch == done and restored.previous_status == "stopped"
    assert view.table("epochs")["epoch"].tolist() == [0, 1, 2, 3]  # each epoch once, the first from before
    assert [e.type for e in view.of_type("run_started", "run_finished")] == ["run_started", "run_finished"]
    on_disk = store.events(run_id).events
    assert [e.type for e in on_disk] == [e.type for e in registry.events_since(run_id)[0]]
    assert store.summary(run_id)["status"] == "completed" and store.summary(run_id)["epochs_done"] == 4
    assert "already completed" in registry.resume_problem(run_id)
    with pytest.raises(LearnDropError, match="already completed"):
        registry.resume_run(run_id)


@pytest.mark.slow  # trains in the live queue's background thread
def test_a_run_without_a_checkpoint_cannot_resume(registry):
    run_id = registry.submit(fast_config(epochs=30))
    registry.pause(run_id)
    registry.stop(run_id)  # at its first step: nothing trained, so nothing is recorded (no folder, no checkpoint)
    assert registry.wait(run_id, 60) and registry.status(run_id) == "not started"
    assert not registry.store.exists(run_id)
    with pytest.raises(LearnDropError, match="never started"):
        registry.resume_run(run_id)
    assert not registry.is_live(run_id)
