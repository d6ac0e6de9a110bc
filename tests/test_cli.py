"""The CLI: the offline default demo end to end, listings, and bad input answered with one line + exit 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from helpers import ROOT

from learndrop import events as ev
from learndrop.cli import main
from learndrop.report.tables import epochs_frame
from learndrop.runs.store import RunStore, read_events


def run_cli(*args, cwd=ROOT, timeout=300):
    return subprocess.run([sys.executable, "-m", "learndrop", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow  # the CLI in a subprocess
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


@pytest.mark.slow  # the CLI in a subprocess
def test_help_on_every_command(capsys):
    result = run_cli("--help")  # one real interpreter; the subcommands in-process
    assert result.returncode == 0 and "usage" in result.stdout
    for cmd in ("train", "runs", "models", "datasets", "bench"):
        with pytest.raises(SystemExit) as exit_:
            main([cmd, "--help"])
        assert exit_.value.code == 0 and f"usage: learndrop {cmd}" in capsys.readouterr().out


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_library_never_imports_streamlit():
    code = ("import sys, pkgutil, importlib, learndrop; [importlib.import_module(m.name) "
            "for m in pkgutil.walk_packages(learndrop.__path__, 'learndrop.') if not m.name.endswith('__main__')]; "
            "print('streamlit' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"



@pytest.mark.slow  # the CLI in a subprocess
def test_unwritable_runs_folder_is_one_line_and_exit_2():
    """The issue's command: a 31-line traceback from mkdir before; now one line, before any data are loaded
    (the other unusable folders, in-process: test_bad_input.py::test_unusable_runs_folder)."""
    result = run_cli("train", "--runs-dir", "/proc/forbidden")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip() == ("error: runs folder '/proc/forbidden' cannot be created: '/proc' does not "
                                     "accept new files or folders")


@pytest.mark.slow  # the CLI in a subprocess
def test_drop_epochs_agree_in_the_cli_summary_json_show_and_the_charts(tmp_path, capsys):
    """One convention: a drop's epoch is the number the charts' epoch axis gives the epoch it happened in
    (counted from 1). The CLI printed 3 where summary.json recorded 2 for the same drop."""
    result = run_cli("train", "--runs-dir", str(tmp_path), "--width", "0.5", "--subset", "512", "--epochs", "3",
                     "--batch-size", "64", "--tau", "1", "--kappa", "1e9", "--device", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = tmp_path.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["dropped"], "the test wants a drop"
    in_summary = [(d["unit"], d["epoch"]) for d in summary["dropped"]]
    events = read_events(run_dir / "events.jsonl").events
    axis = dict(zip(epochs_frame(events)["epoch"], epochs_frame(events)["epoch_number"]))  # the charts' x
    on_charts = [(e.unit, int(axis[e.epoch])) for e in events if isinstance(e, ev.UnitDropped)]
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("dropped")]
    printed = [(unit, int(n)) for unit, n in re.findall(r"(\S+) \(epoch (\d+)\)", line)]
    assert printed == in_summary == on_charts
    assert main(["show", run_dir.name, "--runs-dir", str(tmp_path)]) == 0
    shown = re.findall(r"^epoch (\d+): (\S+) dropped", capsys.readouterr().out, re.M)
    assert [(unit, int(n)) for n, unit in shown] == on_charts


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_an_older_summary_json_with_drop_epochs_from_0_is_recomputed(tmp_path):
    store = RunStore(tmp_path)
    assert main(["train", "--runs-dir", str(tmp_path), "--width", "0.5", "--subset", "512", "--epochs", "3",
                 "--batch-size", "64", "--tau", "1", "--kappa", "1e9", "--device", "cpu"]) == 0
    (run_id,) = store.run_ids()
    current = store.summary(run_id)
    path = store.path(run_id) / "summary.json"
    old = {k: v for k, v in current.items() if k != "summary_version"}
    old["dropped"] = [{**d, "epoch": d["epoch"] - 1} for d in current["dropped"]]  # as version 1 wrote it
    path.write_text(json.dumps(old))
    assert current["dropped"] and store.summary(run_id)["dropped"] == current["dropped"]
    assert json.loads(path.read_text()) == old  # read, not rewritten
