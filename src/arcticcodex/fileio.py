"""Writing files so that readers see the old content or the new, never half of either."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

__all__ = ["replace_directory", "restore_directory", "write_atomically"]


def write_atomically(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to a unique temporary file beside ``path``, fsync it, and rename it over ``path``.

    The temporary file is removed if anything fails, so an interrupted write leaves no debris.  It is
    created with ``mode`` (before the umask), so a secret is never readable by others, not even briefly.
    """
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def replace_directory(staging: Path, target: Path) -> None:
    """Put the complete folder ``staging`` where ``target`` is, replacing what was there.

    The old folder is moved aside first and deleted last; :func:`restore_directory` undoes a crash
    between the two moves, so ``target`` holds the old content or the new, never a mix.
    """
    aside = _aside(target)
    restore_directory(target)
    if target.exists():
        target.rename(aside)
    staging.rename(target)
    if aside.exists():
        shutil.rmtree(aside)


def restore_directory(target: Path) -> None:
    """Finish or undo a :func:`replace_directory` that a crash interrupted."""
    aside = _aside(target)
    if aside.exists():
        if target.exists():
            shutil.rmtree(aside)
        else:
            aside.rename(target)


def _aside(target: Path) -> Path:
    return target.with_name(f".{target.name}.replaced")
