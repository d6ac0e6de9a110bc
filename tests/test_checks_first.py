"""Every value is checked before anything is created or loaded, wrong types in the files we read are one clear
line, and what a user can ask for is bounded by what the machine holds: `train`'s one line and exit 2,
no run folder, no data loaded, no launcher started."""

from __future__ import annotations

import json

import pytest
from fake_run import write_fake_run
from helpers import fast_config

from learndrop.cli import main
from learndrop.config import parse_classes
from learndrop.data import memory
from learndrop.errors import LearnDropError
from learndrop.runs.recorder import RunRecorder
from learndrop.runs.store import RunStore


def _refused(args, capsys) -> str:
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error: "), (code, err)
    return err


# --- checks after the fact ----------------------------------------------------------------------------
def test_a_policy_the_model_cannot_follow_leaves_no_junk_run(tmp_path, capsys):
    """Before: freeze-first-k with k = 100 failed once training began, leaving a run listed as interrupted."""
    runs = tmp_path / "runs"
    err = _refused(["train", "--runs-dir", str(runs), "--policy", "freeze-first-k", "--k", "100"], capsys)
    assert "freeze-first-k: k = 100, but the network has 6 units" in err
    assert not runs.exists() or not any(runs.iterdir())


def test_a_taken_run_id_is_refused_before_the_data_are_loaded(tmp_path, capsys, monkeypatch):
    store = RunStore(tmp_path)
    run_id = write_fake_run(store, units=3, epochs=1)
    before = sorted(p.name for p in store.path(run_id).iterdir())
    monkeypatch.setattr("learndrop.training.prepare.create_dataset", lambda *a, **k: pytest.fail("data loaded"))
    err = _refused(["train", "--runs-dir", str(tmp_path), "--run-id", run_id], capsys)
    assert f"run id {run_id!r} is taken" in err
    assert sorted(p.name for p in store.path(run_id).iterdir()) == before


def test_bench_repeats_0_is_refused(tmp_path, capsys):
    err = _refused(["bench", "--repeats", "0", "--runs-dir", str(tmp_path / "r"), "--results-dir",
                    str(tmp_path / "o")], capsys)
    assert "--repeats must be an integer from 1 to" in err and not any(tmp_path.iterdir())


@pytest.mark.parametrize("nproc", ["3", "100000"])
def test_a_data_parallel_run_that_cannot_start_is_refused_before_torchrun_starts(nproc, tmp_path, capsys,
                                                                                 monkeypatch):
    """Before: --nproc 3 with the default batch of 128 printed torchrun's banner and the error three times."""
    monkeypatch.setattr("learndrop.cli.train.launch", lambda *a: pytest.fail("torchrun's launcher started"))
    err = _refused(["train", "--runs-dir", str(tmp_path / "runs"), "--nproc", nproc], capsys)
    assert "--nproc must be from 1 to" in err or "does not split evenly among 3 processes" in err
    assert not (tmp_path / "runs").exists()


# --- wrong types in the files we read -------------------------------------------------------------------
@pytest.mark.parametrize("policy, message", [
    ({"tau": "x"}, "tau must be a number, got \"x\""),
    ({"kappa": None}, "kappa must be a number, got null"),
    ("learndrop", "policy must be an object of policy settings"),
    ({"warmup": 1.5}, "warmup must be an integer, got 1.5"),
])
def test_wrong_types_in_a_config_file_are_one_line(policy, message, tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**fast_config().to_dict(), "policy": policy}))
    err = _refused(["train", "--runs-dir", str(tmp_path / "runs"), "--config", str(path)], capsys)
    assert f"--config {path}: {message}" in err and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("option", ["--resume", "--init-from"])
@pytest.mark.parametrize("damage, message", [
    ("config", "config.json is not readable JSON"),
    ("null", "config.json holds null"),
    ("events", "events.jsonl is missing"),
])
def test_an_unreadable_run_folder_is_one_line_for_resume_and_init_from(option, damage, message, tmp_path, capsys):
    store = RunStore(tmp_path)
    run_id = RunRecorder(store).start(fast_config(epochs=1, subset=256))["run_id"]
    (store.path(run_id) / "summary.json").unlink()  # an interrupted run, as --resume wants one
    folder = store.path(run_id)
    if damage == "config":
        (folder / "config.json").write_text("{\"epochs\": ")
    elif damage == "null":
        (folder / "config.json").write_text("null")
    else:
        (folder / "events.jsonl").unlink()
    err = _refused(["train", "--runs-dir", str(tmp_path), option, run_id, "--width", "0.5"], capsys)
    assert message in err and run_id in err
    assert store.run_ids() == [run_id]


# --- bounded by what the machine holds ----------------------------------------------------------------
def test_a_class_range_is_bounded_before_it_becomes_a_list(tmp_path, capsys):
    """Before: --classes 0-999999999 expanded into a list first, and took the dashboard's server down with it."""
    err = _refused(["train", "--runs-dir", str(tmp_path / "runs"), "--classes", "0-999999999"], capsys)
    assert "names more than 100,000 classes" in err
    with pytest.raises(LearnDropError, match="more than 100,000"):
        parse_classes("0-5, 7-99999999999999")


def test_images_that_would_not_fit_in_memory_are_refused_before_they_are_loaded(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memory, "physical_bytes", lambda: 64 * 2**20)  # a machine of 64 MiB
    err = _refused(["train", "--runs-dir", str(tmp_path / "runs"), "--subset", "512", "--image-size", "256"],
                   capsys)
    assert "512 images of 3x256x256 px need 0.4 GiB of memory, more than half of this machine's 0.1 GiB" in err
    assert not (tmp_path / "runs").exists()
