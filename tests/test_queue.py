"""The training queue on its own: a run's state through RunState while it waits, trains and ends; cancelling;
what it refuses. A queue with ``max_parallel=0`` trains nothing, so most of these need no thread and no torch."""

from __future__ import annotations

import pytest
from helpers import fast_config

from learndrop.errors import LearnDropError
from learndrop.runs.queue import RunQueue
from learndrop.runs.store import RunStore
from learndrop.status import ENDED, LIVE, TRAINING, RunState


@pytest.fixture
def held(store) -> RunQueue:
    """A queue that holds every run queued (nothing trains)."""
    return RunQueue(store, max_parallel=0)


def test_a_queued_run_and_its_baseline_wait_in_order(held):
    run_id = held.submit(fast_config(), with_baseline=True)
    base = held.baseline_of(run_id)
    assert held.state(run_id) is RunState.QUEUED and held.state(base) is RunState.QUEUED
    assert held.state(run_id) in LIVE and held.state(run_id) not in TRAINING and held.is_live(run_id)
    assert held.get(base).compared_with == run_id and held.get(base).config.policy.name == "none"
    assert held.training_and_queued() == ([], [run_id, base])
    assert held.queued_behind(base) == [run_id] and held.queued_behind(run_id) == []
    assert held.live_run_ids() == [run_id, base] and held.active_of(base) == base
    assert held.state("20990101-000000-tiny-shapes-none-beef") is None  # a run the queue does not hold


def test_a_queued_run_takes_thresholds_and_a_pause_but_is_not_paused(held):
    run_id = held.submit(fast_config())
    held.pause(run_id)  # held for when it starts; it does not train yet
    held.set_thresholds(run_id, tau=0.7)
    assert held.state(run_id) is RunState.QUEUED and not held.is_paused(run_id)
    assert held.policy(run_id).tau == 0.7 and held.get(run_id).control.paused


def test_stop_cancels_a_queued_run_and_its_baseline(held, store):
    run_id = held.submit(fast_config(), with_baseline=True)
    base = held.baseline_of(run_id)
    held.stop(run_id)  # cancelled: they leave when their turn comes, and no longer count as waiting
    assert held.get(run_id).error == "stopped before it started" and "was stopped" in held.get(base).error
    assert held.training_and_queued() == ([], []) and held.get(run_id).control.stop_requested
    assert held.state(run_id) is RunState.QUEUED and not store.exists(run_id)


@pytest.mark.slow  # trains in the live queue's background thread
def test_cancelled_runs_end_not_started_when_the_slot_frees(store):
    queue = RunQueue(store)
    first = queue.submit(fast_config(epochs=30))
    queue.pause(first)  # it holds the one training slot
    second = queue.submit(fast_config(), with_baseline=True)
    base = queue.baseline_of(second)
    assert queue.queued_behind(base) == [first, second]
    queue.stop(second)
    queue.stop(first)
    assert queue.wait(first, 60) and queue.wait(second, 10) and queue.wait(base, 10)
    # paused at its first step and stopped there: nothing trained, so nothing recorded ("not started", no folder);
    # stopped, with its folder, had it made a step before the pause
    assert queue.state(first) is (RunState.STOPPED if store.exists(first) else RunState.NOT_STARTED)
    assert queue.state(second) is queue.state(base) is RunState.NOT_STARTED and not store.exists(second)
    assert queue.live_run_ids() == [] and queue.policy(second) is None
    with pytest.raises(LearnDropError, match="is not running"):
        queue.stop(second)
    with pytest.raises(LearnDropError, match="is not running"):
        queue.set_thresholds(first, tau=0.5)


def test_a_run_continued_is_queued_under_its_id_once(held, store):
    """Whether a stored run may continue is the catalogue's question; the queue only refuses it twice."""
    from fake_run import write_fake_run

    run_id = write_fake_run(store, units=4, epochs=2)
    assert held.resume_run(run_id) == run_id and held.get(run_id).continues
    assert held.state(run_id) is RunState.QUEUED
    with pytest.raises(LearnDropError, match="already queued or running"):
        held.resume_run(run_id)


def test_bad_input_and_an_unwritable_runs_folder_refuse_before_anything_queues(tmp_path):
    queue = RunQueue(RunStore(tmp_path / "runs"), max_parallel=0)
    with pytest.raises(LearnDropError) as bad:
        queue.submit(fast_config(epochs=0))
    assert bad.value.field == "epochs" and queue.run_ids() == []
    (tmp_path / "file").write_text("x")
    queue = RunQueue(RunStore(tmp_path / "file" / "runs"))
    with pytest.raises(LearnDropError, match="is a file"):
        queue.submit(fast_config(), with_baseline=True)
    assert queue.run_ids() == [] and queue.training_and_queued() == ([], [])


def test_a_run_that_fails_before_its_folder_ends_not_started(store):
    queue = RunQueue(store)
    run_id = queue.submit(fast_config(dataset="folder:/nonexistent/images"))
    assert queue.wait(run_id, 60)
    assert queue.state(run_id) is RunState.NOT_STARTED and "does not exist" in queue.get(run_id).error
    assert not store.exists(run_id)


@pytest.mark.slow  # trains in the live queue's background thread
def test_a_trained_run_ends_in_its_stored_state_with_its_events_held(store):
    queue = RunQueue(store)
    run_id = queue.submit(fast_config(epochs=1))
    assert queue.state(run_id) in TRAINING | {RunState.QUEUED}
    assert queue.wait(run_id, 120)
    run = queue.get(run_id)
    assert queue.state(run_id) is RunState.COMPLETED and queue.state(run_id) in ENDED and run.error is None
    assert run.holds_events() and run.events_after(0) == store.events(run_id).events
    assert run.events_after(0)[-1].type == "run_finished"


@pytest.mark.slow  # trains in the live queue's background thread
def test_a_tensorboard_folder_gets_each_runs_log_and_a_bad_one_is_refused(store, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    held = RunQueue(store, max_parallel=0)
    with pytest.raises(LearnDropError, match="TensorBoard folder .* is a file") as info:
        held.submit(fast_config(), tensorboard=blocker)
    assert info.value.field == "tensorboard" and held.live_run_ids() == []  # nothing queued

    queue = RunQueue(store)
    run_id = queue.submit(fast_config(epochs=1), with_baseline=True, tensorboard=tmp_path / "tb")
    base = queue.baseline_of(run_id)
    assert queue.wait(run_id, 120) and queue.wait(base, 120)
    assert queue.state(run_id) is RunState.COMPLETED and queue.state(base) is RunState.COMPLETED
    for rid in (run_id, base):  # one log per run, side by side
        assert list((tmp_path / "tb" / rid).glob("events.out.tfevents.*")), rid

