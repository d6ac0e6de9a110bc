"""Whole-file writes of a run folder: all or nothing, and nothing left behind when the disk is full.

Each file is written to ``<name>.tmp`` beside it and renamed over the old one, so a reader never sees
half a file; when writing fails (a full disk, a quota) the ``.tmp`` file is removed before the error goes
on, so a failed write does not keep the disk full. ``torch.save`` writes through an open file here: given
a path, it reports a full disk as ``RuntimeError: [enforce fail at inline_container.cc…]``; through a
file object the error is the ``OSError`` it is (errno ENOSPC, "No space left on device").
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """``write(file)`` into ``path``'s ``.tmp`` sibling, then rename it to ``path``; the ``.tmp`` removed on
    any failure."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, lambda f: f.write(json.dumps(data, indent=2).encode("utf-8")))


def save_tensors(path: Path, obj: Any) -> None:
    """``torch.save(obj)`` to ``path``, atomically (loaded back with ``weights_only=True``)."""
    write_atomic(path, lambda f: torch.save(obj, f))


def is_no_space(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a full disk or an exceeded quota."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def no_space_line(exc: BaseException) -> str | None:
    """The CLI's one line for a full disk (``exc`` or its cause), else None."""
    if not is_no_space(exc):
        return None
    where = f" (writing {exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
    return (f"error: no space left on device{where}; free some space (a run with a checkpoint goes on with "
            "--resume)")


__all__ = ["is_no_space", "no_space_line", "save_tensors", "write_atomic", "write_json"]
