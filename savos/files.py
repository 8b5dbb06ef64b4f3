"""Files written whole or not at all: the one write-then-rename of the project (checkpoints, training state, the
job's outputs on a local disk)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"


def temporary_name(path: str | os.PathLike[str]) -> Path:
    """A temporary name beside ``path``: hidden, unique to this write (two writers never share one), and marked
    with :data:`TEMPORARY_SUFFIX` so a later run can tell what an interrupted one left."""
    path = Path(path)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}{TEMPORARY_SUFFIX}")


def write_atomically(path: str | os.PathLike[str], fill: Callable[[str], object]) -> None:
    """Have ``fill`` write a temporary file beside ``path``, then rename it into place: ``path`` is either as it
    was or complete, never partly written. The folder is created; a failed ``fill`` leaves no temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        fill(str(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
