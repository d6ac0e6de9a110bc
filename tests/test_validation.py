"""The validation split (``--val-split``): held out of the training images, the same for every run on the
same data, evaluated beside the test split; events, summaries and old recordings say which is which."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import fast_config

from learndrop import events as ev
from learndrop.cli import main
from learndrop.config import PolicyConfig
from learndrop.errors import LearnDropError
from learndrop.report import tables
from learndrop.summary import summarize
from learndrop.training.loop import train
from learndrop.training.prepare import prepare


def rows(data) -> set[bytes]:
    return {bytes(x.flatten().tolist()) for x in data.images}


def test_the_split_is_disjoint_from_training_and_the_same_for_every_run():
    whole = prepare(fast_config())
    setup = prepare(fast_config(val_split=100))
    assert whole.val_data is None and len(setup.val_data) == 100 and len(setup.train_data) == 512 - 100
    train_rows, val_rows = rows(setup.train_data), rows(setup.val_data)
    assert not train_rows & val_rows and train_rows | val_rows == rows(whole.train_data)
    assert len(setup.test_data) == len(whole.test_data)  # the test split is untouched
    for other in (fast_config(val_split=100, seed=7), fast_config(val_split=100, policy=PolicyConfig(name="none"))):
        again = prepare(other)
        assert torch.equal(again.val_data.images, setup.val_data.images)
        assert torch.equal(again.train_data.labels, setup.train_data.labels)
    chosen = prepare(fast_config(val_split=50, classes=(0, 1, 2), subset=None))  # after --classes: in their labels
    assert set(chosen.val_data.labels.tolist()) <= {0, 1, 2} and chosen.val_data.classes == chosen.train_data.classes


def test_a_split_that_leaves_less_than_a_batch_is_one_error():
    with pytest.raises(LearnDropError, match="--val-split 500 leaves 12 of the 512 training images") as err:
        prepare(fast_config(val_split=500))
    assert err.value.field == "val_split"
    with pytest.raises(LearnDropError, match="val_split must be a non-negative integer") as err:
        fast_config(val_split=-3).validate()
    assert err.value.field == "val_split"


def test_epoch_ended_carries_both_accuracies_and_the_summary_both_finals():
    seen = []
    summary = train(fast_config(epochs=2, val_split=128), [seen.append])
    started = next(e for e in seen if isinstance(e, ev.RunStarted))
    assert started.val_size == 128 and started.train_size == 512 - 128
    epochs = [e for e in seen if isinstance(e, ev.EpochEnded)]
    assert all(0 <= e.val_acc <= 1 and 0 <= e.test_acc <= 1 and e.val_loss > 0 and e.test_loss > 0 for e in epochs)
    assert summary["val_acc"] == epochs[-1].val_acc and summary["test_acc"] == epochs[-1].test_acc
    frame = tables.epochs_frame(seen)
    assert frame["val_acc"].tolist() == [e.val_acc for e in epochs]
    assert "validation accuracy" in tables.event_log_frame(seen)["what"].iloc[-2]
    assert ev.from_json(ev.to_json(epochs[0])) == epochs[0]  # a new line reads back as written


def test_without_a_split_val_is_none_and_test_is_reported():
    seen = []
    summary = train(fast_config(epochs=1), [seen.append])
    (epoch,) = [e for e in seen if isinstance(e, ev.EpochEnded)]
    assert epoch.val_acc is None and epoch.val_loss is None and summary["val_acc"] is None
    assert summary["test_acc"] == epoch.test_acc and ev.from_json(ev.to_json(epoch)) == epoch


def _old_line(kind: str, **fields) -> str:
    return json.dumps({"type": kind, "run_id": "r", "epoch": 0, "step": 8, "time_s": 1.0, **fields})


def test_an_old_recording_reads_its_val_acc_as_the_test_accuracy():
    old = {"train_loss": 1.0, "train_acc": 0.5, "val_loss": 0.9, "val_acc": 0.6, "epoch_time_s": 1.0,
           "eval_time_s": 0.1, "instrument_time_s": 0.0, "data_time_s": 0.0, "fwd_flops": 1, "bwd_flops": 2,
           "baseline_fwd_flops": 1, "baseline_bwd_flops": 2, "trainable_params": 3, "active_units": 2, "images": 64}
    epoch = ev.from_json(_old_line("epoch_ended", **old))
    assert (epoch.test_acc, epoch.test_loss, epoch.val_acc, epoch.val_loss) == (0.6, 0.9, None, None)
    chunk = ev.from_json(_old_line("chunk_ended", chunk=0, val_acc=0.4, seen_acc=0.7, per_class_acc={}))
    assert (chunk.test_acc, chunk.val_acc) == (0.4, None)
    started = ev.from_json(_old_line("run_started", config={}, units=[{"name": "head"}], device="cpu",
                                     train_size=64, test_size=32, classes=["a"], steps_per_epoch=1,
                                     input_shape=[3, 8, 8]))
    summary = summarize([started, epoch])
    assert summary["test_acc"] == 0.6 and summary["best_test_acc"] == 0.6 and summary["val_acc"] is None


def test_cli_val_split(tmp_path, capsys):
    args = ["train", "--runs-dir", str(tmp_path), "--width", "0.5", "--subset", "512", "--epochs", "1",
            "--batch-size", "64", "--device", "cpu"]
    assert main([*args, "--val-split", "128"]) == 0
    out = capsys.readouterr().out  # the per-epoch line (tqdm's write) and the summary
    assert "val acc" in out and "test acc" in out and "validation " in out and "test accuracy" in out
    assert main([*args, "--val-split", "500"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "--val-split 500 leaves" in err


def test_a_streaming_run_reports_both_after_each_chunk():
    seen = []
    train(fast_config(epochs=1, stream=2, val_split=128), [seen.append])
    chunks = [e for e in seen if isinstance(e, ev.ChunkEnded)]
    assert len(chunks) == 2 and all(0 <= c.test_acc <= 1 and 0 <= c.val_acc <= 1 for c in chunks)
    assert tables.chunks_frame(seen)["test_acc"].tolist() == [c.test_acc for c in chunks]
