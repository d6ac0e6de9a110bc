"""--tensorboard: a sink on a run's events writes a TensorBoard log that tensorboard's own reader reads back."""

from __future__ import annotations

import pytest
from helpers import fast_config

from learndrop import events as ev
from learndrop.report.tensorboard import TensorBoardSink
from learndrop.training.loop import train

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_a_tiny_run_logs_its_scores_drops_flops_and_accuracies_to_tensorboard(tmp_path):
    events: list[ev.Event] = []
    train(fast_config(epochs=3), [events.append, TensorBoardSink(tmp_path / "tb")])
    drops = [e for e in events if isinstance(e, ev.UnitDropped)]
    assert drops, "the eager policy drops"

    log = event_accumulator.EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0, "tensors": 0})
    log.Reload()
    scalars = set(log.Tags()["scalars"])
    units = events[0].units
    assert {f"change_score/{u['name']}" for u in units[:-1]} <= scalars  # every unit (not the head) was scored
    checks = [e for e in events if isinstance(e, ev.UnitScores)]
    first = next(s["s"] for s in checks[0].scores if s["unit"] == units[0]["name"])
    assert log.Scalars(f"change_score/{units[0]['name']}")[0].value == pytest.approx(first)
    assert {"loss/train", "accuracy/train", "flops/forward", "flops/forward_saved_pct", "units/active"} <= scalars
    assert [s.step for s in log.Scalars("units/active")] == [1, 2, 3]
    assert log.Scalars("units/active")[-1].value < len(units) - 1  # units were dropped
    texts = [t.tensor_proto.string_val[0].decode() for t in log.Tensors("drops/text_summary")]
    assert len(texts) == len(drops) and all(d.reason in t for d, t in zip(drops, texts))


def test_train_takes_tensorboard_dir_and_bench_does_not(tmp_path):
    from learndrop.cli import build_parser, main

    assert build_parser().parse_args(["train", "--tensorboard", str(tmp_path)]).tensorboard == str(tmp_path)
    assert main(["bench", "--tensorboard", str(tmp_path)]) == 2  # bench writes no TensorBoard log
