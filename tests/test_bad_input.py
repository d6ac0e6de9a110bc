"""Bad input through the CLI: one clear line on stderr, exit code 2, no run started, no run damaged.

With the cases in test_cli.py these cover the reliability issue's list; the dashboard's own cases are
in the app tests.
"""

from __future__ import annotations

import gzip  # noqa: F401  (MNIST raw files are plain IDX here)
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import ROOT, fast_config
from PIL import Image

from learndrop.cli import main
from learndrop.runs.recorder import RunRecorder
from learndrop.runs.store import RunStore


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "learndrop", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def _error(args, capsys) -> str:
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, f"exit {code}, stderr: {err}"
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def _folder(root, classes=("a", "b"), n=4, size=16, mode="RGB"):
    for cls in classes:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            arr = np.random.default_rng(i).integers(0, 255, (size, size, 3), dtype=np.uint8)
            Image.fromarray(arr).convert(mode).save(root / cls / f"{i}.jpg")
    return root


@pytest.fixture
def runs(tmp_path):
    return tmp_path / "runs"


@pytest.mark.parametrize("extra, message", [
    (["--epochs", "1000000000"], "epochs must be an integer from 1 to 100,000"),
    (["--batch-size", "100000000"], "batch_size must be an integer"),
    (["--checks-per-epoch", "0"], "checks_per_epoch must be"),
    (["--subset", "0"], "subset must be"),
    (["--image-size", "3"], "image_size must be at least 8"),
    (["--seed", "-1"], "seed must be a non-negative integer"),
    (["--weight-decay", "-0.1"], "weight_decay must be"),
    (["--lr-schedule", "exponential"], "unknown lr_schedule"),
    (["--cache-dtype", "int8"], "unknown cache_dtype"),
    (["--window", "0"], "window must be an integer >= 1"),
    (["--patience", "0"], "patience must be an integer >= 1"),
    (["--warmup", "-1"], "warmup must be an integer >= 0"),
    (["--kappa", "inf"], "kappa must be a positive finite number"),
    (["--measure", "gradients"], "unknown measure"),
    (["--stream", "0"], "stream must be"),
    (["--stream", "5000"], "leaves chunks smaller than one batch"),
    (["--stream", "11", "--stream-by", "class", "--batch-size", "16"], "needs at least that many classes"),
    (["--val-split", "-1"], "val_split must be a non-negative integer"),
    (["--val-split", "9950"], "--val-split 9950 leaves 50 of the 10000 training images, less than one batch"),
    (["--classes", "0-x"], "classes '0-x': use class indices"),
    (["--classes", "3"], "classes must be at least 2"),
    (["--classes", "8-12"], "class index 12 out of range"),
    (["--model", "resnet18", "--width", "0.5"], "no width multiplier"),
    (["--model", "resnet20", "--pretrained"], "no pretrained weights"),
    (["--resume", "../../etc"], "invalid run id"),
    (["--resume", "a/b"], "invalid run id"),
    (["--resume", "20990101-nothing"], "no run '20990101-nothing'"),
    (["--init-from", "../x"], "invalid run id"),
])
def test_train_options(extra, message, capsys, runs):
    err = _error(["train", "--runs-dir", str(runs), *extra], capsys)
    assert message in err
    assert not runs.exists() or not any(runs.iterdir())


def test_data_root_that_is_a_file_or_empty(tmp_path, capsys, runs):
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    assert "is a file, not a folder" in _error(["train", "--runs-dir", str(runs), "--dataset", "mnist",
                                                "--data-root", str(afile)], capsys)
    (tmp_path / "empty").mkdir()
    assert "pass --download" in _error(["train", "--runs-dir", str(runs), "--dataset", "mnist", "--data-root",
                                        str(tmp_path / "empty")], capsys)
    assert "no images in" in _error(["train", "--runs-dir", str(runs), "--dataset",
                                     f"folder:{tmp_path / 'empty'}"], capsys)


def test_truncated_mnist_files(tmp_path, capsys, runs):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    header = (2051).to_bytes(4, "big") + (60000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    (raw / "train-images-idx3-ubyte").write_bytes(header + b"\0" * 1000)  # 60,000 images promised, 1 kB given
    (raw / "train-labels-idx1-ubyte").write_bytes((2049).to_bytes(4, "big") + (60000).to_bytes(4, "big") + b"\0")
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"\0" * 16)
    err = _error(["train", "--runs-dir", str(runs), "--dataset", "mnist", "--data-root", str(tmp_path)], capsys)
    assert "mnist" in err


def test_image_folders(tmp_path, capsys, runs):
    one = _folder(tmp_path / "one", classes=("only",))
    assert "need at least 2" in _error(["train", "--runs-dir", str(runs), "--dataset", f"folder:{one}"], capsys)
    texts = tmp_path / "texts"
    for cls in ("a", "b"):
        (texts / cls).mkdir(parents=True)
        (texts / cls / "notes.txt").write_text("not an image")
    assert "no images in" in _error(["train", "--runs-dir", str(runs), "--dataset", f"folder:{texts}"], capsys)
    broken = _folder(tmp_path / "broken")
    data = (broken / "a" / "0.jpg").read_bytes()
    (broken / "a" / "0.jpg").write_bytes(data[: len(data) // 3])  # a truncated JPEG
    err = _error(["train", "--runs-dir", str(runs), "--dataset", f"folder:{broken}"], capsys)
    assert "corrupt or unreadable image" in err and "0.jpg" in err


def test_mixed_folder_is_fixed_and_said(tmp_path, capsys, runs):
    """Mixed sizes, grayscale beside RGB and stray files are not errors: fixed, and a note says so."""
    mixed = _folder(tmp_path / "mixed", n=20, size=16)
    _folder(tmp_path / "mixed", n=3, size=24, mode="L")  # overwrites 0..2 with bigger grayscale images
    (mixed / "a" / "README.md").write_text("stray")
    code = main(["train", "--runs-dir", str(runs), "--dataset", f"folder:{mixed}", "--epochs", "1",
                 "--batch-size", "8"])
    err = capsys.readouterr().err
    assert code == 0
    assert "images resized to" in err and "converted to RGB" in err and "not images were skipped" in err


def test_model_file_that_is_no_state_dict_is_refused_for_fine_tuning(tmp_path, capsys, runs):
    store = RunStore(runs)
    config = fast_config(epochs=1)
    run_id = RunRecorder(store).start(config)["run_id"]
    torch.save([1, 2, 3], store.path(run_id) / "model.pt")
    err = _error(["train", "--runs-dir", str(runs), "--init-from", run_id, "--width", "0.5"], capsys)
    assert "not a state dict" in err
    assert len(list(runs.iterdir())) == 1  # nothing new started


def test_resume_of_a_completed_run_and_show_of_a_damaged_log(capsys, runs):
    store = RunStore(runs)
    config = fast_config(epochs=1)
    run_id = RunRecorder(store).start(config)["run_id"]
    run_dir = store.path(run_id)
    assert "already completed" in _error(["train", "--runs-dir", str(runs), "--resume", run_id], capsys)
    before = (run_dir / "events.jsonl").read_text()
    with open(run_dir / "events.jsonl", "a") as f:
        f.write('{"type": "epoch_ended", "run_id": \n')
    assert main(["show", run_id, "--runs-dir", str(runs)]) == 0
    captured = capsys.readouterr()
    assert "skipped 1 unreadable line" in captured.err and "test accuracy" in captured.out
    assert (run_dir / "events.jsonl").read_text().startswith(before)  # nothing rewritten
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


def _refuses_new_folders(path: str) -> bool:
    try:
        os.mkdir(path)
    except OSError:
        return True
    os.rmdir(path)
    return False


@pytest.mark.parametrize("where, message", [
    ("/proc/forbidden", "runs folder '/proc/forbidden' cannot be created: '/proc' does not accept new files"),
    ("/proc/forbidden/a/b", "runs folder '/proc/forbidden/a/b' cannot be created: '/proc' does not accept"),
    ("/proc", "runs folder '/proc' does not accept new files or folders"),
    ("/sys/forbidden", "runs folder '/sys/forbidden' cannot be created: '/sys' is not writable"),
    ("{tmp}/file.txt", "runs folder '{tmp}/file.txt' is a file, not a folder"),
    ("{tmp}/file.txt/runs", "runs folder '{tmp}/file.txt/runs' cannot be created: '{tmp}/file.txt' is a file"),
])
def test_unusable_runs_folder(where, message, tmp_path, capsys):
    """A parent that cannot be made, folders nobody may write in (root included: /proc, /sys; permission bits
    would not stop root), a file, a file on the path: one line naming the folder and why; nothing created."""
    if where.startswith("/sys") and not _refuses_new_folders("/sys/forbidden"):
        pytest.skip("/sys accepts new folders here")
    (tmp_path / "file.txt").write_text("x")
    where, message = where.format(tmp=tmp_path), message.format(tmp=tmp_path)
    assert _error(["train", "--runs-dir", where, "--epochs", "1"], capsys).startswith(f"error: {message}")
    assert not os.path.exists("/proc/forbidden") and not os.path.exists("/sys/forbidden")
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"] and (tmp_path / "file.txt").read_text() == "x"


def test_missing_parents_of_the_runs_folder_are_created(tmp_path, capsys):
    runs = tmp_path / "new" / "deeper" / "runs"
    assert main(["train", "--runs-dir", str(runs), "--epochs", "1", "--subset", "256", "--batch-size", "64"]) == 0
    (run_dir,) = runs.iterdir()
    assert (run_dir / "summary.json").is_file()


def _split_folder(root, train_classes, test_classes):
    _folder(root / "train", classes=train_classes)
    _folder(root / "test", classes=test_classes)
    return root


@pytest.mark.slow  # the CLI in a subprocess
def test_test_split_with_a_class_the_training_split_lacks_is_refused_before_training(tmp_path):
    """It trained a whole epoch, then died in evaluation (IndexError: Target 2 is out of bounds)."""
    data = _split_folder(tmp_path / "data", ("a", "b"), ("a", "b", "c"))
    runs = tmp_path / "runs"
    result = _cli("train", "--runs-dir", str(runs), "--dataset", f"folder:{data}", "--epochs", "1", "--batch-size",
                  "4")
    err = result.stderr.strip()
    assert result.returncode == 2 and len(err.splitlines()) == 1, err[-2000:]
    assert err == (f"error: image folder {str(data)!r}: the class folders of train/ and test/ differ (only in "
                   "test/: 'c'); a model trained on train/ cannot predict a class it never saw: add it to train/ "
                   "or remove it from test/")
    assert not runs.exists() or not any(runs.iterdir())


def test_training_class_without_test_images_is_allowed_with_a_note(tmp_path, capsys):
    """train/ has a, b, c; test/ only a and b: the run trains (streamed by class, so the per-class accuracy of
    class c, which has no test images, is asked for too), and a note says c's accuracy is not measured.
    (That test labels follow the class names: test_data.py::test_test_split_labels_follow…)"""
    data = _split_folder(tmp_path / "data", ("a", "b", "c"), ("a", "b"))
    runs = tmp_path / "runs"
    code = main(["train", "--runs-dir", str(runs), "--dataset", f"folder:{data}", "--epochs", "1",
                 "--batch-size", "4", "--stream", "3", "--stream-by", "class"])
    err = capsys.readouterr().err
    assert code == 0, err[-2000:]
    assert "note: class folder(s) 'c' of train/ have no images in test/: their test accuracy is not measured" in err
    (run_dir,) = runs.iterdir()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
