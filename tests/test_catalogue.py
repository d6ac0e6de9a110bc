"""The run catalogue on its own: a run's status from the queue's memory or from disk, its summary and view,
why it can or cannot resume, its baseline. The queue beside it trains nothing (``max_parallel=0``)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fake_run import write_fake_run
from helpers import ROOT, fast_config
from test_liveness import HOLD

from learndrop import events as ev
from learndrop.runs.catalogue import RunCatalogue
from learndrop.runs.queue import RunQueue
from learndrop.status import RECORDED, RESUMABLE, RunState

UNKNOWN = "20990101-000000-tiny-shapes-none-beef"


@pytest.fixture
def queue(store) -> RunQueue:
    return RunQueue(store, max_parallel=0)


@pytest.fixture
def catalogue(store, queue) -> RunCatalogue:
    return RunCatalogue(store, queue)


def _finish(store, run_id: str, status: str) -> None:
    """Append the run_finished event a run with ``status`` ends with (its process gone)."""
    with open(store.path(run_id) / "events.jsonl", "a", encoding="utf-8") as f:
        f.write(ev.to_json(ev.RunFinished(run_id=run_id, epoch=1, step=1, time_s=1.0, status=status)) + "\n")
    (store.path(run_id) / "process.json").unlink(missing_ok=True)


def test_a_run_only_on_disk_has_its_stored_status(catalogue, queue, store):
    run_id = write_fake_run(store, units=5, epochs=2)
    assert queue.get(run_id) is None  # nothing in memory
    assert catalogue.status(run_id) is RunState.COMPLETED and catalogue.summary(run_id)["status"] == "completed"
    assert catalogue.run_ids() == [run_id] and catalogue.view(run_id).finished.status == "completed"
    assert catalogue.events_since(run_id)[0] == store.events(run_id).events
    assert catalogue.status(UNKNOWN) is None


def test_a_run_only_in_memory_has_the_queues_state(catalogue, queue, store):
    run_id = catalogue.queue.submit(fast_config())
    assert not store.exists(run_id) and run_id in catalogue.run_ids()  # listed before it has a folder
    assert catalogue.status(run_id) is RunState.QUEUED and catalogue.status(run_id) not in RECORDED
    summary = catalogue.summary(run_id)
    assert summary["status"] == "queued" and summary["run_id"] == run_id
    assert catalogue.view(run_id).count == 0 and catalogue.events_since(run_id) == ([], 0)


def test_a_run_that_ended_before_it_had_a_folder_is_not_started(store):
    catalogue = RunCatalogue(store, RunQueue(store))
    run_id = catalogue.queue.submit(fast_config(dataset="folder:/nonexistent/images"))
    assert catalogue.queue.wait(run_id, 60)
    assert catalogue.status(run_id) is RunState.NOT_STARTED and run_id in catalogue.run_ids()
    assert not store.exists(run_id) and catalogue.view(run_id).count == 0


@pytest.mark.slow  # a lock-holding subprocess
def test_a_run_another_process_left_running_is_running_or_interrupted(catalogue, store):
    run_id = write_fake_run(store, units=5, epochs=3, finished=False)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(store.root), run_id], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)  # another process that trains it: it holds the run's lock
    assert holder.stdout.readline().strip() == "held"
    assert catalogue.status(run_id) is RunState.RUNNING and catalogue.view(run_id).finished is None
    holder.kill()  # kill -9: no file changes, process.json stays; the kernel lets go of the lock
    holder.wait()
    assert catalogue.status(run_id) is RunState.INTERRUPTED  # the summary cache noticed


def test_the_view_follows_the_file_and_starts_over_when_it_is_rewritten(catalogue, store):
    run_id = write_fake_run(store, units=5, epochs=3, finished=False)
    view = catalogue.view(run_id)
    n = view.count
    _finish(store, run_id, "stopped")
    assert catalogue.view(run_id) is view and view.count == n + 1 and view.finished.status == "stopped"
    path = store.path(run_id) / "events.jsonl"
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(path.read_text().splitlines(keepends=True)[:4]))
    tmp.replace(path)  # as a resume does
    assert catalogue.view(run_id).count == 4 and catalogue.view(run_id).finished is None


@pytest.mark.parametrize("status", sorted(RESUMABLE))
def test_resume_problem_needs_a_resumable_status_and_a_checkpoint(catalogue, queue, store, status):
    run_id = write_fake_run(store, units=5, epochs=2, finished=False)
    _finish(store, run_id, status)
    assert catalogue.status(run_id) == status and "no checkpoint" in catalogue.resume_problem(run_id)
    (store.path(run_id) / "checkpoint.pt").write_bytes(b"")
    assert catalogue.resume_problem(run_id) is None
    queue.resume_run(run_id)
    assert "is queued: it continues by itself" in catalogue.resume_problem(run_id)


def test_resume_problem_of_a_completed_run_and_a_run_without_a_folder(catalogue, queue, store):
    done = write_fake_run(store, units=5, epochs=2)
    assert "already completed" in catalogue.resume_problem(done)
    assert "never started" in catalogue.resume_problem(UNKNOWN)


def test_the_newest_fitting_baseline_on_disk_is_found_and_a_linked_one_wins(catalogue, queue, store):
    base = write_fake_run(store, units=5, epochs=2, policy="none")
    run_id = write_fake_run(store, units=5, epochs=2)
    assert catalogue.find_baseline(run_id) == base and catalogue.find_baseline(base) is None
    queued = queue.submit(fast_config(), with_baseline=True)
    assert catalogue.find_baseline(queued) == queue.baseline_of(queued)
