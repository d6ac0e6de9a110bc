"""Following a run's events.jsonl as it grows: only the new lines are read, never the whole file again.

A run another process trains (the CLI, a second server), and every ended run, is read from disk. Its
writer only appends, so a reader keeps the byte offset it got to and reads on from there. A resume is the
exception: it rewrites the log (``RunStore.truncate_events``: a shorter file put in place with a rename), and
then what was read before is void. A new file (another device or inode) or a file shorter than the offset
means exactly that, and the follower starts over from its first line.
"""

from __future__ import annotations

from pathlib import Path

from .. import events as ev


class EventFollower:
    """Reads the events appended to one events.jsonl since the last ``poll``; not thread-safe (one per
    reader)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0  # bytes read, always the end of a complete line
        self._file_id: tuple[int, int] | None = None  # (device, inode) of the file those bytes came from

    def poll(self) -> tuple[list[ev.Event], bool]:
        """The events written since the last poll, and whether the file was replaced or cut since then.

        When it was (True), the events are read from the file's start and whatever this follower returned
        before no longer holds: the caller drops it. A file that is gone gives no events (and is a restart
        once it was read). A half-written last line waits for the next poll.
        """
        try:
            stat = self.path.stat()
            file_id: tuple[int, int] | None = (stat.st_dev, stat.st_ino)
            size = stat.st_size
        except OSError:
            file_id, size = None, 0
        restarted = (self.offset > 0 or self._file_id is not None) and (file_id != self._file_id
                                                                        or size < self.offset)
        if restarted:
            self.offset = 0
        self._file_id = file_id
        if file_id is None or size <= self.offset:
            return [], restarted
        new, self.offset = iter_new_events(self.path, self.offset)
        return new, restarted


def iter_new_events(path: Path, offset: int) -> tuple[list[ev.Event], int]:
    """Events appended after byte ``offset`` (complete lines only; unreadable ones skipped) and the new
    offset."""
    out: list[ev.Event] = []
    if not path.is_file():
        return out, offset
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    for line in data[:end].splitlines():
        try:
            out.append(ev.from_json(line.decode("utf-8")))
        except (ValueError, TypeError, KeyError, UnicodeDecodeError):
            continue
    return out, offset + end


__all__ = ["EventFollower", "iter_new_events"]
