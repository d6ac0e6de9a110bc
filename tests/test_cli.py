"""The CLI: the offline default demo end to end, listings, and bad input answered with one line + exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import ROOT

from learndrop.cli import main


def run_cli(*args, cwd=ROOT, timeout=300):
    return subprocess.run([sys.executable, "-m", "learndrop", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_default_demo_trains_offline_and_records_the_run(tmp_path):
    """`python -m learndrop train` with no arguments: >= 90 % on shapes, at least one drop, four files."""
    result = run_cli("train", "--runs-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = list(tmp_path.iterdir())
    assert {"config.json", "events.jsonl", "summary.json", "model.pt"} <= {p.name for p in run_dir.iterdir()}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["model"] == "tiny" and summary["dataset"] == "shapes"
    assert summary["test_acc"] >= 0.90
    assert len(summary["dropped"]) >= 1
    assert "test accuracy" in result.stdout and "forward FLOPs" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["train", "--model", "alexnet"], "unknown model 'alexnet'"),
    (["train", "--dataset", "svhn"], "unknown data set 'svhn'"),
    (["train", "--policy", "random"], "unknown policy 'random'"),
    (["train", "--epochs", "0"], "epochs must be"),
    (["train", "--batch-size", "-5"], "batch_size must be"),
    (["train", "--lr", "nan"], "lr must be"),
    (["train", "--lr", "inf"], "lr must be"),
    (["train", "--lr", "0"], "lr must be"),
    (["train", "--tau", "1.5"], "tau must be"),
    (["train", "--tau", "0"], "tau must be"),
    (["train", "--kappa", "-1"], "kappa must be"),
    (["train", "--cache-max-mb", "-1"], "cache_max_mb must be"),
    (["train", "--width", "0.001"], "no channels"),
    (["train", "--dataset", "mnist", "--data-root", "/nonexistent/place"], "does not exist"),
    (["train", "--dataset", "folder:/nonexistent/images"], "does not exist"),
    (["train", "--epochs", "many"], "invalid int value"),
    (["train", "--device", "cuda"], "CUDA"),
    (["train", "--batch-size", "50000"], "larger than the training set"),
    (["runs", "--bogus"], "unrecognized arguments"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_on_stderr_and_exit_2(args, message, capsys, tmp_path):
    if "--device" in args:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    code = main([*args, "--runs-dir", str(tmp_path)] if args[0] == "train" else args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err, err
    assert not any(tmp_path.iterdir()), "no run folder for refused input"


def test_listings(capsys, tmp_path):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "vgg11" in out and "resnet20" in out
    assert main(["datasets"]) == 0
    assert "folder:PATH" in capsys.readouterr().out
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    assert "no runs" in capsys.readouterr().out


def test_help_on_every_command():
    for cmd in ([], ["train"], ["runs"], ["models"], ["datasets"]):
        result = run_cli(*cmd, "--help")
        assert result.returncode == 0 and "usage" in result.stdout


def test_library_never_imports_streamlit():
    code = ("import sys, learndrop, learndrop.train, learndrop.cli, learndrop.registry, learndrop.tables; "
            "import pkgutil, importlib; [importlib.import_module('learndrop.' + m.name) "
            "for m in pkgutil.iter_modules(learndrop.__path__) if m.name != '__main__']; print('streamlit' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"



def test_unwritable_runs_folder_is_one_line_and_exit_2():
    """The issue's command: a 31-line traceback from mkdir before; now one line, before any data are loaded
    (the other unusable folders, in-process: test_bad_input.py::test_unusable_runs_folder)."""
    result = run_cli("train", "--runs-dir", "/proc/forbidden")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip() == ("error: runs folder '/proc/forbidden' cannot be created: '/proc' does not "
                                     "accept new files or folders")
