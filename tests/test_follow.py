"""Following an events.jsonl as it grows: only new complete lines, and a fresh start when the file is rewritten."""

from __future__ import annotations

from pathlib import Path

from learndrop import events as ev
from learndrop.runs.follow import EventFollower


def _line(epoch: int) -> str:
    return ev.to_json(ev.EpochStarted(run_id="r", epoch=epoch, step=0, time_s=float(epoch), lr=0.1)) + "\n"


def _epochs(events: list[ev.Event]) -> list[int]:
    return [e.epoch for e in events]


def test_only_new_complete_lines_are_read(tmp_path: Path):
    path = tmp_path / "events.jsonl"
    follower = EventFollower(path)
    assert follower.poll() == ([], False)  # no file yet
    path.write_text(_line(0) + _line(1))
    new, restarted = follower.poll()
    assert _epochs(new) == [0, 1] and not restarted
    with open(path, "a", encoding="utf-8") as f:
        f.write(_line(2) + _line(3)[:10])  # a half-written line waits
    new, restarted = follower.poll()
    assert _epochs(new) == [2] and not restarted
    with open(path, "a", encoding="utf-8") as f:
        f.write(_line(3)[10:])
    assert _epochs(follower.poll()[0]) == [3] and follower.poll() == ([], False)


def test_a_rewritten_file_is_read_again_from_its_start(tmp_path: Path):
    path = tmp_path / "events.jsonl"
    path.write_text("".join(_line(e) for e in range(5)))
    follower = EventFollower(path)
    assert _epochs(follower.poll()[0]) == [0, 1, 2, 3, 4]
    tmp = tmp_path / "events.jsonl.tmp"  # as a resume does: a new file renamed over the old one
    tmp.write_text(_line(0) + _line(1) + _line(7) + _line(8) + _line(9) + _line(10))  # longer: only the inode tells
    tmp.replace(path)
    new, restarted = follower.poll()
    assert restarted and _epochs(new) == [0, 1, 7, 8, 9, 10]


def test_a_file_cut_in_place_or_removed_starts_over(tmp_path: Path):
    path = tmp_path / "events.jsonl"
    path.write_text(_line(0) + _line(1) + _line(2))
    follower = EventFollower(path)
    follower.poll()
    with open(path, "w", encoding="utf-8") as f:  # same inode, shorter
        f.write(_line(5))
    new, restarted = follower.poll()
    assert restarted and _epochs(new) == [5]
    path.unlink()
    assert follower.poll() == ([], True)
    path.write_text(_line(6))
    assert _epochs(follower.poll()[0]) == [6]
