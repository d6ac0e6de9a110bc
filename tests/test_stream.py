"""Online training (data in chunks) and fine-tuning from an earlier run."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from helpers import FORCED, fast_config

from learndrop import events as ev
from learndrop.config import PolicyConfig
from learndrop.data.loader import ImageBatches, stream_chunks
from learndrop.errors import LearnDropError
from learndrop.report import tables
from learndrop.report.replay import data_chunks, recorded_schedule_flops, replay_run
from learndrop.runs.finetune import prepare_run
from learndrop.runs.recorder import RunRecorder
from learndrop.summary import summarize
from learndrop.training.loop import train
from learndrop.training.prepare import prepare


def test_stream_chunks_by_order_and_by_class():
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
    by_order = stream_chunks(labels, 3, "order")
    assert [c.tolist() for c in by_order] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    by_class = stream_chunks(labels, 2, "class")
    assert [sorted(set(labels[c].tolist())) for c in by_class] == [[0, 1], [2, 3]]
    assert sorted(torch.cat(by_class).tolist()) == list(range(10))


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_streaming_visits_every_sample_of_a_chunk_once_per_epoch(monkeypatch):
    seen: list[torch.Tensor] = []
    original = ImageBatches.get

    def spy(self, idx, generator=None):
        if generator is not None:  # training batches (evaluation passes no generator)
            seen.append(idx.clone())
        return original(self, idx, generator)

    monkeypatch.setattr(ImageBatches, "get", spy)
    config = fast_config(stream=2, epochs=2, policy=PolicyConfig(name="none"))
    events = []
    train(config, [events.append])
    chunks = stream_chunks(prepare(config).train_data.labels, 2)
    per_epoch = [e.epoch for e in events if isinstance(e, ev.EpochEnded)]
    assert per_epoch == [0, 1, 2, 3]
    steps = [len(range(0, len(c), config.batch_size)) for c in chunks]
    batches = iter(seen)
    for epoch in range(4):
        chunk = chunks[epoch // 2]
        visited = torch.cat([next(batches) for _ in range(steps[epoch // 2])])
        assert sorted(visited.tolist()) == sorted(chunk.tolist())  # each sample of the chunk exactly once
    assert [e.chunk for e in events if isinstance(e, ev.ChunkStarted)] == [0, 1]
    assert [e.chunk for e in events if isinstance(e, ev.ChunkEnded)] == [0, 1]


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_dropped_prefix_stays_dropped_and_the_cache_grows_by_the_new_chunk_only():
    drop_early = FORCED  # everything droppable drops at check 2
    config = fast_config(stream=3, epochs=3, checks_per_epoch=1, policy=drop_early)
    events = []
    train(config, [events.append])
    chunks = stream_chunks(prepare(config).train_data.labels, 3)
    drops = [e for e in events if isinstance(e, ev.UnitDropped)]
    assert drops and all(d.epoch == 1 for d in drops)  # check 2 = end of epoch 2 (chunk 0)
    builds = [e for e in events if isinstance(e, ev.CacheBuilt)]
    # chunk 0's rows once, then chunk 1's rows only, then chunk 2's rows only; never extended again
    assert [b.added_rows for b in builds] == [len(chunks[0]), len(chunks[1]), len(chunks[2])]
    assert [b.rows for b in builds] == [len(chunks[0]), len(chunks[0]) + len(chunks[1]), sum(map(len, chunks))]
    assert all(b.extended_rows == 0 and b.units == len(drops) for b in builds)
    later = [e.active_units for e in events if isinstance(e, ev.EpochEnded) and e.epoch >= 3]
    assert later and set(later) == {1}  # still dropped in chunks 1 and 2
    # the Threshold explorer's estimate of this schedule (cache grown chunk by chunk) is the measured figure
    started = next(e for e in events if isinstance(e, ev.RunStarted))
    estimate, _ = recorded_schedule_flops(tables.scores_frame(events), tables.checks_frame(events), started.units,
                                          data_chunks(started, tables.chunks_frame(events)), True)
    assert estimate == pytest.approx(summarize(events)["fwd_flops"], rel=1e-6)


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_init_from_loads_the_backbone_and_replaces_the_head(store):
    source = fast_config(epochs=1, classes=(0, 1, 2, 3, 4))
    run_id = RunRecorder(store).start(source)["run_id"]
    saved = store.model_state(run_id)
    target = fast_config(epochs=1, classes=(5, 6, 7), init_from=run_id)
    model = prepare_run(target, store).model
    state = model.state_dict()
    backbone = [k for k in saved if not k.startswith("head.")]
    assert backbone and all(torch.equal(state[k], saved[k]) for k in backbone)
    assert state["head.2.weight"].shape[0] == 3 and saved["head.2.weight"].shape[0] == 5  # a new head


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_init_from_a_different_architecture_is_refused(store):
    source = fast_config(epochs=1)
    run_id = RunRecorder(store).start(source)["run_id"]
    with pytest.raises(LearnDropError, match="this one asks for vgg11"):
        prepare_run(fast_config(model="vgg11", width=0.25, init_from=run_id), store)
    with pytest.raises(LearnDropError, match="no run"):
        prepare_run(fast_config(init_from="20990101-000000-nothing-here"), store)


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_fine_tuning_inherits_each_units_peak_from_the_source_run_scaled_to_this_run(store):
    source = fast_config(epochs=2, classes=(0, 1, 2, 3, 4), policy=PolicyConfig(name="none"))
    recorded = []
    run_id = RunRecorder(store).start(source, [recorded.append])["run_id"]
    started = next(e for e in recorded if isinstance(e, ev.RunStarted))
    peak = {}
    for e in recorded:
        if isinstance(e, ev.UnitScores):
            for u in e.scores:
                peak[u["unit"]] = max(peak.get(u["unit"], 0.0), u["d"])

    # half the learning rate and twice the checks per epoch: the change per check scales with lr x steps
    target = fast_config(epochs=1, classes=(5, 6, 7, 8, 9), init_from=run_id, lr=source.lr / 2,
                         checks_per_epoch=source.checks_per_epoch * 2)
    setup = prepare_run(target, store)
    steps = -(-len(setup.train_data) // target.batch_size) / target.checks_per_epoch
    scale = 0.5 * steps / (started.steps_per_epoch / source.checks_per_epoch)
    assert scale < 0.5
    assert setup.inherited_peaks == pytest.approx({u: p * scale for u, p in peak.items()})
    events = []
    train(target, [events.append], setup=setup)
    first = next(e for e in events if isinstance(e, ev.UnitScores))
    assert next(e for e in events if isinstance(e, ev.RunStarted)).inherited_peaks == setup.inherited_peaks
    for u in first.scores:  # s is measured against the larger of the inherited and the own peak
        assert u["s"] == pytest.approx(u["d"] / max(u["d"], setup.inherited_peaks[u["unit"]]))

    # the Threshold explorer replays it through the same policy, with the same inherited peaks
    recorded = tables.scores_frame(events)
    started = next(e for e in events if isinstance(e, ev.RunStarted))
    args = (started.units, data_chunks(started, tables.chunks_frame(events)), True)
    same = replay_run(recorded, tables.checks_frame(events), target.policy, *args, started.inherited_peaks)
    assert same.scores["s"].tolist() == pytest.approx(recorded["s"].tolist(), nan_ok=True)  # NaN once dropped

    no_inherit = replace(target, policy=replace(target.policy, inherit_peaks=False))
    assert prepare_run(no_inherit, store).inherited_peaks == {}
    other_measure = replace(target, policy=replace(target.policy, measure="params"))
    assert prepare_run(other_measure, store).inherited_peaks == {}  # d measured differently: not comparable
