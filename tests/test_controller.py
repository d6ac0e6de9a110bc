"""The Learn&Drop controller on its own: a plain loop drives it, its state round-trips, the refactor pin."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from helpers import ROOT, fast_config, slow_among

import learndrop
from learndrop import events as ev
from learndrop.data.loader import ImageBatches, Normalizer, epoch_batches
from learndrop.training.loop import train
from learndrop.training.prepare import prepare

CPU = torch.device("cpu")
# Recorded by the loop as it was before the controller existed (commit b85a236), with the function
# ``_record`` below, under fast_config's forced drops (every unit a candidate at check 2): the refactor must
# keep every drop, every epoch's FLOPs and the final weights. (First recorded under a tau of 0.9, whose drops
# waited for scores that came within 0.5 % of it: another CPU's rounding could move them by a check.)
# The weights only as closely as another CPU allows: its kernels (AVX2, AVX-512, AMX) round differently,
# and four epochs on a tiny set amplify that (BatchNorm biases and running statistics by up to 9 %, the
# conv and linear weights' sums by under 0.8 % of their L1 norms); the drops, FLOPs and cache are exact.
WEIGHTS_REL = 0.02
PINNED = json.loads((ROOT / "tests" / "fixtures" / "pinned_runs.json").read_text())


def _record(config):
    setup = prepare(config)
    events = []
    train(config, [events.append], setup=setup)
    return setup.model.state_dict(), events


@pytest.mark.parametrize("case", slow_among(sorted(PINNED), {"augment_cache", "no_cache", "stream"}))
def test_the_same_seed_gives_the_drops_flops_and_weights_recorded_before_the_refactor(case):
    pinned = PINNED[case]
    state, events = _record(fast_config(**pinned["config"]))
    assert [[e.unit, e.check] for e in events if isinstance(e, ev.UnitDropped)] == pinned["drops"]
    assert [e.fwd_flops for e in events if isinstance(e, ev.EpochEnded)] == pinned["fwd_flops"]
    assert [e.bwd_flops for e in events if isinstance(e, ev.EpochEnded)] == pinned["bwd_flops"]
    assert [[e.units, e.rows, e.fwd_flops] for e in events if isinstance(e, ev.CacheBuilt)] == pinned["cache"]
    weights = {name: v for name, v in pinned["weights"].items() if state[name].dim() >= 2}  # conv, linear
    assert len(weights) >= 5
    for name, (total, absolute) in weights.items():
        w = state[name].double()
        assert float(w.abs().sum()) == pytest.approx(absolute, rel=WEIGHTS_REL), name
        assert abs(float(w.sum()) - total) <= WEIGHTS_REL * absolute, name


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_a_plain_pytorch_loop_driving_the_controller_matches_train():
    config = fast_config(epochs=4)  # two checks per epoch, forced drops and a cache
    reference, events = _record(config)
    expected = [(e.unit, e.check) for e in events if isinstance(e, ev.UnitDropped)]
    assert expected, "the test wants drops"

    setup = prepare(config)  # the same seed: the same model and data
    model = setup.model.to(memory_format=torch.channels_last)
    data = ImageBatches(setup.train_data, Normalizer(setup.train_data.images, CPU, True), CPU)
    optimizer = torch.optim.SGD(learndrop.param_groups(model), lr=config.lr, momentum=config.momentum,
                                nesterov=True, weight_decay=config.weight_decay)
    ld, rows, drops = learndrop.LearnDrop(model, optimizer, config.policy, data=data), torch.arange(len(data)), []
    for epoch in range(config.epochs):
        ld.train_mode()
        batches = epoch_batches(len(data), config.batch_size, config.seed, epoch)
        for i, idx in enumerate(batches):
            ld.update_cache(rows, config.epochs - epoch)
            x, y = ld.batch(idx)
            loss = F.cross_entropy(ld.forward(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            ld.step()
            if i + 1 in (math.ceil(len(batches) / 2), len(batches)):
                decision = ld.check().decision
                drops += [(d.unit, decision.check) for d in decision.drops]

    assert drops == expected
    assert all(torch.equal(model.state_dict()[k], reference[k]) for k in reference)
    assert ld.cache is not None and ld.cache.units == ld.dropped  # the suffix trained on cached features
    fwd_saved, train_saved = ld.flops.reduction_pct()
    assert 0 < fwd_saved < 100 and 0 < train_saved < 100


def test_the_event_order_inside_a_check_is_scores_then_drops_then_the_cache():
    _, events = _record(fast_config(epochs=3))
    kinds = [e.type for e in events if e.type in ("unit_scores", "unit_dropped", "cache_built")]
    first_drop = kinds.index("unit_dropped")
    assert kinds[first_drop - 1] == "unit_scores"  # the check's scores come first
    after = kinds[first_drop:]
    assert after[:after.index("cache_built")] == ["unit_dropped"] * after.index("cache_built")
    assert "unit_scores" not in after[:after.index("cache_built")]  # built before the next check


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_state_dict_round_trips_through_torch_load_weights_only(tmp_path):
    config = fast_config(epochs=2)
    setup = prepare(config)
    model = setup.model
    data = ImageBatches(setup.train_data, Normalizer(setup.train_data.images, CPU, False), CPU)
    optimizer = torch.optim.SGD(learndrop.param_groups(model), lr=config.lr, momentum=0.9)
    ld = learndrop.LearnDrop(model, optimizer, config.policy, data=data)
    rows = torch.arange(len(data))
    for check in range(5):  # the forced policy drops at the second check
        for idx in epoch_batches(len(data), 64, 0, check):
            ld.update_cache(rows, 2)
            x, y = ld.batch(idx)
            F.cross_entropy(ld.forward(x), y).backward()
            optimizer.step()
            optimizer.zero_grad()
            ld.step()
        ld.check()
    ld.update_cache(rows, 1)
    assert ld.dropped > 0 and ld.cache is not None
    torch.save({"model": model.state_dict(), "ld": ld.state_dict()}, tmp_path / "ck.pt")
    saved = torch.load(tmp_path / "ck.pt", weights_only=True)

    fresh = prepare(config).model
    fresh.load_state_dict(saved["model"])
    opt2 = torch.optim.SGD(learndrop.param_groups(fresh), lr=config.lr, momentum=0.9)
    ld2 = learndrop.LearnDrop(fresh, opt2, config.policy, data=data)
    rebuilt = ld2.load_state_dict(saved["ld"])
    assert (ld2.dropped, ld2.frozen, ld2.state) == (ld.dropped, ld.frozen, ld.state)
    assert [g["name"] for g in opt2.param_groups] == [g["name"] for g in optimizer.param_groups]
    assert rebuilt is not None and torch.equal(ld2.cache.features, ld.cache.features)
    assert all(not p.requires_grad for p in fresh.unit(0).parameters())


def test_without_data_the_controller_runs_any_batches_and_measures_the_flops_on_the_first(small_net):
    optimizer = torch.optim.SGD(learndrop.param_groups(small_net), lr=0.1)
    ld = learndrop.LearnDrop(small_net, optimizer)
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
    assert ld.update_cache(torch.arange(4), 1) is None and ld.cache is None
    F.cross_entropy(small_net(x), y).backward()
    optimizer.step()
    ld.step()
    assert ld.input_shape == (3, 8, 8)
    assert ld.flops.fwd == 4 * 50_848  # four images of the full step (test_flops.py: 13,824 + 36,864 + 160)
