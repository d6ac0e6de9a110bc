"""The training loop: event order, drops acting on the network, stop, live thresholds, accounting."""

from __future__ import annotations

import threading

import pytest
from helpers import FORCED, fast_config

from learndrop import events as ev
from learndrop.config import PolicyConfig
from learndrop.errors import LearnDropError
from learndrop.runs.recorder import RunRecorder
from learndrop.runs.store import RunStore
from learndrop.training.control import TrainingControl
from learndrop.training.loop import lr_at, prepare, train


def record(config, control=None, **kw):
    seen = []
    summary = train(config, [seen.append], control=control, **kw)
    return summary, seen


def types(events):
    return [e.type for e in events]


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_event_order_of_a_run():
    summary, seen = record(fast_config(epochs=2, checks_per_epoch=1))
    t = types(seen)
    assert t[0] == "run_started" and t[-1] == "run_finished" and seen[-1].status == "completed"
    # each epoch: started, progress..., unit_scores (the check at its last step), ..., ended
    for epoch in (0, 1):
        of_epoch = [e.type for e in seen if e.epoch == epoch and e.type not in ("run_started", "run_finished")]
        assert of_epoch[0] == "epoch_started" and of_epoch[-1] == "epoch_ended"
        assert of_epoch.count("unit_scores") == 1 and "progress" in of_epoch
    assert [e.step for e in seen] == sorted(e.step for e in seen)
    assert summary["epochs_done"] == 2 and summary["status"] == "completed"


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_run_finished_is_last_even_when_training_raises(monkeypatch):
    import learndrop.training.loop as train_module

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(train_module, "evaluate", broken)
    seen = []
    with pytest.raises(RuntimeError, match="boom"):
        train(fast_config(epochs=2), [seen.append])
    assert seen[0].type == "run_started" and seen[-1].type == "run_finished"
    assert seen[-1].status == "failed" and "boom" in seen[-1].error


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_drops_shrink_the_trained_network_and_its_flops():
    summary, seen = record(fast_config(epochs=4, checks_per_epoch=1))
    drops = [e for e in seen if isinstance(e, ev.UnitDropped)]
    assert drops, "the forced test policy drops at check 2 (the second epoch's end)"
    assert [d.index for d in drops] == list(range(len(drops)))  # a prefix, in order
    epochs = [e for e in seen if isinstance(e, ev.EpochEnded)]
    assert epochs[-1].active_units < epochs[0].active_units
    assert epochs[-1].trainable_params < epochs[0].trainable_params
    assert epochs[-1].fwd_flops < epochs[-1].baseline_fwd_flops
    assert epochs[-1].bwd_flops < epochs[-1].baseline_bwd_flops
    assert any(isinstance(e, ev.CacheBuilt) for e in seen)
    assert summary["fwd_flops_reduction_pct"] > 0 and summary["dropped"][0]["unit"] == drops[0].unit


def test_cached_epoch_costs_only_the_suffix():
    """Once the cache holds the prefix, an epoch's forward FLOPs are the suffix's, exactly."""
    summary, seen = record(fast_config(epochs=4, checks_per_epoch=1, policy=FORCED))  # everything at check 2
    started = seen[0]
    per_unit = {u["name"]: u["fwd_flops"] for u in started.units}
    epochs = [e for e in seen if isinstance(e, ev.EpochEnded)]
    drops_by_epoch = {}
    for e in seen:
        if isinstance(e, ev.UnitDropped):
            drops_by_epoch.setdefault(e.epoch, []).append(e.unit)
    # find an epoch that starts with a cached prefix and drops nothing new while it runs
    dropped: list[str] = []
    checked = 0
    for epoch in epochs:
        builds = [e for e in seen if isinstance(e, ev.CacheBuilt) and e.epoch == epoch.epoch]
        if dropped and not builds and epoch.epoch not in drops_by_epoch:
            suffix = sum(v for k, v in per_unit.items() if k not in dropped)
            assert epoch.fwd_flops == suffix * epoch.images
            checked += 1
        dropped += drops_by_epoch.get(epoch.epoch, [])
    assert dropped == [f"features.{i}" for i in range(5)] and checked == 1  # epoch 4 (epoch 3 built the cache)


def test_stop_ends_within_a_step_and_reports_stopped(tmp_path):
    control = TrainingControl(PolicyConfig())
    seen = []

    def stop_at_step_5(event):
        seen.append(event)
        if isinstance(event, ev.Progress) and event.step >= 4:
            control.request_stop()

    store = RunStore(tmp_path)
    summary = RunRecorder(store).start(fast_config(epochs=5, progress_every=4), [stop_at_step_5], control=control)
    assert seen[-1].status == "stopped" and summary["status"] == "stopped"
    assert seen[-1].step == 4  # no step after the stop was asked
    assert (store.path(summary["run_id"]) / "model.pt").is_file()  # a stopped run keeps its model


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_threshold_change_mid_run_is_recorded_and_used():
    control = TrainingControl(PolicyConfig(tau=0.01, kappa=0.01))  # nothing can drop
    seen = []

    def raise_tau_after_first_check(event):
        seen.append(event)
        if isinstance(event, ev.UnitScores) and event.check == 2:
            control.set_thresholds(tau=1.0, kappa=1e9)  # every unit a candidate: drops come on any CPU

    train(fast_config(epochs=3, policy=control.policy()), [raise_tau_after_first_check], control=control)
    changed = [e for e in seen if isinstance(e, ev.ThresholdsChanged)]
    assert len(changed) == 1 and changed[0].old["tau"] == 0.01 and changed[0].new["tau"] == 1.0
    first_drop = next(e for e in seen if isinstance(e, ev.UnitDropped))
    assert first_drop.step >= changed[0].step


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_pause_blocks_training_until_resumed():
    control = TrainingControl(PolicyConfig())
    seen, resumed = [], threading.Event()

    def pause_once(event):
        seen.append(event)
        if isinstance(event, ev.Progress) and event.step == 4 and not resumed.is_set():
            control.pause()
            threading.Timer(0.3, lambda: (resumed.set(), control.unpause())).start()

    train(fast_config(epochs=1), [pause_once], control=control)
    assert "run_paused" in types(seen) and "run_unpaused" in types(seen)
    waited = next(e for e in seen if isinstance(e, ev.RunUnpaused)).paused_s
    epoch = next(e for e in seen if isinstance(e, ev.EpochEnded))
    assert waited >= 0.25 and epoch.epoch_time_s < epoch.time_s - waited + 1e-6


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_baseline_and_learndrop_see_the_same_batches():
    """Same seed: the same initial weights and data order, so the first checks agree until a drop."""
    _, base = record(fast_config(epochs=1, policy=PolicyConfig(name="none")))
    _, ld = record(fast_config(epochs=1))
    first = lambda evs: next(e for e in evs if isinstance(e, ev.UnitScores)).scores  # noqa: E731
    assert [s["d"] for s in first(base)] == [s["d"] for s in first(ld)]


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_none_policy_never_drops():
    summary, seen = record(fast_config(epochs=3, policy=PolicyConfig(name="none", tau=1.0, kappa=100.0)))
    assert summary["dropped"] == [] and summary["fwd_flops_reduction_pct"] == 0.0
    assert any(s["state"] == "candidate" for e in seen if isinstance(e, ev.UnitScores) for s in e.scores)


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_diverging_loss_fails_with_a_reason_and_keeps_the_last_good_model(tmp_path):
    import torch

    seen = []
    holder = {}

    def poison_at_epoch_2(event):
        seen.append(event)
        if isinstance(event, ev.EpochStarted) and event.epoch == 1:
            holder["good"] = store.model_state(event.run_id)
            with torch.no_grad():  # what an exploding learning rate does, deterministically
                next(holder["model"].parameters()).fill_(float("nan"))

    config = fast_config(epochs=3)
    from learndrop.training.prepare import prepare as setup_prepare

    setup = setup_prepare(config)
    holder["model"] = setup.model
    store = RunStore(tmp_path)
    with pytest.raises(LearnDropError, match="training diverged: the loss became nan at epoch 2"):
        RunRecorder(store).start(config, [poison_at_epoch_2], setup=setup)
    assert seen[-1].type == "run_finished" and seen[-1].status == "failed" and "diverged" in seen[-1].error
    assert [e.epoch for e in seen if isinstance(e, ev.EpochEnded)] == [0]  # what was recorded is kept
    saved = store.model_state(seen[-1].run_id)
    assert all(torch.equal(saved[k], holder["good"][k]) for k in saved)  # the last good epoch's model
    assert all(torch.isfinite(v).all() for v in saved.values() if v.is_floating_point())


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_exploding_learning_rate_is_caught():
    with pytest.raises(LearnDropError, match="diverged"):
        train(fast_config(lr=9.0, momentum=0.99, epochs=3, progress_every=1))


def test_bad_input_is_refused_before_training():
    with pytest.raises(LearnDropError, match="larger than the training set"):
        prepare(fast_config(batch_size=1000, subset=100))
    with pytest.raises(LearnDropError, match="unknown data set"):
        prepare(fast_config(dataset="cifar100"))


def test_lr_schedules():
    cfg = fast_config(lr=0.1, lr_schedule="cosine")
    assert lr_at(cfg, 0, 100) == pytest.approx(0.1) and lr_at(cfg, 50, 100) == pytest.approx(0.05)
    one = fast_config(lr=0.1, lr_schedule="onecycle")
    assert lr_at(one, 10, 100) == pytest.approx(0.05) and lr_at(one, 20, 100) == pytest.approx(0.1)
