"""The runs folder: checked before a run starts; one clear sentence when it cannot be used, nothing left."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import fast_config

from learndrop.errors import LearnDropError
from learndrop.runs.store import RunStore


def _unusable_roots(tmp_path):
    """Runs folders that really cannot be written, even as root (permission bits do not stop root)."""
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    return [("/proc/forbidden", "cannot be created: '/proc' does not accept new files or folders"),
            ("/proc", "'/proc' does not accept new files or folders"),
            (str(afile), "is a file, not a folder"),
            (str(afile / "runs"), f"cannot be created: {str(afile)!r} is a file, not a folder")]


def test_unusable_runs_folder_is_refused_and_nothing_is_left(tmp_path):
    for root, message in _unusable_roots(tmp_path):
        store = RunStore(root)
        with pytest.raises(LearnDropError, match="^runs folder ") as caught:
            store.check_writable()
        assert message in str(caught.value) and repr(root) in str(caught.value)
        with pytest.raises(LearnDropError, match=re.escape(message)):  # the app's path: create() says the same
            store.create(fast_config())
    assert not Path("/proc/forbidden").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_missing_runs_folder_is_checked_without_a_trace_and_created_on_the_first_run(tmp_path):
    store = RunStore(tmp_path / "a" / "b" / "runs")
    store.check_writable()
    assert not (tmp_path / "a").exists()  # the check removes what it created
    writer = store.create(fast_config())  # like mkdir -p
    writer.close()
    assert [p.name for p in (tmp_path / "a" / "b" / "runs").iterdir()] == [writer.run_id]
