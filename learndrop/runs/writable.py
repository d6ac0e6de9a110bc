"""Whether runs (or results, or logs) can be written in a folder, asked before any work starts.

``check_writable_dir`` really makes the missing folders and writes a probe file with content, then removes
all it made: permission bits say little as root (/proc and /sys refuse anyway), and a full disk still
takes an empty file (a new inode, no data block) but refuses the first byte of data.
"""

from __future__ import annotations

import contextlib
import errno
import secrets
from pathlib import Path

from ..errors import LearnDropError

PROBE_BYTES = 64 * 1024  # what the probe writes: a disk that cannot take this cannot take a run's events


def check_writable_dir(path: str | Path, what: str = "folder") -> None:
    """Raise ``LearnDropError``, one sentence naming ``path`` and why, unless files can be written in it.

    A missing folder is fine where it can be created, parents included (like ``mkdir -p``). The check
    really creates the missing folders and a probe file of ``PROBE_BYTES`` (as root, permission bits say
    little: /proc and /sys refuse anyway; a full disk takes an empty file), then removes everything it
    created, so it leaves nothing behind either way.
    """
    path = Path(path)
    blocker = _file_in_the_way(path)
    if blocker == path:
        raise LearnDropError(f"{what} {str(path)!r} is a file, not a folder")
    if blocker is not None:
        raise LearnDropError(f"{what} {str(path)!r} cannot be created: {str(blocker)!r} is a file, not a "
                             "folder")
    missing = _missing_folders(path)
    made: list[Path] = []
    try:
        for folder in missing:
            try:
                folder.mkdir()
            except OSError as exc:
                raise LearnDropError(f"{what} {str(path)!r} cannot be created: {str(folder.parent)!r} "
                                     f"{_unwritable_reason(exc)}") from None
            made.append(folder)
        probe = path / f".learndrop-write-probe-{secrets.token_hex(4)}"
        try:
            probe.write_bytes(b"\0" * PROBE_BYTES)
        except OSError as exc:
            raise LearnDropError(f"{what} {str(path)!r} {_unwritable_reason(exc)}") from None
        finally:
            with contextlib.suppress(OSError):
                probe.unlink(missing_ok=True)
    finally:
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:
                pass  # something else wrote into it meanwhile: leave it


def _file_in_the_way(path: Path) -> Path | None:
    """The first existing component of ``path`` (itself or a parent) when it is not a folder."""
    for candidate in (path, *path.parents):
        try:
            if candidate.exists():
                return None if candidate.is_dir() else candidate
        except OSError:
            return None  # cannot even look: the mkdir or the probe will say why
    return None


def _missing_folders(path: Path) -> list[Path]:
    """The components of ``path`` that do not exist yet, outermost first."""
    missing = []
    for candidate in (path, *path.parents):
        try:
            if candidate.exists():
                break
        except OSError:
            break
        missing.append(candidate)
    return missing[::-1]


_REASONS = {
    errno.EROFS: "is on a read-only file system",
    errno.EACCES: "is not writable (permission denied)",
    errno.EPERM: "is not writable (operation not permitted)",
    errno.ENOENT: "does not accept new files or folders",  # /proc
    errno.ENOSPC: "has no space left on its device",
    errno.EDQUOT: "is over its disk quota",
}


def _unwritable_reason(exc: OSError) -> str:
    return _REASONS.get(exc.errno or 0, f"is not writable ({exc.strerror or exc})")


__all__ = ["check_writable_dir"]
