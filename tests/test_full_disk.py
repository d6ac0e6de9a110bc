"""A full disk: refused before a run folder is made when it is full already (a full disk still takes an empty
file, so the old empty probe passed and left an orphan folder), and when it fills up while a run trains,
one line that says "no space left on device", the reason recorded in words, and no *.tmp file left behind
to keep the disk full (torch.save given a path said ``RuntimeError: [enforce fail at inline_container.cc…]``)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import ROOT

from learndrop.cli import main


def _refuse_data(monkeypatch, under: Path) -> None:
    """Simulate a full disk under ``under``: a new empty file is still made, its first byte of data is refused."""
    real = Path.write_bytes

    def write_bytes(self: Path, data: bytes) -> int:
        if str(self).startswith(str(under)) and data:
            self.touch()
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)


def test_a_full_disk_is_refused_before_any_run_folder_is_made(tmp_path, capsys, monkeypatch):
    runs = tmp_path / "runs"
    runs.mkdir()
    _refuse_data(monkeypatch, runs)
    assert main(["train", "--runs-dir", str(runs), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: runs folder {str(runs)!r} has no space left on its device", err
    assert not any(runs.iterdir()), "no orphan folder, no probe file"


@pytest.fixture
def full_tmpfs(tmp_path):
    """A real full file system: a 256 KiB tmpfs, filled (mounting needs root: skipped without it)."""
    mount = tmp_path / "full"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True,
                          check=False)
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): the simulated full disk above stands in")
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={mount / 'fill'}", "bs=4k"], capture_output=True, check=False)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.slow  # the CLI in a subprocess
def test_a_truly_full_disk_is_one_line_and_leaves_nothing(full_tmpfs):
    result = subprocess.run([sys.executable, "-m", "learndrop", "train", "--runs-dir", str(full_tmpfs / "runs")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip() == f"error: runs folder {str(full_tmpfs / 'runs')!r} has no space left on its device"
    assert sorted(p.name for p in full_tmpfs.iterdir()) == ["fill"]


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_a_disk_that_fills_up_while_a_run_trains(tmp_path, capsys, monkeypatch):
    runs = tmp_path / "runs"

    def full(obj, f, *args, **kwargs):  # the disk fills up as the first epoch's checkpoint is written
        if isinstance(f, (str, os.PathLike)):
            f = open(f, "wb")  # noqa: SIM115 (as torch.save given a path does)
        f.write(b"\0" * 4096)
        raise OSError(errno.ENOSPC, "No space left on device", getattr(f, "name", None))

    monkeypatch.setattr(torch, "save", full)
    code = main(["train", "--runs-dir", str(runs), "--subset", "256", "--epochs", "2", "--batch-size", "64"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1 and "no space left on device" in errors[0], err[-2000:]
    assert "Traceback" not in err
    assert not list(runs.rglob("*.tmp")), "no .tmp file left to keep the disk full"
    (run_dir,) = runs.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "No space left on device" in summary["error"]
