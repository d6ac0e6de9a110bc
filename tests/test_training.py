"""train() end to end, on what the other tests leave out: the cache changes nothing but the cost, a cache
over its cap is skipped and the prefix still costs its forward, candidates frozen behind the frontier
stay frozen and drop later, Ctrl-C ends a run as interrupted (and it resumes), the wsd schedule, and
corrupt checkpoints refused with a clear message."""

from __future__ import annotations

import functools
import itertools
import json

import pytest
import torch
from helpers import fast_config

from learndrop import events as ev
from learndrop.config import PolicyConfig, RunConfig
from learndrop.data.datasets import create_dataset
from learndrop.errors import LearnDropError
from learndrop.runs.recorder import RunRecorder
from learndrop.training.checkpoint import FILENAME, load_checkpoint, save_checkpoint
from learndrop.training.control import TrainingControl
from learndrop.training.loop import train
from learndrop.training.prepare import prepare
from learndrop.training.schedule import lr_at

# 512 images in batches of 64: 8 steps an epoch; 3 checks an epoch fall after steps 3, 6 and 8. Every
# droppable unit (features.0-4 of tiny's 6) drops at check 2 (tau 1 and kappa 100 accept any unit past
# the warm-up), i.e. in the middle of epoch 0; epoch 1 then trains the last unit and the head alone.
MID_EPOCH_DROP = {"epochs": 2, "checks_per_epoch": 3, "cache_dtype": "float32",
                  "policy": PolicyConfig(tau=1.0, kappa=100.0, warmup=1, paced=False)}
DROPPED = [f"features.{i}" for i in range(5)]


@functools.cache
def _data():
    """fast_config's 512 training images, and 256 test images (of 2,000) to keep evaluation short."""
    return create_dataset("shapes", train=True, subset=512), create_dataset("shapes", train=False).subset(256)


def _setup(config: RunConfig):
    return prepare(config, data=_data())


def _run(config: RunConfig, control: TrainingControl | None = None, setup=None, sinks=()):
    setup = setup or _setup(config)
    seen: list[ev.Event] = []
    summary = train(config, [seen.append, *sinks], control=control, setup=setup)
    return summary, seen, {k: v.detach().clone() for k, v in setup.model.state_dict().items()}


def _of(events, cls):
    return [e for e in events if isinstance(e, cls)]


@pytest.fixture(scope="module")
def cache_runs():
    """The same run three ways: with the fp32 cache, without a cache, and with a cache over its cap."""
    return {name: _run(fast_config(**MID_EPOCH_DROP, **kw))
            for name, kw in (("cached", {"cache": True}), ("uncached", {"cache": False}),
                             ("over_cap", {"cache": True, "cache_max_mb": 0.01}))}


# --- the activation cache ---------------------------------------------------------------------------------

@pytest.mark.slow  # over 5 s: the module's three cache runs, trained in-process
def test_training_on_the_fp32_cache_is_the_same_run_as_recomputing_the_prefix(cache_runs):
    _, cached, w_cached = cache_runs["cached"]
    _, uncached, w_uncached = cache_runs["uncached"]
    drops = [(e.unit, e.check) for e in _of(cached, ev.UnitDropped)]
    assert drops == [(u, 2) for u in DROPPED]  # the test's premise: a prefix dropped mid-run
    assert [(e.unit, e.check) for e in _of(uncached, ev.UnitDropped)] == drops
    built = _of(cached, ev.CacheBuilt)
    assert len(built) == 1 and built[0].units == 5 and built[0].dtype == "float32"
    assert built[0].rows == 512 and built[0].bytes == 1_048_576  # 512 images * 32 ch * 4 * 4 * 4 bytes
    assert not _of(uncached, ev.CacheBuilt) and not _of(uncached, ev.CacheSkipped)
    # the same losses and the same final weights (buffers included)
    assert ([e.train_loss for e in _of(cached, ev.EpochEnded)]
            == pytest.approx([e.train_loss for e in _of(uncached, ev.EpochEnded)], rel=1e-6))
    assert set(w_cached) == set(w_uncached)
    for k in w_cached:
        assert torch.allclose(w_cached[k].float(), w_uncached[k].float(), rtol=1e-5, atol=1e-6), k
    # the trained suffix did learn after the drop: the test compares something that moved
    assert not torch.equal(w_cached["head.2.weight"], _setup(fast_config(**MID_EPOCH_DROP)).model.head[2].weight)


@pytest.mark.slow  # over 5 s: the module's three cache runs, trained in-process
def test_the_cache_only_changes_the_cost(cache_runs):
    _, cached, _ = cache_runs["cached"]
    _, uncached, _ = cache_runs["uncached"]
    units = {u["name"]: u["fwd_flops"] for u in cached[0].units}  # per sample, measured at the start
    suffix = units["features.5"] + units["head"]
    last_cached, last_uncached = _of(cached, ev.EpochEnded)[-1], _of(uncached, ev.EpochEnded)[-1]
    # epoch 1: the cached run pays the suffix alone; the other recomputes the prefix: the full forward
    assert last_cached.fwd_flops == suffix * 512
    assert last_uncached.fwd_flops == sum(units.values()) * 512 == last_uncached.baseline_fwd_flops
    assert last_cached.bwd_flops == last_uncached.bwd_flops < last_uncached.baseline_bwd_flops


@pytest.mark.slow  # over 5 s: the module's three cache runs, trained in-process
def test_a_cache_over_its_cap_is_skipped_and_the_prefix_still_costs_its_forward(cache_runs):
    summary, events, weights = cache_runs["over_cap"]
    _, _, w_uncached = cache_runs["uncached"]
    skipped = _of(events, ev.CacheSkipped)
    assert len(skipped) == 1 and not _of(events, ev.CacheBuilt)
    # tiny at width 0.5: features.4 outputs 32 channels at 4x4 (32 px pooled 3 times), in fp32:
    # 512 images * 32 * 4 * 4 values * 4 bytes = 1,048,576 bytes (1 MiB), over the 0.01 MiB cap
    assert skipped[0].bytes_needed == 1_048_576 and "over the 0.01 MiB cap" in skipped[0].reason
    assert events[-1].type == "run_finished" and events[-1].status == "completed"
    assert summary["status"] == "completed" and summary["epochs_done"] == 2
    assert [d["unit"] for d in summary["dropped"]] == DROPPED
    # every epoch's forward costs the full network (the prefix recomputed under no_grad)...
    epochs = _of(events, ev.EpochEnded)
    assert all(e.fwd_flops == e.baseline_fwd_flops for e in epochs)
    assert summary["fwd_flops_reduction_pct"] == 0.0
    # ...while its backward stops at the frozen prefix
    assert epochs[-1].bwd_flops < epochs[-1].baseline_bwd_flops and summary["train_flops_reduction_pct"] > 0
    # and it trains exactly what the uncached run trains
    assert all(torch.allclose(weights[k].float(), w_uncached[k].float(), rtol=1e-5, atol=1e-6) for k in weights)


# --- freeze_candidates through a run ----------------------------------------------------------------------

def test_candidates_behind_a_training_unit_are_frozen_then_drop_when_the_frontier_reaches_them():
    """features.2 and .3 are given a huge peak from an 'earlier run' (fine-tuning's reference peaks), so
    their change score is ~0 from the start: candidates at check 2, while features.0 and .1 in front of
    them still learn (tau 0.02 of their own peak). After check 2 the live tau goes to 1: at check 3 the
    front units are candidates too, and the frontier advances over the frozen units."""
    config = fast_config(epochs=2, checks_per_epoch=3,
                         policy=PolicyConfig(tau=0.02, kappa=10.0, warmup=1, freeze_candidates=True,
                                             paced=False))
    setup = _setup(config)
    model = setup.model
    setup.inherited_peaks = {n: 1e6 if n in ("features.2", "features.3") else 0.0 for n in model.unit_names}
    control = TrainingControl(config.policy)
    at_freeze, at_check_3 = {}, {}

    def unit_state(name):
        return {k: v.detach().clone() for k, v in model.get_submodule(name).state_dict().items()}

    def watch(event):
        if isinstance(event, ev.UnitFrozen):
            at_freeze[event.unit] = unit_state(event.unit)
        if isinstance(event, ev.UnitScores) and event.check == 2:
            at_freeze["features.0"] = unit_state("features.0")
            control.set_thresholds(tau=1.0, kappa=100.0)
        if isinstance(event, ev.UnitScores) and event.check == 3:
            at_check_3.update({n: unit_state(n) for n in model.unit_names})

    _, events, final = _run(config, control, setup, [watch])
    frozen = _of(events, ev.UnitFrozen)
    assert [(e.unit, e.check) for e in frozen] == [("features.2", 2), ("features.3", 2)]
    scores_2 = next(e for e in _of(events, ev.UnitScores) if e.check == 2).scores
    assert [s["state"] for s in scores_2[:4]] == ["training", "training", "frozen", "frozen"]
    # frozen: no longer scored, and bit-identical (weights and BN statistics) while the units in front
    # of them trained on through them
    scores_3 = next(e for e in _of(events, ev.UnitScores) if e.check == 3).scores
    assert [s["d"] is None for s in scores_3[:4]] == [False, False, True, True]
    for name in ("features.2", "features.3"):
        assert all(torch.equal(at_check_3[name][k], v) for k, v in at_freeze[name].items()), name
    assert not torch.equal(at_check_3["features.0"]["0.weight"], at_freeze["features.0"]["0.weight"])
    # check 3: the frontier advances over the front candidates and the frozen units behind them
    drops = _of(events, ev.UnitDropped)
    assert [(d.unit, d.check) for d in drops] == [(u, 3) for u in DROPPED]
    assert [("frozen earlier" in d.reason) for d in drops] == [False, False, True, True, False]
    # and they stay as they were frozen to the end of the run (the full model saved at the end)
    for name in ("features.2", "features.3"):
        assert all(torch.equal(final[f"{name}.{k}"], v) for k, v in at_freeze[name].items()), name
    assert events[-1].status == "completed"


# --- Ctrl-C -------------------------------------------------------------------------------------------------

class CtrlC:
    """A sink that raises KeyboardInterrupt once, at the first progress event of ``epoch``."""

    def __init__(self, epoch: int):
        self.epoch, self.fired = epoch, False

    def __call__(self, event: ev.Event) -> None:
        if not self.fired and isinstance(event, ev.Progress) and event.epoch == self.epoch:
            self.fired = True
            raise KeyboardInterrupt


def test_ctrl_c_ends_train_as_interrupted_and_is_re_raised():
    seen: list[ev.Event] = []
    with pytest.raises(KeyboardInterrupt):
        train(fast_config(epochs=3), [seen.append, CtrlC(epoch=1)], setup=_setup(fast_config(epochs=3)))
    assert seen[-1].type == "run_finished" and seen[-1].status == "interrupted"
    assert "Ctrl-C" in seen[-1].error
    assert [e.epoch for e in _of(seen, ev.EpochEnded)] == [0]  # it stopped inside epoch 1
    assert [e.type for e in seen].count("run_finished") == 1


def test_ctrl_c_through_the_recorder_leaves_an_interrupted_run_that_resumes(store):
    config = fast_config(epochs=2)
    with pytest.raises(KeyboardInterrupt):
        RunRecorder(store).start(config, [CtrlC(epoch=1)], setup=_setup(config))
    (run_id,) = store.run_ids()
    run_dir = store.path(run_id)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["epochs_done"] == 1
    assert store.summary(run_id)["status"] == "interrupted"
    events = store.events(run_id).events
    assert events[-1].type == "run_finished" and events[-1].status == "interrupted"
    assert (run_dir / FILENAME).is_file() and load_checkpoint(run_dir)["epoch"] == 0  # epoch 0's checkpoint

    resumed = RunRecorder(store).resume(run_id, setup=_setup(config))
    assert resumed["status"] == "completed" and resumed["epochs_done"] == 2
    events = store.events(run_id).events
    restored = _of(events, ev.CheckpointRestored)
    assert len(restored) == 1 and restored[0].previous_status == "interrupted" and restored[0].from_epoch == 1
    assert [e.epoch for e in _of(events, ev.EpochEnded)] == [0, 1]
    assert [e.status for e in _of(events, ev.RunFinished)] == ["completed"]  # the interrupted tail set aside


# --- the wsd schedule ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("step, expected", [
    (0, 0.0),  # progress 0: the warm-up starts at 0
    (4, 0.04),  # progress 4/200 = 0.02 of the 0.05 warm-up: 0.1 * 0.02 / 0.05 = 0.04
    (5, 0.05),  # 0.025 / 0.05 = half the peak
    (10, 0.1),  # 0.05: the warm-up's end, the peak
    (11, 0.1),  # stable
    (100, 0.1),  # 0.5: stable
    (140, 0.1),  # 0.7: the decay's start, (1 - 0.7) / 0.3 = 1
    (155, 0.075),  # 0.775: (1 - 0.775) / 0.3 = 0.75 -> 0.075
    (170, 0.05),  # 0.85: 0.15 / 0.3 = 0.5 -> 0.05
    (194, 0.01),  # 0.97: 0.03 / 0.3 = 0.1 -> 0.01
    (200, 0.0),  # the end: 0
])
def test_wsd_warms_up_over_5_percent_holds_until_70_percent_and_decays_linearly_to_0(step, expected):
    config = RunConfig(lr=0.1, lr_schedule="wsd")
    assert lr_at(config, step, 200) == pytest.approx(expected, abs=1e-12)


def test_wsd_over_a_whole_run_is_monotone_in_each_phase():
    config = RunConfig(lr=0.2, lr_schedule="wsd")
    lrs = [lr_at(config, s, 1000) for s in range(1001)]
    assert all(a < b for a, b in itertools.pairwise(lrs[:51]))  # steps 0..50: rising to the peak
    assert lrs[50:701] == [0.2] * 651  # steps 50..700: the peak, exactly
    assert all(a > b for a, b in itertools.pairwise(lrs[700:]))  # steps 700..1000: falling to 0
    assert lrs[1000] == 0.0 and max(lrs) == 0.2


# --- corrupt checkpoints --------------------------------------------------------------------------------------

def _good_payload() -> dict:
    return {"epoch": 0, "step": 8, "time_s": 1.0, "events": 10, "model": {"w": torch.ones(3)},
            "method": {"policy": {}, "optimizer": {}}, "rng": {"torch": torch.get_rng_state()}}


def test_a_good_checkpoint_loads(tmp_path):
    save_checkpoint(tmp_path, _good_payload())
    loaded = load_checkpoint(tmp_path)
    assert loaded["version"] == 2 and loaded["step"] == 8 and torch.equal(loaded["model"]["w"], torch.ones(3))


class _Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


@pytest.mark.parametrize("corrupt, message", [
    ("truncated", "is not a readable checkpoint"),
    ("empty", "is not a readable checkpoint"),
    ("garbage", "is not a readable checkpoint"),
    ("pickled code", "is not a readable checkpoint"),
    ("a list", "is not a checkpoint of this version"),
    ("a tensor", "is not a checkpoint of this version"),
    ("no version", "is not a checkpoint of this version"),
    ("version 99", "is not a checkpoint of this version"),
    ("version '2'", "is not a checkpoint of this version"),
])
def test_a_corrupt_checkpoint_is_refused_naming_the_file(tmp_path, corrupt, message):
    path = tmp_path / FILENAME
    if corrupt in ("truncated", "empty"):
        save_checkpoint(tmp_path, _good_payload())
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if corrupt == "truncated" else b"")
    elif corrupt == "garbage":
        path.write_bytes(b"this is not a torch file\n" * 10)
    else:
        payload = {"pickled code": _Evil(), "a list": [1, 2, 3], "a tensor": torch.zeros(2),
                   "no version": _good_payload(),
                   "version 99": {**_good_payload(), "version": 99},
                   "version '2'": {**_good_payload(), "version": "2"}}[corrupt]
        torch.save(payload, path)
    with pytest.raises(LearnDropError, match=message) as info:
        load_checkpoint(tmp_path)
    assert str(path) in str(info.value)  # the file is named
    assert len(str(info.value).splitlines()) == 1  # one readable line


def test_a_run_without_a_checkpoint_says_so(tmp_path):
    with pytest.raises(LearnDropError, match="has no checkpoint to resume from"):
        load_checkpoint(tmp_path)


def test_resuming_a_run_whose_checkpoint_is_corrupt_is_refused_and_changes_nothing(store):
    config = fast_config(epochs=2)
    writer = store.create(config)
    writer(ev.RunStarted(run_id=writer.run_id, epoch=0, step=0, time_s=0.0, config=config.to_dict(), units=[],
                         device="cpu", train_size=512, test_size=1, classes=[], steps_per_epoch=8,
                         input_shape=[3, 32, 32]))
    writer.close()
    run_dir = store.path(writer.run_id)
    (run_dir / "process.json").write_text(json.dumps({"pid": 2**22 + 12345, "host": __import__("socket")
                                                      .gethostname()}))  # its process is gone
    assert store.summary(writer.run_id)["status"] == "interrupted"
    (run_dir / FILENAME).write_bytes(b"\x80\x02 half a pickle")
    before = (run_dir / "events.jsonl").read_bytes()
    with pytest.raises(LearnDropError, match="is not a readable checkpoint") as info:
        RunRecorder(store).resume(writer.run_id, setup=_setup(config))
    assert str(run_dir / FILENAME) in str(info.value)
    assert (run_dir / "events.jsonl").read_bytes() == before and store.summary(writer.run_id)["status"] == "interrupted"


def test_an_incomplete_version_1_checkpoint_is_refused_naming_the_file(tmp_path):
    torch.save({"version": 1, "epoch": 0}, tmp_path / FILENAME)
    with pytest.raises(LearnDropError, match=str(tmp_path / FILENAME)):
        load_checkpoint(tmp_path)


def test_an_incomplete_version_2_checkpoint_is_refused_naming_the_file(tmp_path):
    torch.save({"version": 2}, tmp_path / FILENAME)
    with pytest.raises(LearnDropError, match=str(tmp_path / FILENAME)):
        load_checkpoint(tmp_path)
